"""The Numba CPU convolution: Numba im2col (column layout) + one BLAS GEMM + Numba layout kernels.

    cols = im2col(xpad)                           (C·kh·kw, N·oh·ow)
    y    = NCHW(W₂ @ cols) + b                    (N, F, oh, ow)
    dz   = CNHW(dy)                               (F, N·oh·ow)
    dW₂  = dz @ colsᵀ,   db = Σ dz,   dx = col2im(W₂ᵀ @ dz)
dW₂ uses BLAS, or long dot products where F·C·kh·kw is tiny (see kernels.cpu.im2col.dot_rows).
The kernels are in fastcnn.kernels.cpu.im2col; their compilation is cached on disk.
"""
from __future__ import annotations

import numpy as np

from ..kernels.cpu import im2col as k
from .common import check_geometry, pad, unpad


def forward(x, w, b, stride, padding, relu=False):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, oh, ow), cache.

    With ``relu`` the output is max(conv + b, 0) (the fused Conv2D + ReLU)."""
    (sh, sw), (ph, pw) = stride, padding
    f, c, kh, kw = w.shape
    n = x.shape[0]
    oh, ow = check_geometry("numba conv", x.shape[2:], (kh, kw), stride, padding)
    xpad = np.ascontiguousarray(pad(np, x, ph, pw))
    cols = k.im2col(xpad, kh, kw, sh, sw, oh, ow)
    z = w.reshape(f, -1) @ cols
    bias = b if b is not None else np.zeros(f, x.dtype)
    y = k.cnhw_to_nchw_bias(z, bias, n, oh, ow, relu)
    return y, (cols, xpad.shape, w, stride, padding, b is not None)


def backward(dy, cache, need_dx=True):
    """dy (N, F, oh, ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    cols, xshape, w, (sh, sw), (ph, pw), has_b = cache
    f, c, kh, kw = w.shape
    n, _, oh, ow = dy.shape
    dz = k.nchw_to_cnhw(np.ascontiguousarray(dy))
    dw = (k.dot_rows(dz, cols) if f * c * kh * kw <= 256 else dz @ cols.T).reshape(w.shape)
    db = dz.sum(axis=1) if has_b else None
    if not need_dx:
        return None, dw, db
    dcols = w.reshape(f, -1).T @ dz
    dxpad = k.col2im(dcols, n, c, xshape[2], xshape[3], kh, kw, sh, sw, oh, ow)
    return (unpad(dxpad, ph, pw).copy() if (ph or pw) else dxpad), dw, db
