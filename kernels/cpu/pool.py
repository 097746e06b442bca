"""Max and average pooling kernels (Numba), parallel over samples (launch.Shares).

Max:  y[n, c, u, v] = max over the window of xpad (padded with −inf), and
      arg[n, c, u, v] = the padded-plane index (i·Wp + j) of the window's FIRST maximum
      in row-major order — the tie rule every pooling path shares.
      backward: dxpad[n, c, arg] += dy[n, c, u, v].
Avg:  y = Σ window / (kh·kw) (zero padding counted); backward adds dy / (kh·kw) to the window.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import checks
from .launch import Shares, span

OPTS = dict(cache=True, nogil=True)


@njit(**OPTS)
def relu_maxpool_plane(plane, ow, bias, pkh, pkw, psh, psw, y2, a2):
    """ReLU + max-pooling of one pre-activation plane (oh·ow,) plus ``bias`` -> y2, a2 (poh, pow).

    y2[u, v] = max(0, bias + max over the window of plane), a2[u, v] = the flat index i·ow + j
    of the window's first maximum in row-major order, or −1 where that maximum is ≤ 0 (ReLU
    passes no gradient). relu(max z) = max relu(z) because ReLU is monotonic. An empty a2
    (size 0: evaluation, no backward to come) asks for y2 alone. The 2×2 stride-2 window goes
    to ``relu_maxpool_2x2``.
    """
    if pkh == 2 and pkw == 2 and psh == 2 and psw == 2:
        relu_maxpool_2x2(plane, ow, ow, bias, y2, a2)
        return
    keep = a2.size > 0
    poh, pow_ = y2.shape
    for u in range(poh):
        for v in range(pow_):
            i0, j0 = u * psh, v * psw
            a = i0 * ow + j0
            m = plane[a]
            for p in range(pkh):
                for q in range(pkw):
                    t = (i0 + p) * ow + j0 + q
                    if plane[t] > m:
                        m = plane[t]
                        a = t
            m += bias
            y2[u, v] = m if m > 0 else 0
            if keep:
                a2[u, v] = a if m > 0 else -1


def _relu_maxpool_2x2(plane, wd, ow, bias, y2, a2):
    """``relu_maxpool_plane`` for the 2×2 stride-2 window, its rows ``wd`` apart in plane (wd = ow,
    or a wider row: conv_c1.py's planes), a2 the index i·ow + j all the same: a branch-free chain of selects in
    row-major order, vectorised along v (a data-dependent branch per element mispredicts about
    half the time on real activations and cost LeNet-5's first layer ≈ 3× its pooling time);
    with an empty a2 a max of four, ≈ half the time of the one that tracks the argmax.
    Each pair of input rows is read through its own row view (r0, r1): indexed as plane[2u·ow +
    2v] with ow a run-time value, the loop was not vectorised as well, and took 2.6× as long
    (one thread, LeNet-5's first layer's planes; benchmarks/README.md, session 8)."""
    poh, pow_ = y2.shape
    if a2.size == 0:
        for u in range(poh):
            r0 = plane[2 * u * wd:2 * u * wd + ow]
            r1 = plane[(2 * u + 1) * wd:(2 * u + 1) * wd + ow]
            yr = y2[u]
            for v in range(pow_):
                m = max(max(r0[2 * v], r0[2 * v + 1]), max(r1[2 * v], r1[2 * v + 1])) + bias
                yr[v] = m if m > 0 else 0
        return
    for u in range(poh):
        r0 = plane[2 * u * wd:2 * u * wd + ow]
        r1 = plane[(2 * u + 1) * wd:(2 * u + 1) * wd + ow]
        n0 = 2 * u * ow  # the flat index of r0[0] (and n0 + ow of r1[0])
        n1 = n0 + ow
        yr, ar = y2[u], a2[u]
        for v in range(pow_):
            m, a = r0[2 * v], n0 + 2 * v
            c = r0[2 * v + 1]
            up = c > m
            m, a = (c if up else m), (n0 + 2 * v + 1 if up else a)
            c = r1[2 * v]
            up = c > m
            m, a = (c if up else m), (n1 + 2 * v if up else a)
            c = r1[2 * v + 1]
            up = c > m
            m, a = (c if up else m), (n1 + 2 * v + 1 if up else a)
            m += bias
            pos = m > 0
            yr[v] = m if pos else 0
            ar[v] = a if pos else -1


relu_maxpool_2x2 = njit(**OPTS)(_relu_maxpool_2x2)
#: the same, inlined into the convolution's forward shares: a call per plane (16 planes of 4×4
#: a sample in LeNet-5's second layer) had cost that layer's forward ≈ 8 % (kernels_ab, session 10);
#: the cold compile did not change (the body moves into the share)
relu_maxpool_2x2_inline = njit(inline="always", **OPTS)(_relu_maxpool_2x2)


@njit(**OPTS)
def _maxpool_forward(t, nt, xpad, kh, kw, sh, sw, y, arg):
    n, c, hp, wp = xpad.shape
    oh, ow = y.shape[2], y.shape[3]
    lo, hi = span(t, nt, n)
    for k in range(lo, hi):
        for ci in range(c):
            plane = xpad[k, ci]
            for u in range(oh):
                for v in range(ow):
                    i0, j0 = u * sh, v * sw
                    m = plane[i0, j0]
                    a = i0 * wp + j0
                    for p in range(kh):
                        for q in range(kw):
                            val = plane[i0 + p, j0 + q]
                            if val > m:
                                m = val
                                a = (i0 + p) * wp + j0 + q
                    y[k, ci, u, v] = m
                    arg[k, ci, u, v] = a


_maxpool_forward_shares = Shares(_maxpool_forward)


def _check_windows(kernel, xpad, kh, kw, sh, sw, oh, ow):
    checks.array(kernel, "xpad", xpad, 4, "float")
    checks.window(kernel, "H", xpad.shape[2], kh, sh, oh)
    checks.window(kernel, "W", xpad.shape[3], kw, sw, ow)


def maxpool_forward(xpad, kh, kw, sh, sw, oh, ow):
    """xpad (N, C, Hp, Wp) -> y (N, C, oh, ow), arg int32 (N, C, oh, ow)."""
    _check_windows("maxpool_forward", xpad, kh, kw, sh, sw, oh, ow)
    n, c = xpad.shape[0], xpad.shape[1]
    y = np.empty((n, c, oh, ow), dtype=xpad.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int32)
    _maxpool_forward_shares.over(n, xpad, kh, kw, sh, sw, y, arg)
    return y, arg


@njit(**OPTS)
def _maxpool_backward(t, nt, dy, arg, dx):
    n, c, oh, ow = dy.shape
    lo, hi = span(t, nt, n)
    for k in range(lo, hi):
        dx[k] = 0
        for ci in range(c):
            for u in range(oh):
                for v in range(ow):
                    dx[k, ci, arg[k, ci, u, v]] += dy[k, ci, u, v]


_maxpool_backward_shares = Shares(_maxpool_backward)


def maxpool_backward(dy, arg, hp, wp):
    """dy, arg (N, C, oh, ow) -> dxpad (N, C, Hp, Wp)."""
    checks.array("maxpool_backward", "dy", dy, 4, "float")
    checks.array("maxpool_backward", "arg", arg, 4, np.int32)
    checks.shape("maxpool_backward", "arg", arg, dy.shape)
    checks.positive("maxpool_backward", hp=hp, wp=wp)
    checks.indices("maxpool_backward", "arg", arg, hp * wp)
    n, c = dy.shape[0], dy.shape[1]
    dx = np.empty((n, c, hp * wp), dtype=dy.dtype)
    _maxpool_backward_shares.over(n, dy, arg, dx)
    return dx.reshape(n, c, hp, wp)


@njit(**OPTS)
def _avgpool_forward(t, nt, xpad, kh, kw, sh, sw, y):
    c = xpad.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    scale = 1.0 / (kh * kw)
    lo, hi = span(t, nt, xpad.shape[0])
    for k in range(lo, hi):
        for ci in range(c):
            for u in range(oh):
                for v in range(ow):
                    s = 0.0
                    for p in range(kh):
                        for q in range(kw):
                            s += xpad[k, ci, u * sh + p, v * sw + q]
                    y[k, ci, u, v] = s * scale


_avgpool_forward_shares = Shares(_avgpool_forward)


def avgpool_forward(xpad, kh, kw, sh, sw, oh, ow):
    """xpad (N, C, Hp, Wp) -> y (N, C, oh, ow)."""
    _check_windows("avgpool_forward", xpad, kh, kw, sh, sw, oh, ow)
    n, c = xpad.shape[0], xpad.shape[1]
    y = np.empty((n, c, oh, ow), dtype=xpad.dtype)
    _avgpool_forward_shares.over(n, xpad, kh, kw, sh, sw, y)
    return y


@njit(**OPTS)
def _avgpool_backward(t, nt, dy, kh, kw, sh, sw, dx):
    n, c, oh, ow = dy.shape
    scale = 1.0 / (kh * kw)
    lo, hi = span(t, nt, n)
    for k in range(lo, hi):
        dx[k] = 0
        for ci in range(c):
            for u in range(oh):
                for v in range(ow):
                    g = dy[k, ci, u, v] * scale
                    for p in range(kh):
                        for q in range(kw):
                            dx[k, ci, u * sh + p, v * sw + q] += g


_avgpool_backward_shares = Shares(_avgpool_backward)


def avgpool_backward(dy, kh, kw, sh, sw, hp, wp):
    """dy (N, C, oh, ow) -> dxpad (N, C, Hp, Wp)."""
    checks.array("avgpool_backward", "dy", dy, 4, "float")
    checks.window("avgpool_backward", "H", hp, kh, sh, dy.shape[2])
    checks.window("avgpool_backward", "W", wp, kw, sw, dy.shape[3])
    n, c = dy.shape[0], dy.shape[1]
    dx = np.empty((n, c, hp, wp), dtype=dy.dtype)
    _avgpool_backward_shares.over(n, dy, kh, kw, sh, sw, dx)
    return dx
