"""fastcnn: a convolutional-network framework whose every forward and backward pass is hand-written.

Thread behaviour, set here because it must be set before NumPy and Numba start their thread
pools (the user's own settings always win: these are defaults only):

- ``OPENBLAS_THREAD_TIMEOUT=4``: OpenBLAS's idle threads stop spinning after ~2⁴ cycles instead
  of ~2²⁸. A training step alternates BLAS calls with Numba parallel kernels; spinning BLAS
  threads kept the cores busy while Numba's threads waited for them (LeNet-5 step on 2 cores:
  ≈ 7.5 ms → ≈ 5 ms). It only takes effect when fastcnn is imported before NumPy.
- ``OMP_WAIT_POLICY=PASSIVE``: Numba's OpenMP threads sleep between parallel regions instead
  of spinning against OpenBLAS's threads (≈ 55 ms → ≈ 9 ms per step with both pools at 2 threads).
"""
import os as _os
import sys as _sys

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
