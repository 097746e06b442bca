"""Stride-trick einsum: the convolution written as the formula, over a strided window view.

The view ``win[n, c, i, j, p, q] = xpad[n, c, i·sh + p, j·sw + q]`` (``as_strided``) costs no
copy; then each pass is one ``xp.einsum`` (``optimize=True`` lets it contract through BLAS):
    y[n, f, i, j]  = Σ_{c,p,q} win[n, c, i, j, p, q] · W[f, c, p, q] + b[f]
    dW[f, c, p, q] = Σ_{n,i,j} dy[n, f, i, j] · win[n, c, i, j, p, q]
    db[f]          = Σ_{n,i,j} dy[n, f, i, j]
    dxpad[n, c, u, v] = Σ_{f,p,q} dyd[n, f, u + p, v + q] · W[f, c, kh−1−p, kw−1−q]
where dyd is dy dilated by the stride and padded by k − 1 (a full convolution with W rotated 180°).
"""
from __future__ import annotations

from .. import backend
from ..geometry import check_geometry, pad, unpad


def windows(xp, a, kh, kw, sh, sw, oh, ow):
    """a (N, C, H, W) -> read-only view (N, C, oh, ow, kh, kw) of its kh×kw windows at stride (sh, sw)."""
    n, c = a.shape[:2]
    s0, s1, s2, s3 = a.strides
    return backend.as_strided(xp, a, (n, c, oh, ow, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2, s3))


def forward(x, w, b, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, oh, ow), cache."""
    xp = backend.array_module(x)
    (sh, sw), (ph, pw) = stride, padding
    f, _, kh, kw = w.shape
    oh, ow = check_geometry("einsum conv", x.shape[2:], (kh, kw), stride, padding)
    xpad = xp.ascontiguousarray(pad(xp, x, ph, pw))
    win = windows(xp, xpad, kh, kw, sh, sw, oh, ow)
    y = xp.einsum("ncijpq,fcpq->nfij", win, w, optimize=True)
    if b is not None:
        y += b[:, None, None]
    return xp.ascontiguousarray(y), (xpad, w, stride, padding, b is not None)


def backward(dy, cache, need_dx=True):
    """dy (N, F, oh, ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    xpad, w, (sh, sw), (ph, pw), has_b = cache
    xp = backend.array_module(dy)
    f, c, kh, kw = w.shape
    n, _, oh, ow = dy.shape
    win = windows(xp, xpad, kh, kw, sh, sw, oh, ow)
    dw = xp.einsum("nfij,ncijpq->fcpq", dy, win, optimize=True)
    db = dy.sum(axis=(0, 2, 3)) if has_b else None
    if not need_dx:
        return None, dw, db
    hp, wp = xpad.shape[2:]
    # dilate by the stride and pad so that a valid kh×kw convolution yields (Hp, Wp)
    full = xp.zeros((n, f, hp + kh - 1, wp + kw - 1), dtype=dy.dtype)
    full[:, :, kh - 1:kh - 1 + sh * oh:sh, kw - 1:kw - 1 + sw * ow:sw] = dy
    fwin = windows(xp, full, kh, kw, 1, 1, hp, wp)  # (N, F, Hp, Wp, kh, kw)
    dxpad = xp.einsum("nfuvpq,fcpq->ncuv", fwin, w[:, :, ::-1, ::-1], optimize=True)
    dx = xp.ascontiguousarray(unpad(dxpad, ph, pw))
    return dx, dw, db
