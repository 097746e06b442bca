"""Hand-written kernels (imported as fastcnn.kernels): Numba CPU kernels in cpu/, Numba CUDA kernels in cuda/."""
