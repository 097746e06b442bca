"""The Numba CPU convolution: Numba im2col (column layout) + one BLAS GEMM + Numba layout kernels.

    cols = im2col(xpad)                           (C·kh·kw, N·oh·ow)
    z    = W₂ @ cols                              (F, N·oh·ow), "CNHW" order
    y    = NCHW(z) + b                            (N, F, oh, ow)
    dz   = CNHW(dy)                               (F, N·oh·ow)
    dW₂  = dz @ colsᵀ,   db = Σ dz,   dx = col2im(W₂ᵀ @ dz)
dW₂ uses BLAS, or long dot products where F·C·kh·kw is tiny (see kernels.cpu.im2col.dot_rows).
``gemm`` and ``grads`` are shared with the fused layers of fastcnn.nn.fused, which replace
the NCHW epilogue by bias + ReLU (+ max-pooling) and the prologue by the matching backward.
"""
from __future__ import annotations

import numpy as np

from ..kernels.cpu import im2col as k
from .common import check_geometry, pad, unpad


def gemm(x, w, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw) -> z (F, N·oh·ow) without bias, and the geometry for ``grads``."""
    (sh, sw), (ph, pw) = stride, padding
    f, c, kh, kw = w.shape
    oh, ow = check_geometry("numba conv", x.shape[2:], (kh, kw), stride, padding)
    xpad = np.ascontiguousarray(pad(np, x, ph, pw))
    cols = k.im2col(xpad, kh, kw, sh, sw, oh, ow)
    return w.reshape(f, -1) @ cols, (cols, xpad.shape, oh, ow)


def grads(dz, geo, w, stride, padding, need_dx, has_b):
    """dz (F, N·oh·ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    cols, xshape, oh, ow = geo
    (sh, sw), (ph, pw) = stride, padding
    f, c, kh, kw = w.shape
    dw = (k.dot_rows(dz, cols) if f * c * kh * kw <= 256 else dz @ cols.T).reshape(w.shape)
    db = dz.sum(axis=1) if has_b else None
    if not need_dx:
        return None, dw, db
    dcols = w.reshape(f, -1).T @ dz
    dxpad = k.col2im(dcols, xshape[0], c, xshape[2], xshape[3], kh, kw, sh, sw, oh, ow)
    return (unpad(dxpad, ph, pw).copy() if (ph or pw) else dxpad), dw, db


def forward(x, w, b, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, oh, ow), cache."""
    z, geo = gemm(x, w, stride, padding)
    bias = b if b is not None else np.zeros(w.shape[0], x.dtype)
    y = k.cnhw_to_nchw_bias(z, bias, x.shape[0], geo[2], geo[3], False)
    return y, (geo, w, stride, padding, b is not None)


def backward(dy, cache, need_dx=True):
    """dy (N, F, oh, ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    geo, w, stride, padding, has_b = cache
    dz = k.nchw_to_cnhw(np.ascontiguousarray(dy))
    return grads(dz, geo, w, stride, padding, need_dx, has_b)
