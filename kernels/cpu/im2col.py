"""im2col / col2im and layout kernels for the Numba convolution path (split over samples on a thread team).

Column layout, one row per (c, p, q), one column per output position (n, i, j):
    cols[(c, p, q), (n, i, j)] = xpad[n, c, i·sh + p, j·sw + q]           (C·kh·kw, N·oh·ow)
filled and folded back sample by sample with unroll.py's helpers (the batch is one group).
The forward is one GEMM
    z = W₂ @ cols   (F, N·oh·ow)   with W₂ = W.reshape(F, C·kh·kw)
and the backward  dW₂ = dz @ colsᵀ,  dcols = W₂ᵀ @ dz,  dx = col2im(dcols).
z is in "CNHW" order; ``cnhw_to_nchw_bias`` and ``nchw_to_cnhw`` move between layouts.

Each public kernel is a plain function that allocates its output and runs the shares of a
serial ``nogil`` kernel on team.py's threads: share t of nt computes samples t, t + nt, …
(``dot_rows``: outputs t, t + nt, …), the same arithmetic on any number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import team
from .pool import relu_maxpool_plane
from .unroll import fold, unroll

OPTS = dict(cache=True, nogil=True)


@njit(**OPTS)
def _im2col_share(xpad, kh, kw, sh, sw, oh, ow, cols, t, nt):
    n = xpad.shape[0]
    for k in range(t, n, nt):
        unroll(xpad[k], kh, kw, sh, sw, oh, ow, cols, k)


def im2col(xpad, kh, kw, sh, sw, oh, ow):
    """xpad (N, C, Hp, Wp) -> cols (C·kh·kw, N·oh·ow)."""
    n, c = xpad.shape[0], xpad.shape[1]
    cols = np.empty((c * kh * kw, n, oh * ow), dtype=xpad.dtype)
    team.run(team.size(n), _im2col_share, (xpad, kh, kw, sh, sw, oh, ow, cols))
    return cols.reshape(c * kh * kw, n * oh * ow)


@njit(**OPTS)
def _col2im_share(dcols, n, c, kh, kw, sh, sw, oh, ow, dx, t, nt):
    d = dcols.reshape(c * kh * kw, n, oh * ow)
    for k in range(t, n, nt):
        dx[k] = 0
        fold(d, kh, kw, sh, sw, oh, ow, dx[k], k)


def col2im(dcols, n, c, hp, wp, kh, kw, sh, sw, oh, ow):
    """dcols (C·kh·kw, N·oh·ow) -> dxpad (N, C, Hp, Wp): every entry added back to the pixel it
    came from. Split over samples, so no two threads touch the same pixel (no atomics)."""
    dx = np.empty((n, c, hp, wp), dtype=dcols.dtype)
    team.run(team.size(n), _col2im_share, (dcols, n, c, kh, kw, sh, sw, oh, ow, dx))
    return dx


@njit(**OPTS)
def _cnhw_to_nchw_bias_share(z, b, n, oh, ow, relu, y, t, nt):
    f = z.shape[0]
    l = oh * ow
    z3 = z.reshape(f, n, l)
    for k in range(t, n, nt):
        for fi in range(f):
            bb = b[fi]
            src = z3[fi, k]
            dst = y[k, fi]
            if relu:
                for i in range(l):
                    dst[i] = max(src[i] + bb, 0)
            else:
                for i in range(l):
                    dst[i] = src[i] + bb


def cnhw_to_nchw_bias(z, b, n, oh, ow, relu):
    """z (F, N·oh·ow) -> y (N, F, oh, ow) = z + b, and max(·, 0) when ``relu``."""
    f = z.shape[0]
    y = np.empty((n, f, oh * ow), dtype=z.dtype)
    team.run(team.size(n), _cnhw_to_nchw_bias_share, (z, b, n, oh, ow, relu, y))
    return y.reshape(n, f, oh, ow)


@njit(**OPTS)
def _nchw_to_cnhw_share(dy, out, t, nt):
    n, f, oh, ow = dy.shape
    l = oh * ow
    d3 = dy.reshape(n, f, l)
    for k in range(t, n, nt):
        for fi in range(f):
            src = d3[k, fi]
            dst = out[fi, k]
            for i in range(l):
                dst[i] = src[i]


def nchw_to_cnhw(dy):
    """dy (N, F, oh, ow) -> (F, N·oh·ow)."""
    n, f, oh, ow = dy.shape
    out = np.empty((f, n, oh * ow), dtype=dy.dtype)
    team.run(team.size(n), _nchw_to_cnhw_share, (dy, out))
    return out.reshape(f, n * oh * ow)


@njit(fastmath=True, **OPTS)
def _dot_rows_share(a, b, out, t, nt):
    m, l = a.shape
    kk = b.shape[0]
    for idx in range(t, m * kk, nt):
        r, s = idx // kk, idx % kk
        acc = a.dtype.type(0)
        ar, br = a[r], b[s]
        for i in range(l):
            acc += ar[i] * br[i]
        out[r, s] = acc


def dot_rows(a, b):
    """a (M, L), b (K, L) -> a @ bᵀ (M, K) as M·K long dot products: faster than BLAS when
    M and K are tiny and L is long (a first layer's dW), where GEMM kernels cannot block."""
    m, kk = a.shape[0], b.shape[0]
    out = np.empty((m, kk), dtype=a.dtype)
    team.run(team.size(m * kk), _dot_rows_share, (a, b, out))
    return out


@njit(**OPTS)
def _cnhw_bias_relu_maxpool_share(z, b, n, oh, ow, pkh, pkw, psh, psw, y, arg, t, nt):
    f = z.shape[0]
    l = oh * ow
    z3 = z.reshape(f, n, l)
    for k in range(t, n, nt):
        for fi in range(f):
            relu_maxpool_plane(z3[fi, k], ow, b[fi], pkh, pkw, psh, psw, y[k, fi], arg[k, fi])


def cnhw_bias_relu_maxpool(z, b, n, oh, ow, pkh, pkw, psh, psw, poh, pow_):
    """Bias + ReLU + max-pooling of z (F, N·oh·ow) in one pass -> y (N, F, poh, pow), arg int32.

    y[n, f, u, v] = max(0, max over the window of z[f, n, i, j] + b[f]);
    arg[n, f, u, v] = i·ow + j of the window's first maximum (row-major), or −1 when that
    maximum is ≤ 0: ReLU then passes no gradient. Equal to ReLU then MaxPool2D because
    ReLU is monotonic (relu(max z) = max relu(z)); the pre-activation is never written.
    """
    f = z.shape[0]
    y = np.empty((n, f, poh, pow_), dtype=z.dtype)
    arg = np.empty((n, f, poh, pow_), dtype=np.int32)
    team.run(team.size(n), _cnhw_bias_relu_maxpool_share, (z, b, n, oh, ow, pkh, pkw, psh, psw, y, arg))
    return y, arg


@njit(**OPTS)
def _maxpool_scatter_cnhw_share(dy, arg, dz, t, nt):
    n, f, poh, pow_ = dy.shape
    for k in range(t, n, nt):
        for fi in range(f):
            dz[fi, k] = 0
            for u in range(poh):
                for v in range(pow_):
                    a = arg[k, fi, u, v]
                    if a >= 0:
                        dz[fi, k, a] += dy[k, fi, u, v]


def maxpool_scatter_cnhw(dy, arg, oh, ow):
    """dy, arg (N, F, poh, pow) -> dz (F, N·oh·ow): each dy added at its window's argmax
    (entries with arg −1 are dropped), zeros elsewhere."""
    n, f = dy.shape[0], dy.shape[1]
    l = oh * ow
    dz = np.empty((f, n, l), dtype=dy.dtype)
    team.run(team.size(n), _maxpool_scatter_cnhw_share, (dy, arg, dz))
    return dz.reshape(f, n * l)


@njit(**OPTS)
def _nchw_to_cnhw_relu_mask_share(dy, y, out, t, nt):
    n, f, oh, ow = dy.shape
    l = oh * ow
    d3 = dy.reshape(n, f, l)
    y3 = y.reshape(n, f, l)
    for k in range(t, n, nt):
        for fi in range(f):
            src = d3[k, fi]
            msk = y3[k, fi]
            dst = out[fi, k]
            for i in range(l):
                dst[i] = src[i] if msk[i] > 0 else 0


def nchw_to_cnhw_relu_mask(dy, y):
    """dy · [y > 0] (N, F, oh, ow) -> (F, N·oh·ow): the ReLU backward fused into the layout change."""
    n, f, oh, ow = dy.shape
    out = np.empty((f, n, oh * ow), dtype=dy.dtype)
    team.run(team.size(n), _nchw_to_cnhw_relu_mask_share, (dy, y, out))
    return out.reshape(f, n * oh * ow)
