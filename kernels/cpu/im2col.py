"""im2col / col2im and layout kernels for the Numba convolution path (parallel over samples).

Column layout, one row per (c, p, q), one column per output position (n, i, j):
    cols[(c, p, q), (n, i, j)] = xpad[n, c, i·sh + p, j·sw + q]           (C·kh·kw, N·oh·ow)
filled and folded back sample by sample with unroll.py's helpers (the batch is one group).
The forward is one GEMM
    z = W₂ @ cols   (F, N·oh·ow)   with W₂ = W.reshape(F, C·kh·kw)
and the backward  dW₂ = dz @ colsᵀ,  dcols = W₂ᵀ @ dz,  dx = col2im(dcols).
z is in "CNHW" order; ``cnhw_to_nchw_bias`` and ``nchw_to_cnhw`` move between layouts.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .options import PRANGE_ONLY
from .pool import relu_maxpool_plane
from .unroll import fold, unroll

OPTS = dict(cache=True, nogil=True)


@njit(parallel=PRANGE_ONLY, **OPTS)
def im2col(xpad, kh, kw, sh, sw, oh, ow):
    """xpad (N, C, Hp, Wp) -> cols (C·kh·kw, N·oh·ow)."""
    n, c = xpad.shape[0], xpad.shape[1]
    cols = np.empty((c * kh * kw, n, oh * ow), dtype=xpad.dtype)
    for k in prange(n):
        unroll(xpad[k], kh, kw, sh, sw, oh, ow, cols, k)
    return cols.reshape(c * kh * kw, n * oh * ow)


@njit(parallel=PRANGE_ONLY, **OPTS)
def col2im(dcols, n, c, hp, wp, kh, kw, sh, sw, oh, ow):
    """dcols (C·kh·kw, N·oh·ow) -> dxpad (N, C, Hp, Wp): every entry added back to the pixel it
    came from. Parallel over samples, so no two threads touch the same pixel (no atomics)."""
    d = dcols.reshape(c * kh * kw, n, oh * ow)
    dx = np.empty((n, c, hp, wp), dtype=dcols.dtype)
    for k in prange(n):
        dx[k] = 0
        fold(d, kh, kw, sh, sw, oh, ow, dx[k], k)
    return dx


@njit(parallel=PRANGE_ONLY, **OPTS)
def cnhw_to_nchw_bias(z, b, n, oh, ow, relu):
    """z (F, N·oh·ow) -> y (N, F, oh, ow) = z + b, and max(·, 0) when ``relu``."""
    f = z.shape[0]
    l = oh * ow
    z3 = z.reshape(f, n, l)
    y = np.empty((n, f, l), dtype=z.dtype)
    for k in prange(n):
        for fi in range(f):
            bb = b[fi]
            src = z3[fi, k]
            dst = y[k, fi]
            if relu:
                for t in range(l):
                    dst[t] = max(src[t] + bb, 0)
            else:
                for t in range(l):
                    dst[t] = src[t] + bb
    return y.reshape(n, f, oh, ow)


@njit(parallel=PRANGE_ONLY, **OPTS)
def nchw_to_cnhw(dy):
    """dy (N, F, oh, ow) -> (F, N·oh·ow)."""
    n, f, oh, ow = dy.shape
    l = oh * ow
    d3 = dy.reshape(n, f, l)
    out = np.empty((f, n, l), dtype=dy.dtype)
    for k in prange(n):
        for fi in range(f):
            src = d3[k, fi]
            dst = out[fi, k]
            for t in range(l):
                dst[t] = src[t]
    return out.reshape(f, n * l)


@njit(parallel=PRANGE_ONLY, fastmath=True, **OPTS)
def dot_rows(a, b):
    """a (M, L), b (K, L) -> a @ bᵀ (M, K) as M·K long dot products: faster than BLAS when
    M and K are tiny and L is long (a first layer's dW), where GEMM kernels cannot block."""
    m, l = a.shape
    kk = b.shape[0]
    out = np.empty((m, kk), dtype=a.dtype)
    for idx in prange(m * kk):
        r, s = idx // kk, idx % kk
        acc = a.dtype.type(0)
        ar, br = a[r], b[s]
        for t in range(l):
            acc += ar[t] * br[t]
        out[r, s] = acc
    return out


@njit(parallel=PRANGE_ONLY, **OPTS)
def cnhw_bias_relu_maxpool(z, b, n, oh, ow, pkh, pkw, psh, psw, poh, pow_):
    """Bias + ReLU + max-pooling of z (F, N·oh·ow) in one pass -> y (N, F, poh, pow), arg int32.

    y[n, f, u, v] = max(0, max over the window of z[f, n, i, j] + b[f]);
    arg[n, f, u, v] = i·ow + j of the window's first maximum (row-major), or −1 when that
    maximum is ≤ 0: ReLU then passes no gradient. Equal to ReLU then MaxPool2D because
    ReLU is monotonic (relu(max z) = max relu(z)); the pre-activation is never written.
    """
    f = z.shape[0]
    l = oh * ow
    z3 = z.reshape(f, n, l)
    y = np.empty((n, f, poh, pow_), dtype=z.dtype)
    arg = np.empty((n, f, poh, pow_), dtype=np.int32)
    for k in prange(n):
        for fi in range(f):
            relu_maxpool_plane(z3[fi, k], ow, b[fi], pkh, pkw, psh, psw, y[k, fi], arg[k, fi])
    return y, arg


@njit(parallel=PRANGE_ONLY, **OPTS)
def maxpool_scatter_cnhw(dy, arg, oh, ow):
    """dy, arg (N, F, poh, pow) -> dz (F, N·oh·ow): each dy added at its window's argmax
    (entries with arg −1 are dropped), zeros elsewhere."""
    n, f, poh, pow_ = dy.shape
    l = oh * ow
    dz = np.empty((f, n, l), dtype=dy.dtype)
    for k in prange(n):
        for fi in range(f):
            dz[fi, k] = 0
            for u in range(poh):
                for v in range(pow_):
                    a = arg[k, fi, u, v]
                    if a >= 0:
                        dz[fi, k, a] += dy[k, fi, u, v]
    return dz.reshape(f, n * l)


@njit(parallel=PRANGE_ONLY, **OPTS)
def nchw_to_cnhw_relu_mask(dy, y):
    """dy · [y > 0] (N, F, oh, ow) -> (F, N·oh·ow): the ReLU backward fused into the layout change."""
    n, f, oh, ow = dy.shape
    l = oh * ow
    d3 = dy.reshape(n, f, l)
    y3 = y.reshape(n, f, l)
    out = np.empty((f, n, l), dtype=dy.dtype)
    for k in prange(n):
        for fi in range(f):
            src = d3[k, fi]
            msk = y3[k, fi]
            dst = out[fi, k]
            for t in range(l):
                dst[t] = src[t] if msk[t] > 0 else 0
    return out.reshape(f, n * l)
