"""Max and average pooling kernels (Numba), parallel over samples.

Max:  y[n, c, u, v] = max over the window of xpad (padded with −inf), and
      arg[n, c, u, v] = the padded-plane index (i·Wp + j) of the window's FIRST maximum
      in row-major order — the tie rule every pooling path shares.
      backward: dxpad[n, c, arg] += dy[n, c, u, v].
Avg:  y = Σ window / (kh·kw) (zero padding counted); backward adds dy / (kh·kw) to the window.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

OPTS = dict(cache=True, nogil=True)


@njit(parallel=True, **OPTS)
def maxpool_forward(xpad, kh, kw, sh, sw, oh, ow):
    """xpad (N, C, Hp, Wp) -> y (N, C, oh, ow), arg int32 (N, C, oh, ow)."""
    n, c, hp, wp = xpad.shape
    y = np.empty((n, c, oh, ow), dtype=xpad.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int32)
    for k in prange(n):
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
    return y, arg


@njit(parallel=True, **OPTS)
def maxpool_backward(dy, arg, hp, wp):
    """dy, arg (N, C, oh, ow) -> dxpad (N, C, Hp, Wp)."""
    n, c, oh, ow = dy.shape
    dx = np.zeros((n, c, hp * wp), dtype=dy.dtype)
    for k in prange(n):
        for ci in range(c):
            for u in range(oh):
                for v in range(ow):
                    dx[k, ci, arg[k, ci, u, v]] += dy[k, ci, u, v]
    return dx.reshape(n, c, hp, wp)


@njit(parallel=True, **OPTS)
def avgpool_forward(xpad, kh, kw, sh, sw, oh, ow):
    """xpad (N, C, Hp, Wp) -> y (N, C, oh, ow)."""
    n, c = xpad.shape[0], xpad.shape[1]
    y = np.empty((n, c, oh, ow), dtype=xpad.dtype)
    scale = 1.0 / (kh * kw)
    for k in prange(n):
        for ci in range(c):
            for u in range(oh):
                for v in range(ow):
                    s = 0.0
                    for p in range(kh):
                        for q in range(kw):
                            s += xpad[k, ci, u * sh + p, v * sw + q]
                    y[k, ci, u, v] = s * scale
    return y


@njit(parallel=True, **OPTS)
def avgpool_backward(dy, kh, kw, sh, sw, hp, wp):
    """dy (N, C, oh, ow) -> dxpad (N, C, Hp, Wp)."""
    n, c, oh, ow = dy.shape
    dx = np.zeros((n, c, hp, wp), dtype=dy.dtype)
    scale = 1.0 / (kh * kw)
    for k in prange(n):
        for ci in range(c):
            for u in range(oh):
                for v in range(ow):
                    g = dy[k, ci, u, v] * scale
                    for p in range(kh):
                        for q in range(kw):
                            dx[k, ci, u * sh + p, v * sw + q] += g
    return dx
