"""im2col / col2im with array operations and one GEMM per batch chunk, on any ``xp``.

im2col unrolls every receptive field into a column:
    cols[n, (c, p, q), (i, j)] = xpad[n, c, i·sh + p, j·sw + q]          (N, C·kh·kw, oh·ow)
so the convolution is a matrix product  y[n] = W₂ @ cols[n] + b  with W₂ = W.reshape(F, C·kh·kw).
Backward:  dW₂ = Σ_n dy[n] @ cols[n]ᵀ,  dcols[n] = W₂ᵀ @ dy[n],  dx = col2im(dcols),
where col2im adds each column entry back to the pixel it came from, one slice add per
kernel offset (p, q) — never np.add.at.

Memory: the columns of one chunk of the batch are at most ``MAX_COLS_BYTES`` (64 MiB);
the forward keeps them for the backward only when the whole batch fits under that
bound, otherwise the backward rebuilds them chunk by chunk.
"""
from __future__ import annotations

from .. import backend
from ..geometry import check_geometry, pad, unpad

MAX_COLS_BYTES = 64 * 2**20


def im2col(xp, xpad, kh, kw, sh, sw, oh, ow):
    """xpad (N, C, Hp, Wp) -> cols (N, C·kh·kw, oh·ow): one strided slice copy per kernel offset."""
    n, c = xpad.shape[:2]
    cols = xp.empty((n, c, kh, kw, oh, ow), dtype=xpad.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, :, p, q] = xpad[:, :, p:p + sh * oh:sh, q:q + sw * ow:sw]
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(xp, cols, xpad_shape, kh, kw, sh, sw, oh, ow):
    """cols (N, C·kh·kw, oh·ow) -> dxpad (N, C, Hp, Wp), summing overlaps with one slice add per offset."""
    n, c = xpad_shape[:2]
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    dxpad = xp.zeros(xpad_shape, dtype=cols.dtype)
    for p in range(kh):
        for q in range(kw):
            dxpad[:, :, p:p + sh * oh:sh, q:q + sw * ow:sw] += cols[:, :, p, q]
    return dxpad


def chunk_size(n, row_bytes, bound):
    """Samples per chunk so that a chunk's columns (``row_bytes`` per sample) stay ≤ ``bound``."""
    return max(1, min(n, bound // max(row_bytes, 1)))


def forward(x, w, b, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, oh, ow), cache."""
    xp = backend.array_module(x)
    (sh, sw), (ph, pw) = stride, padding
    f, c, kh, kw = w.shape
    n = x.shape[0]
    oh, ow = check_geometry("im2col conv", x.shape[2:], (kh, kw), stride, padding)
    xpad = pad(xp, x, ph, pw)
    w2 = w.reshape(f, -1)
    step = chunk_size(n, c * kh * kw * oh * ow * x.itemsize, MAX_COLS_BYTES)
    y = xp.empty((n, f, oh * ow), dtype=x.dtype)
    cols_all = None
    for s in range(0, n, step):
        cols = im2col(xp, xpad[s:s + step], kh, kw, sh, sw, oh, ow)
        xp.matmul(w2, cols, out=y[s:s + step])
        if step >= n:
            cols_all = cols
    if b is not None:
        y += b.reshape(1, f, 1)
    return y.reshape(n, f, oh, ow), (xpad, cols_all, w, stride, padding, b is not None)


def backward(dy, cache, need_dx=True):
    """dy (N, F, oh, ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    xpad, cols_all, w, (sh, sw), (ph, pw), has_b = cache
    xp = backend.array_module(dy)
    f, c, kh, kw = w.shape
    n, _, oh, ow = dy.shape
    dy3 = dy.reshape(n, f, oh * ow)
    w2 = w.reshape(f, -1)
    dw2 = xp.zeros_like(w2)
    dxpad = xp.empty(xpad.shape, dtype=dy.dtype) if need_dx else None
    step = chunk_size(n, c * kh * kw * oh * ow * dy.itemsize, MAX_COLS_BYTES)
    for s in range(0, n, step):
        cols = cols_all if cols_all is not None else im2col(xp, xpad[s:s + step], kh, kw, sh, sw, oh, ow)
        g = dy3[s:s + step]
        dw2 += xp.tensordot(g, cols, axes=([0, 2], [0, 2]))
        if need_dx:
            dcols = xp.matmul(w2.T, g)
            dxpad[s:s + step] = col2im(xp, dcols, (g.shape[0],) + xpad.shape[1:], kh, kw, sh, sw, oh, ow)
    db = dy.sum(axis=(0, 2, 3)) if has_b else None
    dx = None
    if need_dx:
        dx = unpad(dxpad, ph, pw).copy() if (ph or pw) else dxpad
    return dx, dw2.reshape(w.shape), db
