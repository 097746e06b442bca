"""The Numba CPU pooling path (kernels in fastcnn.kernels.cpu.pool)."""
from __future__ import annotations

import numpy as np

from ..kernels.cpu import pool as pool_kernels
from ..geometry import check_geometry, pad, unpad


def forward(x, kernel, stride, padding, mode):
    """x (N, C, H, W) -> y (N, C, oh, ow), cache."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = check_geometry(f"{mode}-pool", x.shape[2:], kernel, stride, padding)
    xpad = np.ascontiguousarray(pad(np, x, ph, pw, -np.inf if mode == "max" else 0))
    if mode == "max":
        y, arg = pool_kernels.maxpool_forward(xpad, kh, kw, sh, sw, oh, ow)
    else:
        y, arg = pool_kernels.avgpool_forward(xpad, kh, kw, sh, sw, oh, ow), None
    return y, (xpad.shape, arg, kernel, stride, padding, mode)


def backward(dy, cache):
    """dy (N, C, oh, ow) -> dx (N, C, H, W)."""
    xshape, arg, (kh, kw), (sh, sw), (ph, pw), mode = cache
    dy = np.ascontiguousarray(dy)
    if mode == "max":
        dxpad = pool_kernels.maxpool_backward(dy, arg, xshape[2], xshape[3])
    else:
        dxpad = pool_kernels.avgpool_backward(dy, kh, kw, sh, sw, xshape[2], xshape[3])
    return unpad(dxpad, ph, pw).copy() if (ph or pw) else dxpad
