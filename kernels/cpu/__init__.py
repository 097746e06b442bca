"""Numba CPU kernels: direct and im2col convolution, pooling, layouts.

fastcnn/__init__.py sets the thread-pool defaults these kernels rely on (OMP_WAIT_POLICY,
OPENBLAS_THREAD_TIMEOUT); see there for why.
"""
