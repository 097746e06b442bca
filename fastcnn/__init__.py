"""fastcnn: a convolutional-network framework whose every forward and backward pass is hand-written.

``OMP_WAIT_POLICY=PASSIVE`` is set here as a default (a value you set wins), because it must be
set before Numba starts its OpenMP threads: otherwise they spin between parallel regions and
fight OpenBLAS's threads for the cores — a LeNet-5 step with both pools at 2 threads on a
2-core machine took ≈ 55 ms instead of ≈ 9 ms.
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
