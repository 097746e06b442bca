"""GPU pooling: the Numba CUDA kernels of kernels/cuda/pool.py on CuPy arrays.

Same function as vectorised.py:
Max: y = max over each window of x padded with −inf; the forward records the first
     maximum's offset k = p·kw + q (row-major, the shared tie rule); backward routes dy there.
Avg: y = window sum / (kh·kw) with zero padding counted; backward spreads dy / (kh·kw).
Both backward passes are gathers (one thread per input element, no atomics), and no
padded copy of x is made.

Importing this module needs neither CuPy nor a GPU; ``check()`` says what is missing.
"""
from __future__ import annotations

from .. import backend
from ..conv.cuda_conv import check
from ..geometry import check_geometry  # noqa: F401  (same requirements: CuPy, a device, numba-cuda)


def forward(x, kernel, stride, padding, mode):
    """x (N, C, H, W) -> y (N, C, oh, ow), cache."""
    from ..kernels.cuda import pool as kern

    if mode not in ("max", "avg"):
        raise ValueError(f"pool mode must be 'max' or 'avg', got {mode!r}")
    xp = backend.array_module(x)
    oh, ow = check_geometry(f"{mode}-pool", x.shape[2:], kernel, stride, padding)
    y = xp.empty(x.shape[:2] + (oh, ow), dtype=x.dtype)
    arg = None
    if mode == "max":
        arg = xp.empty(y.shape, dtype=xp.int32)
        kern.max_forward(x, y, arg, kernel, stride, padding)
    else:
        kern.avg_forward(x, y, kernel, stride, padding)
    return y, (x.shape, arg, kernel, stride, padding, mode)


def backward(dy, cache):
    """dy (N, C, oh, ow) -> dx (N, C, H, W)."""
    from ..kernels.cuda import pool as kern

    x_shape, arg, kernel, stride, padding, mode = cache
    xp = backend.array_module(dy)
    dx = xp.empty(x_shape, dtype=dy.dtype)
    if mode == "max":
        return kern.max_backward(dy, arg, dx, kernel, stride, padding)
    return kern.avg_backward(dy, dx, kernel, stride, padding)
