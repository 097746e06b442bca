"""The Numba CPU convolution, in two variants.

gemm — Numba im2col (column layout) + one BLAS GEMM + Numba layout kernels:
    cols = im2col(xpad) (C·kh·kw, N·oh·ow);  z = W₂ @ cols (F, N·oh·ow), "CNHW";  y = NCHW(z) + b
    dz = CNHW(dy);  dW₂ = dz @ colsᵀ;  db = Σ dz;  dx = col2im(W₂ᵀ @ dz)
direct — one parallel region per pass, each group of samples unrolled into a cache-resident
    buffer and multiplied with vectorised loops (kernels/cpu/conv.py); no BLAS, no layout changes.
"direct" is the one used (see ``choose``); "gemm" runs when a fused layer is pinned to it.
``gemm``/``grads`` (and the direct kernels) are shared with the fused layers of fastcnn.nn.fused.
"""
from __future__ import annotations

import numpy as np

from ..kernels.cpu import conv as conv_kernels
from ..kernels.cpu import im2col as im2col_kernels
from ..kernels.cpu.launch import shares  # the shares the direct kernels split n samples into
from ..geometry import check_geometry, pad, unpad

VARIANTS = ("direct", "gemm")


def choose() -> str:
    """The variant the Numba convolution runs: "direct". fastcnn runs its CPU compute with BLAS on one thread
    (fastcnn.threads.compute), so "gemm" multiplies on one core while "direct" uses them all;
    timed per shape on the 2-core machine, "direct" won for every lenet5 and compact layer at
    batch 32–256, and timing "gemm" cost its compilation (≈ 10 s on a first run). "gemm" stays
    for a layer pinned to it (``layer.pinned = "gemm"``) and in the agreement tests."""
    return "direct"


def gemm(x, w, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw) -> z (F, N·oh·ow) without bias, and the geometry for ``grads``."""
    (sh, sw), (ph, pw) = stride, padding
    f, c, kh, kw = w.shape
    oh, ow = check_geometry("numba conv", x.shape[2:], (kh, kw), stride, padding)
    xpad = np.ascontiguousarray(pad(np, x, ph, pw))
    cols = im2col_kernels.im2col(xpad, kh, kw, sh, sw, oh, ow)
    return w.reshape(f, -1) @ cols, (cols, xpad.shape, oh, ow)


def grads(dz, geo, w, stride, padding, need_dx, has_b):
    """dz (F, N·oh·ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    cols, xshape, oh, ow = geo
    (sh, sw), (ph, pw) = stride, padding
    f, c, kh, kw = w.shape
    dw = (im2col_kernels.dot_rows(dz, cols) if f * c * kh * kw <= 256 else dz @ cols.T).reshape(w.shape)
    db = dz.sum(axis=1) if has_b else None
    if not need_dx:
        return None, dw, db
    dcols = w.reshape(f, -1).T @ dz
    dxpad = im2col_kernels.col2im(dcols, xshape[0], c, xshape[2], xshape[3], kh, kw, sh, sw, oh, ow)
    return (unpad(dxpad, ph, pw).copy() if (ph or pw) else dxpad), dw, db


def padded(x, padding):
    """x padded with zeros, C-contiguous (N, C, Hp, Wp)."""
    return np.ascontiguousarray(pad(np, x, padding[0], padding[1]))


def finish(dxpad, dw, db, w, padding, need_dx, has_b):
    """Shape the direct kernels' outputs as the interface wants them."""
    ph, pw = padding
    dx = None
    if need_dx:
        dx = unpad(dxpad, ph, pw).copy() if (ph or pw) else dxpad
    return dx, dw.reshape(w.shape), (db if has_b else None)


def forward(x, w, b, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, oh, ow), cache."""
    variant = choose()
    return _forward(variant, x, w, b, stride, padding)


def _forward(variant, x, w, b, stride, padding):
    f, c, kh, kw = w.shape
    bias = b if b is not None else np.zeros(f, x.dtype)
    if variant == "direct":
        (sh, sw) = stride
        oh, ow = check_geometry("numba conv", x.shape[2:], (kh, kw), stride, padding)
        xpad = padded(x, padding)
        y = conv_kernels.conv_forward(xpad, w.reshape(f, -1), bias, kh, kw, sh, sw, oh, ow, shares(x.shape[0]))
        return y, ("direct", xpad, w, stride, padding, b is not None)
    z, geo = gemm(x, w, stride, padding)
    y = im2col_kernels.cnhw_to_nchw_bias(z, bias, x.shape[0], geo[2], geo[3], False)
    return y, ("gemm", geo, w, stride, padding, b is not None)


def backward(dy, cache, need_dx=True):
    """dy (N, F, oh, ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    variant, data, w, stride, padding, has_b = cache
    dy = np.ascontiguousarray(dy)
    if variant == "direct":
        kh, kw = w.shape[2:]
        dxpad, dw, db = conv_kernels.conv_backward(data, w.reshape(w.shape[0], -1), dy, kh, kw, stride[0], stride[1],
                                         need_dx, shares(dy.shape[0]))
        return finish(dxpad, dw, db, w, padding, need_dx, has_b)
    return grads(im2col_kernels.nchw_to_cnhw(dy), data, w, stride, padding, need_dx, has_b)
