"""The reference convolution: a loop over output positions, the textbook formula.

    y[n, f, i, j] = b[f] + Σ_{c,p,q} xpad[n, c, i·sh + p, j·sw + q] · W[f, c, p, q]

Backward, at every output position (i, j), with its window win = xpad[:, :, i·sh:+kh, j·sw:+kw]:
    dW[f]             += Σ_n dy[n, f, i, j] · win[n]
    dxpad[:, :, win]  += Σ_f dy[:, f, i, j] · W[f]
    db[f]              = Σ_{n,i,j} dy[n, f, i, j]
Slow on purpose: it is the lesson and the reference every other path is tested against.
"""
from __future__ import annotations

from .. import backend
from ..geometry import check_geometry, pad, unpad


def forward(x, w, b, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, oh, ow), cache."""
    xp = backend.array_module(x)
    (sh, sw), (ph, pw) = stride, padding
    f, _, kh, kw = w.shape
    oh, ow = check_geometry("naive conv", x.shape[2:], (kh, kw), stride, padding)
    xpad = pad(xp, x, ph, pw)
    y = xp.empty((x.shape[0], f, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            win = xpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            y[:, :, i, j] = xp.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        y += b.reshape(1, f, 1, 1)
    return y, (xpad, w, stride, padding, b is not None)


def backward(dy, cache, need_dx=True):
    """dy (N, F, oh, ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    xpad, w, (sh, sw), (ph, pw), has_b = cache
    xp = backend.array_module(dy)
    _, _, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    dw = xp.zeros_like(w)
    dxpad = xp.zeros_like(xpad) if need_dx else None
    for i in range(oh):
        for j in range(ow):
            win = xpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            g = dy[:, :, i, j]  # (N, F)
            dw += xp.tensordot(g, win, axes=([0], [0]))
            if need_dx:
                dxpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += xp.tensordot(g, w, axes=([1], [0]))
    db = dy.sum(axis=(0, 2, 3)) if has_b else None
    dx = unpad(dxpad, ph, pw).copy() if need_dx and (ph or pw) else dxpad
    return dx, dw, db
