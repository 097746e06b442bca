"""Numba CPU kernels: direct and im2col convolution, pooling, layouts.

fastcnn/__init__.py sets the OpenMP default these kernels rely on (OMP_WAIT_POLICY); see
there for why.
"""
