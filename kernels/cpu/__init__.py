"""Numba CPU kernels (im2col/col2im, pooling, layouts).

Importing this package sets OMP_WAIT_POLICY=PASSIVE unless the user set it: Numba's
OpenMP threads otherwise spin between parallel regions and fight OpenBLAS's own
threads for the cores, which made a LeNet-5 step 4× slower on a 2-core machine.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
