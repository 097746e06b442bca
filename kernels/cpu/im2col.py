"""im2col / col2im and layout kernels for the Numba convolution path (parallel over samples,
launch.Shares).

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
from numba import njit

from . import checks
from .launch import Shares, span
from .pool import relu_maxpool_plane
from .unroll import fold_rows, unroll_rows

OPTS = dict(cache=True, nogil=True)


@njit(**OPTS)
def _im2col(t, nt, xpad, kh, kw, sh, sw, oh, ow, cols):
    lo, hi = span(t, nt, xpad.shape[0])
    for k in range(lo, hi):
        unroll_rows(xpad[k], kh, kw, sh, sw, oh, ow, cols, k)


_im2col_shares = Shares(_im2col)


def im2col(xpad, kh, kw, sh, sw, oh, ow):
    """xpad (N, C, Hp, Wp) -> cols (C·kh·kw, N·oh·ow)."""
    checks.array("im2col", "xpad", xpad, 4, "float")
    checks.window("im2col", "H", xpad.shape[2], kh, sh, oh)
    checks.window("im2col", "W", xpad.shape[3], kw, sw, ow)
    n, c = xpad.shape[0], xpad.shape[1]
    cols = np.empty((c * kh * kw, n, oh * ow), dtype=xpad.dtype)
    _im2col_shares.over(n, xpad, kh, kw, sh, sw, oh, ow, cols)
    return cols.reshape(c * kh * kw, n * oh * ow)


@njit(**OPTS)
def _col2im(t, nt, d, kh, kw, sh, sw, oh, ow, dx):
    lo, hi = span(t, nt, dx.shape[0])
    for k in range(lo, hi):
        dx[k] = 0
        fold_rows(d, kh, kw, sh, sw, oh, ow, dx[k], k)


_col2im_shares = Shares(_col2im)


def col2im(dcols, n, c, hp, wp, kh, kw, sh, sw, oh, ow):
    """dcols (C·kh·kw, N·oh·ow) -> dxpad (N, C, Hp, Wp): every entry added back to the pixel it
    came from. Parallel over samples, so no two threads touch the same pixel (no atomics)."""
    checks.array("col2im", "dcols", dcols, 2, "float")
    checks.window("col2im", "H", hp, kh, sh, oh)
    checks.window("col2im", "W", wp, kw, sw, ow)
    checks.shape("col2im", "dcols", dcols, (c * kh * kw, n * oh * ow))
    d = np.ascontiguousarray(dcols).reshape(c * kh * kw, n, oh * ow)
    dx = np.empty((n, c, hp, wp), dtype=dcols.dtype)
    _col2im_shares.over(n, d, kh, kw, sh, sw, oh, ow, dx)
    return dx


@njit(**OPTS)
def _cnhw_to_nchw_bias(t, nt, z3, b, relu, y):
    f, n, l = z3.shape
    lo, hi = span(t, nt, n)
    for k in range(lo, hi):
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


_cnhw_to_nchw_bias_shares = Shares(_cnhw_to_nchw_bias)


def _check_z(kernel, z, b, n, oh, ow):
    """z (F, N·oh·ow) float, b (F,) of its dtype."""
    checks.array(kernel, "z", z, 2, "float")
    checks.array(kernel, "b", b, 1)
    checks.same_dtype(kernel, z=z, b=b)
    checks.positive(kernel, oh=oh, ow=ow)
    checks.shape(kernel, "z", z, (len(b), n * oh * ow))


def cnhw_to_nchw_bias(z, b, n, oh, ow, relu):
    """z (F, N·oh·ow) -> y (N, F, oh, ow) = z + b, and max(·, 0) when ``relu``."""
    _check_z("cnhw_to_nchw_bias", z, b, n, oh, ow)
    f = z.shape[0]
    y = np.empty((n, f, oh * ow), dtype=z.dtype)
    _cnhw_to_nchw_bias_shares.over(n, np.ascontiguousarray(z).reshape(f, n, oh * ow), b, bool(relu), y)
    return y.reshape(n, f, oh, ow)


@njit(**OPTS)
def _nchw_to_cnhw(t, nt, d3, out):
    n, f, l = d3.shape
    lo, hi = span(t, nt, n)
    for k in range(lo, hi):
        for fi in range(f):
            src = d3[k, fi]
            dst = out[fi, k]
            for i in range(l):
                dst[i] = src[i]


_nchw_to_cnhw_shares = Shares(_nchw_to_cnhw)


def nchw_to_cnhw(dy):
    """dy (N, F, oh, ow) -> (F, N·oh·ow)."""
    checks.array("nchw_to_cnhw", "dy", dy, 4, "float")
    n, f, oh, ow = dy.shape
    out = np.empty((f, n, oh * ow), dtype=dy.dtype)
    _nchw_to_cnhw_shares.over(n, np.ascontiguousarray(dy).reshape(n, f, oh * ow), out)
    return out.reshape(f, n * oh * ow)


@njit(fastmath=True, **OPTS)
def _dot_rows(t, nt, a, b, out):
    kk = b.shape[0]
    lo, hi = span(t, nt, out.size)
    for idx in range(lo, hi):
        r, s = idx // kk, idx % kk
        acc = a.dtype.type(0)
        ar, br = a[r], b[s]
        for i in range(a.shape[1]):
            acc += ar[i] * br[i]
        out[r, s] = acc


_dot_rows_shares = Shares(_dot_rows)


def dot_rows(a, b):
    """a (M, L), b (K, L) -> a @ bᵀ (M, K) as M·K long dot products: faster than BLAS when
    M and K are tiny and L is long (a first layer's dW), where GEMM kernels cannot block."""
    checks.array("dot_rows", "a", a, 2, "float")
    checks.array("dot_rows", "b", b, 2)
    checks.same_dtype("dot_rows", a=a, b=b)
    if a.shape[1] != b.shape[1]:
        checks.fail("dot_rows", f"a {a.shape} and b {b.shape} must have rows of one length")
    out = np.empty((a.shape[0], b.shape[0]), dtype=a.dtype)
    _dot_rows_shares.over(out.size, a, b, out)
    return out


@njit(**OPTS)
def _cnhw_bias_relu_maxpool(t, nt, z3, b, ow, pkh, pkw, psh, psw, y, arg):
    f, n = z3.shape[0], z3.shape[1]
    lo, hi = span(t, nt, n)
    for k in range(lo, hi):
        for fi in range(f):
            relu_maxpool_plane(z3[fi, k], ow, b[fi], pkh, pkw, psh, psw, y[k, fi], arg[k, fi])


_cnhw_bias_relu_maxpool_shares = Shares(_cnhw_bias_relu_maxpool)


def cnhw_bias_relu_maxpool(z, b, n, oh, ow, pkh, pkw, psh, psw, poh, pow_):
    """Bias + ReLU + max-pooling of z (F, N·oh·ow) in one pass -> y (N, F, poh, pow), arg int32.

    y[n, f, u, v] = max(0, max over the window of z[f, n, i, j] + b[f]);
    arg[n, f, u, v] = i·ow + j of the window's first maximum (row-major), or −1 when that
    maximum is ≤ 0: ReLU then passes no gradient. Equal to ReLU then MaxPool2D because
    ReLU is monotonic (relu(max z) = max relu(z)); the pre-activation is never written.
    """
    _check_z("cnhw_bias_relu_maxpool", z, b, n, oh, ow)
    checks.window("cnhw_bias_relu_maxpool", "the pooled H", oh, pkh, psh, poh)
    checks.window("cnhw_bias_relu_maxpool", "the pooled W", ow, pkw, psw, pow_)
    f = z.shape[0]
    y = np.empty((n, f, poh, pow_), dtype=z.dtype)
    arg = np.empty((n, f, poh, pow_), dtype=np.int32)
    _cnhw_bias_relu_maxpool_shares.over(n, np.ascontiguousarray(z).reshape(f, n, oh * ow), b, ow,
                                   pkh, pkw, psh, psw, y, arg)
    return y, arg


@njit(**OPTS)
def _maxpool_scatter_cnhw(t, nt, dy, arg, dz):
    n, f, poh, pow_ = dy.shape
    lo, hi = span(t, nt, n)
    for k in range(lo, hi):
        for fi in range(f):
            dz[fi, k] = 0
            for u in range(poh):
                for v in range(pow_):
                    a = arg[k, fi, u, v]
                    if a >= 0:
                        dz[fi, k, a] += dy[k, fi, u, v]


_maxpool_scatter_cnhw_shares = Shares(_maxpool_scatter_cnhw)


def maxpool_scatter_cnhw(dy, arg, oh, ow):
    """dy, arg (N, F, poh, pow) -> dz (F, N·oh·ow): each dy added at its window's argmax
    (entries with arg −1 are dropped), zeros elsewhere."""
    checks.array("maxpool_scatter_cnhw", "dy", dy, 4, "float")
    checks.array("maxpool_scatter_cnhw", "arg", arg, 4, np.int32)
    checks.shape("maxpool_scatter_cnhw", "arg", arg, dy.shape)
    checks.positive("maxpool_scatter_cnhw", oh=oh, ow=ow)
    checks.indices("maxpool_scatter_cnhw", "arg", arg, oh * ow, lowest=-1)
    n, f = dy.shape[0], dy.shape[1]
    dz = np.empty((f, n, oh * ow), dtype=dy.dtype)
    _maxpool_scatter_cnhw_shares.over(n, dy, arg, dz)
    return dz.reshape(f, n * oh * ow)


@njit(**OPTS)
def _nchw_to_cnhw_relu_mask(t, nt, d3, y3, out):
    n, f, l = d3.shape
    lo, hi = span(t, nt, n)
    for k in range(lo, hi):
        for fi in range(f):
            src = d3[k, fi]
            msk = y3[k, fi]
            dst = out[fi, k]
            for i in range(l):
                dst[i] = src[i] if msk[i] > 0 else 0


_nchw_to_cnhw_relu_mask_shares = Shares(_nchw_to_cnhw_relu_mask)


def nchw_to_cnhw_relu_mask(dy, y):
    """dy · [y > 0] (N, F, oh, ow) -> (F, N·oh·ow): the ReLU backward fused into the layout change."""
    checks.array("nchw_to_cnhw_relu_mask", "dy", dy, 4, "float")
    checks.array("nchw_to_cnhw_relu_mask", "y", y, 4)
    checks.shape("nchw_to_cnhw_relu_mask", "y", y, dy.shape)
    n, f, oh, ow = dy.shape
    out = np.empty((f, n, oh * ow), dtype=dy.dtype)
    _nchw_to_cnhw_relu_mask_shares.over(n, np.ascontiguousarray(dy).reshape(n, f, oh * ow),
                                   np.ascontiguousarray(y).reshape(n, f, oh * ow), out)
    return out.reshape(f, n * oh * ow)
