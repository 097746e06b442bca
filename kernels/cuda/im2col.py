"""im2col and col2im as Numba CUDA kernels, in the column layout of fastcnn/conv/im2col.py.

    cols[n, r, l] = x[n, c, i·sh + p − ph, j·sw + q − pw]   (0 outside x: zero padding)
    with r = (c·kh + p)·kw + q  and  l = i·ow + j           cols: (N, C·kh·kw, oh·ow)

Both kernels read or write the *unpadded* x / dx: padding is an index test, never a
padded copy. col2im is a gather, one thread per input element, so it needs no atomics:

    dx[n, c, h, w] = Σ_{p, q} cols[n, (c·kh + p)·kw + q, i·ow + j]
    over the offsets with h + ph = i·sh + p, w + pw = j·sw + q, 0 ≤ i < oh, 0 ≤ j < ow,
    summed in ascending (p, q) order — the order of the CPU col2im, so float results agree.
"""
from __future__ import annotations

from numba import cuda

from .launch import expect_shape, grid, out_size, scalar, sim_args, size, stream_for, unravel


@cuda.jit
def im2col_kernel(x, cols, kh, kw, sh, sw, ph, pw, ow, zero):
    """One thread per column element.

    x (N, C, H, W), cols (N, C·kh·kw, oh·ow);  cols[n, r, l] = x[n, c, i·sh+p−ph, j·sw+q−pw] or 0.
    Thread t = (n·K + r)·L + l with K = C·kh·kw, L = oh·ow (l fastest: coalesced writes).
    """
    t = cuda.grid(1)
    nk, k, L = cols.shape
    if t >= nk * k * L:
        return
    l = t % L
    r = (t // L) % k
    n = t // (L * k)
    i = l // ow
    j = l - i * ow
    khw = kh * kw
    c = r // khw
    pq = r - c * khw
    p = pq // kw
    q = pq - p * kw
    h = i * sh + p - ph
    w = j * sw + q - pw
    v = zero
    if 0 <= h < x.shape[2] and 0 <= w < x.shape[3]:
        v = x[n, c, h, w]
    cols[n, r, l] = v


@cuda.jit
def col2im_kernel(cols, dx, kh, kw, sh, sw, ph, pw, oh, ow, zero):
    """One thread per (unpadded) input element, gathering every column entry that came from it.

    cols (N, C·kh·kw, oh·ow), dx (N, C, H, W);
    dx[n, c, h, w] = Σ cols[n, (c·kh+p)·kw+q, i·ow+j] over p ≡ h+ph (mod sh), i = (h+ph−p)/sh < oh,
    and likewise q, j — in ascending (p, q) order. Padding positions get no thread (their
    gradient is discarded anyway).
    """
    t = cuda.grid(1)
    nb, c_, hh, ww = dx.shape
    if t >= nb * c_ * hh * ww:
        return
    n, c, h, w = unravel(t, c_, hh, ww)
    hp = h + ph
    wp = w + pw
    acc = zero
    for p in range(hp % sh, min(kh, hp + 1), sh):
        i = (hp - p) // sh
        if i < oh:
            for q in range(wp % sw, min(kw, wp + 1), sw):
                j = (wp - q) // sw
                if j < ow:
                    acc += cols[n, (c * kh + p) * kw + q, i * ow + j]
    dx[n, c, h, w] = acc


def im2col(x, cols, kernel, stride, padding):
    """Fill ``cols`` (N, C·kh·kw, oh·ow) from device array ``x`` (N, C, H, W); returns cols."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    expect_shape("im2col cols", cols, (n, c * kh * kw, oh * ow))
    total = size(cols)
    if total:
        blocks, threads = grid(total)
        im2col_kernel[blocks, threads, stream_for(x, cols)](*sim_args((x, cols)), kh, kw, sh, sw, ph, pw, ow, scalar(cols, 0))
    return cols


def col2im(cols, dx, kernel, stride, padding):
    """Fill ``dx`` (N, C, H, W) with the column gradients ``cols`` (N, C·kh·kw, oh·ow) summed back; returns dx.

    oh, ow follow from dx's H, W and the geometry (as in the forward pass).
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = dx.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    expect_shape("col2im cols", cols, (n, c * kh * kw, oh * ow))
    total = size(dx)
    if total:
        blocks, threads = grid(total)
        col2im_kernel[blocks, threads, stream_for(cols, dx)](*sim_args((cols, dx)), kh, kw, sh, sw, ph, pw, oh, ow,
                                                              scalar(dx, 0))
    return dx
