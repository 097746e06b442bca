"""Max and average pooling as Numba CUDA kernels, matching fastcnn/pool/vectorised.py.

Window of output (i, j): input rows h = i·sh + p − ph, columns w = j·sw + q − pw,
for 0 ≤ p < kh, 0 ≤ q < kw, offset index k = p·kw + q (row-major).

Max:  y = max over the window of x padded with −inf;  arg = the first k reaching it
      (row-major order: the tie rule of every CPU path; a NaN wins, as numpy's argmax).
      dx[n, c, h, w] = Σ dy[n, c, i, j] over the windows containing (h, w) whose arg points to it.
Avg:  y = (Σ over the window of x padded with 0) / (kh·kw)  (padding counted in the divisor);
      dx[n, c, h, w] = Σ dy[n, c, i, j] / (kh·kw) over the windows containing (h, w).

Both backward kernels are gathers — one thread per (unpadded) input element, no atomics —
summing over the windows in ascending (p, q) order, the order of the CPU paths.
Every kernel reads and writes the unpadded arrays; padding is an index test.
"""
from __future__ import annotations

from numba import cuda

from .launch import expect_shape, grid, out_size, scalar, sim_args, size, stream_for, unravel


@cuda.jit
def max_forward_kernel(x, y, arg, kh, kw, sh, sw, ph, pw, neg_inf):
    """One thread per output element. x (N, C, H, W) -> y, arg (N, C, oh, ow); arg = p·kw + q."""
    t = cuda.grid(1)
    nb, cc, oh, ow = y.shape
    if t >= nb * cc * oh * ow:
        return
    n, c, i, j = unravel(t, cc, oh, ow)
    hh, ww = x.shape[2], x.shape[3]
    best = neg_inf
    bk = 0
    for p in range(kh):
        h = i * sh + p - ph
        for q in range(kw):
            w = j * sw + q - pw
            v = neg_inf
            if 0 <= h < hh and 0 <= w < ww:
                v = x[n, c, h, w]
            if v > best or (v != v and best == best):  # strict: the first maximum wins
                best = v
                bk = p * kw + q
    y[n, c, i, j] = best
    arg[n, c, i, j] = bk


@cuda.jit
def max_backward_kernel(dy, arg, dx, kh, kw, sh, sw, ph, pw, zero):
    """One thread per input element. dy, arg (N, C, oh, ow) -> dx (N, C, H, W) (a gather)."""
    t = cuda.grid(1)
    nb, cc, hh, ww = dx.shape
    if t >= nb * cc * hh * ww:
        return
    n, c, h, w = unravel(t, cc, hh, ww)
    oh, ow = dy.shape[2], dy.shape[3]
    hp = h + ph
    wp = w + pw
    acc = zero
    for p in range(hp % sh, min(kh, hp + 1), sh):
        i = (hp - p) // sh
        if i < oh:
            for q in range(wp % sw, min(kw, wp + 1), sw):
                j = (wp - q) // sw
                if j < ow and arg[n, c, i, j] == p * kw + q:
                    acc += dy[n, c, i, j]
    dx[n, c, h, w] = acc


@cuda.jit
def avg_forward_kernel(x, y, kh, kw, sh, sw, ph, pw, zero, area):
    """One thread per output element. x (N, C, H, W) -> y (N, C, oh, ow) = window sum / area."""
    t = cuda.grid(1)
    nb, cc, oh, ow = y.shape
    if t >= nb * cc * oh * ow:
        return
    n, c, i, j = unravel(t, cc, oh, ow)
    hh, ww = x.shape[2], x.shape[3]
    acc = zero
    for p in range(kh):
        h = i * sh + p - ph
        if 0 <= h < hh:
            for q in range(kw):
                w = j * sw + q - pw
                if 0 <= w < ww:
                    acc += x[n, c, h, w]
    y[n, c, i, j] = acc / area


@cuda.jit
def avg_backward_kernel(dy, dx, kh, kw, sh, sw, ph, pw, zero, area):
    """One thread per input element. dy (N, C, oh, ow) -> dx (N, C, H, W) = Σ dy / area (a gather)."""
    t = cuda.grid(1)
    nb, cc, hh, ww = dx.shape
    if t >= nb * cc * hh * ww:
        return
    n, c, h, w = unravel(t, cc, hh, ww)
    oh, ow = dy.shape[2], dy.shape[3]
    hp = h + ph
    wp = w + pw
    acc = zero
    for p in range(hp % sh, min(kh, hp + 1), sh):
        i = (hp - p) // sh
        if i < oh:
            for q in range(wp % sw, min(kw, wp + 1), sw):
                j = (wp - q) // sw
                if j < ow:
                    acc += dy[n, c, i, j] / area
    dx[n, c, h, w] = acc


def _out_shape(x_shape, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    return n, c, out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)


def _launch(kern, total, arrays, *args):
    if total:
        blocks, threads = grid(total)
        kern[blocks, threads, stream_for(*arrays)](*sim_args(arrays), *args)


def max_forward(x, y, arg, kernel, stride, padding):
    """x (N, C, H, W) -> fills y (N, C, oh, ow) and arg (same shape, an integer dtype); returns y, arg."""
    expect_shape("max-pool y", y, _out_shape(x.shape, kernel, stride, padding))
    expect_shape("max-pool arg", arg, y.shape)
    _launch(max_forward_kernel, size(y), (x, y, arg), *kernel, *stride, *padding, scalar(x, -float("inf")))
    return y, arg


def max_backward(dy, arg, dx, kernel, stride, padding):
    """dy, arg (N, C, oh, ow) -> fills dx (N, C, H, W); returns dx."""
    expect_shape("max-pool dy", dy, _out_shape(dx.shape, kernel, stride, padding))
    expect_shape("max-pool arg", arg, dy.shape)
    _launch(max_backward_kernel, size(dx), (dy, arg, dx), *kernel, *stride, *padding, scalar(dx, 0))
    return dx


def avg_forward(x, y, kernel, stride, padding):
    """x (N, C, H, W) -> fills y (N, C, oh, ow); returns y."""
    expect_shape("avg-pool y", y, _out_shape(x.shape, kernel, stride, padding))
    area = kernel[0] * kernel[1]
    _launch(avg_forward_kernel, size(y), (x, y), *kernel, *stride, *padding, scalar(y, 0), scalar(y, area))
    return y


def avg_backward(dy, dx, kernel, stride, padding):
    """dy (N, C, oh, ow) -> fills dx (N, C, H, W); returns dx."""
    expect_shape("avg-pool dy", dy, _out_shape(dx.shape, kernel, stride, padding))
    area = kernel[0] * kernel[1]
    _launch(avg_backward_kernel, size(dx), (dy, dx), *kernel, *stride, *padding, scalar(dx, 0), scalar(dx, area))
    return dx
