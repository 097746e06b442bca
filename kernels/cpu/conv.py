"""Direct convolution, a group of samples at a time, all inside one parallel region (Numba).

For a group of G samples the receptive fields are unrolled side by side into a buffer that
stays in cache (sample v in columns v·L … v·L + L − 1):
    cols[(c, p, q), (v, i, j)] = xpad[s₀ + v, c, i·sh + p, j·sw + q]     (K = C·kh·kw, L = oh·ow)
and multiplied by the weights with loops whose innermost runs along the G·L columns
(contiguous: the compiler vectorises it):
    z[f, l] = b[f] + Σ_k W₂[f, k] · cols[k, l]           z (F, G, L): each sample's NCHW output
Backward, per group, from dz (F, G·L) = ∂L/∂z:
    db[f] += Σ_l dz[f, l],   dW₂[f, k] += Σ_l dz[f, l] · cols[k, l],
    dcols[k, l] = Σ_f W₂[f, k] · dz[f, l],   dxpad += col2im(dcols)
G (``group``) makes the rows about WIDTH columns long within a cache budget: loops over one
sample's L (16 for compact's second layer, 64 for LeNet-5's) spent their time in loop
overhead and in the horizontal sums of the dW dot products (interleaved A/B, batch 128:
LeNet-5 conv2 backward 1.28 → 0.96 ms, compact conv2 1.94 → 1.60 ms going from ~64 to ~512
columns). Buffers are (K, G, L), indexed cols[k, v], so that every row the helpers touch is
C-contiguous (column slices of a 2-D buffer were not vectorised).
``nt`` shares own disjoint, contiguous runs of samples (launch.span), cut into groups; each
kernel is a serial *share* function of one share's run, executed on Numba's threads by
launch.Shares (compiled once, not twice as a prange body would be; a thread that finishes takes
the next share); weight gradients are summed per share, then across shares in share order. The
caller passes nt = launch.shares(N).
No BLAS call, so Numba's threads never wait on (or fight with) OpenBLAS's.

The fused variants (Conv2D → ReLU → MaxPool2D) apply bias, ReLU and pooling to z while it is
still in cache and keep the argmax; their backward scatters dy to the argmax (see pool.py for
the tie rule: first maximum in row-major order).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import checks
from .launch import Shares, span
from .pool import relu_maxpool_plane
from .unroll import fold_rows, unroll_rows

# fastmath lets the compiler reorder the sums of the weight gradients into SIMD lanes; the
# results differ from a sequential sum only by rounding (tests: ≤ 1e-10 relative in float64).
OPTS = dict(cache=True, nogil=True, fastmath=True)
WIDTH = 384  # columns a group of samples fills (when the limits below allow); 384 beat 512 by 2–10 %
GROUP_BYTES = 512 * 1024  # at most this much unrolled input per thread (cache-resident)


def group(k: int, l: int, n: int, nt: int, itemsize: int) -> int:
    """Samples per group, at most: ⌈WIDTH / l⌉ (L = l output positions), but the (k, G·l)
    buffer within GROUP_BYTES and at least one group per share (n samples in nt shares).
    The kernels cut a thread's samples into the fewest groups of at most this size, of equal
    sizes (±1): a short last group cost up to 15 % (LeNet-5's second layer at batch 32 ran
    groups of 6, 6 and 4 samples per thread; now 6, 5, 5)."""
    g = -(-WIDTH // l)
    g = min(g, GROUP_BYTES // (k * l * itemsize), -(-n // nt))
    return max(1, g)


@njit(inline="always", **OPTS)
def _groups(t, nt, n, g):
    """Thread t's samples span(t, nt, n) as (first sample, count, q): q groups of at most g."""
    lo, hi = span(t, nt, n)
    return lo, hi - lo, -(-(hi - lo) // g)


@njit(inline="always", **OPTS)
def _group(lo, count, q, i):
    """Group i of _groups' q: (first sample, samples), the sizes equal within one."""
    first, last = span(i, q, count)
    return lo + first, last - first


@njit(inline="always", **OPTS)
def _matmul(w2, b, cols, z, nl):
    """z[:, :nl] = b + w2 (F, K) @ cols[:, :nl], the inner loop along the nl columns (vectorised).

    Four rows of cols per sweep over z: each z[f, l] is loaded and stored once per four
    multiply-adds instead of once per one (an axpy per k is bound by those loads and stores).
    """
    nf, nk = w2.shape
    for f in range(nf):
        bf = b[f]
        zr = z[f]
        for l in range(nl):
            zr[l] = bf
    k4 = nk - nk % 4
    for k in range(0, k4, 4):
        c0, c1, c2, c3 = cols[k], cols[k + 1], cols[k + 2], cols[k + 3]
        for f in range(nf):
            a0, a1, a2, a3 = w2[f, k], w2[f, k + 1], w2[f, k + 2], w2[f, k + 3]
            zr = z[f]
            for l in range(nl):
                zr[l] += a0 * c0[l] + a1 * c1[l] + a2 * c2[l] + a3 * c3[l]
    for k in range(k4, nk):
        cr = cols[k]
        for f in range(nf):
            a = w2[f, k]
            zr = z[f]
            for l in range(nl):
                zr[l] += a * cr[l]


@njit(inline="always", **OPTS)
def _grads(w2, cols, dz, dw, db, dcols, nl, need_dx):
    """Accumulate db (F,) and dw (F, K) from dz[:, :nl] and cols[:, :nl]; dcols[:, :nl] = w2ᵀ @ dz
    when need_dx. Both run in blocks so each vector load feeds several multiply-adds:
    dw two rows of k at a time, four dot products along L sharing the loads of dz[f], dz[f+1]
    (or one row of f when F is odd), and dcols[k] summed over four rows of dz per sweep."""
    nf, nk = w2.shape
    zero = dz.dtype.type(0)
    for f in range(nf):
        dr = dz[f]
        acc = zero
        for l in range(nl):
            acc += dr[l]
        db[f] += acc
    f2 = nf - nf % 2
    k2 = nk - nk % 2
    for k in range(0, k2, 2):
        c0, c1 = cols[k], cols[k + 1]
        for f in range(0, f2, 2):
            d0, d1 = dz[f], dz[f + 1]
            s00 = s01 = s10 = s11 = zero
            for l in range(nl):
                s00 += d0[l] * c0[l]
                s01 += d0[l] * c1[l]
                s10 += d1[l] * c0[l]
                s11 += d1[l] * c1[l]
            dw[f, k] += s00
            dw[f, k + 1] += s01
            dw[f + 1, k] += s10
            dw[f + 1, k + 1] += s11
        for f in range(f2, nf):
            dr = dz[f]
            s0 = s1 = zero
            for l in range(nl):
                s0 += dr[l] * c0[l]
                s1 += dr[l] * c1[l]
            dw[f, k] += s0
            dw[f, k + 1] += s1
    for k in range(k2, nk):
        cr = cols[k]
        for f in range(nf):
            dr = dz[f]
            acc = zero
            for l in range(nl):
                acc += dr[l] * cr[l]
            dw[f, k] += acc
    if not need_dx:
        return
    f4 = nf - nf % 4
    for k in range(nk):
        out = dcols[k]
        for l in range(nl):
            out[l] = 0
        for f in range(0, f4, 4):
            a0, a1, a2, a3 = w2[f, k], w2[f + 1, k], w2[f + 2, k], w2[f + 3, k]
            d0, d1, d2, d3 = dz[f], dz[f + 1], dz[f + 2], dz[f + 3]
            for l in range(nl):
                out[l] += a0 * d0[l] + a1 * d1[l] + a2 * d2[l] + a3 * d3[l]
        for f in range(f4, nf):
            a = w2[f, k]
            dr = dz[f]
            for l in range(nl):
                out[l] += a * dr[l]


@njit(**OPTS)
def _forward_share(t, nt, xpad, w2, b, kh, kw, sh, sw, oh, ow, pool, pkh, pkw, psh, psw, g, y, arg):
    """Thread t's part of every direct forward: its samples span(t, nt, N), in groups of at
    most g. Without ``pool``: y = z (N, F, oh, ow), arg a dummy. With ``pool``: y = maxpool(relu(z))
    (N, F, poh, pow) and arg int32 (same shape) = i·ow + j of the window's first maximum of z,
    or −1 where that maximum is ≤ 0 (ReLU passes no gradient); relu(max z) = max relu(z):
    ReLU is monotonic."""
    n = xpad.shape[0]
    nf, nk = w2.shape
    nl = oh * ow
    yl = y.reshape(n, nf, -1)
    zero = xpad.dtype.type(0)  # z already holds the bias
    cols = np.empty((nk, g, nl), dtype=xpad.dtype)
    z = np.empty((nf, g, nl), dtype=xpad.dtype)
    lo, count, q = _groups(t, nt, n, g)
    for grp in range(q):
        s0, m = _group(lo, count, q, grp)
        for j in range(m):
            unroll_rows(xpad[s0 + j], kh, kw, sh, sw, oh, ow, cols, j)
        _matmul(w2, b, cols.reshape(nk, g * nl), z.reshape(nf, g * nl), m * nl)
        for j in range(m):
            for f in range(nf):
                if pool:
                    relu_maxpool_plane(z[f, j], ow, zero, pkh, pkw, psh, psw, y[s0 + j, f], arg[s0 + j, f])
                else:  # an element loop: a slice assignment compiles a shape check's message (≈ 2 s)
                    src, dst = z[f, j], yl[s0 + j, f]
                    for l in range(nl):
                        dst[l] = src[l]


_forward = Shares(_forward_share)


def _g(w2, l, x, nt):
    return group(w2.shape[1], l, len(x), nt, x.itemsize)


def _check_conv(kernel, xpad, w2, kh, kw, sh, sw, oh, ow, nt):
    """xpad (N, C, Hp, Wp) and w2 (F, C·kh·kw) of one dtype, (oh, ow) the windows over (Hp, Wp)."""
    checks.array(kernel, "xpad", xpad, 4, "float")
    checks.array(kernel, "w2", w2, 2)
    checks.same_dtype(kernel, xpad=xpad, w2=w2)
    checks.positive(kernel, nt=nt)
    checks.window(kernel, "H", xpad.shape[2], kh, sh, oh)
    checks.window(kernel, "W", xpad.shape[3], kw, sw, ow)
    if w2.shape[1] != xpad.shape[1] * kh * kw:
        checks.fail(kernel, f"w2 {w2.shape} is (F, C·kh·kw) for C = {w2.shape[1] / (kh * kw):g} input channels "
                            f"but xpad {xpad.shape} has {xpad.shape[1]}")


def _check_bias(kernel, b, w2):
    checks.array(kernel, "b", b, 1)
    checks.same_dtype(kernel, w2=w2, b=b)
    checks.shape(kernel, "b", b, (w2.shape[0],))


def conv_forward(xpad, w2, b, kh, kw, sh, sw, oh, ow, nt):
    """xpad (N, C, Hp, Wp), w2 (F, C·kh·kw), b (F,) -> y (N, F, oh, ow)."""
    _check_conv("conv_forward", xpad, w2, kh, kw, sh, sw, oh, ow, nt)
    _check_bias("conv_forward", b, w2)
    y = np.empty((len(xpad), len(w2), oh, ow), dtype=xpad.dtype)
    _forward(nt, xpad, w2, b, kh, kw, sh, sw, oh, ow, False, 1, 1, 1, 1, _g(w2, oh * ow, xpad, nt), y, _NO_ARG)
    return y


def conv_relu_maxpool_forward(xpad, w2, b, kh, kw, sh, sw, oh, ow, pkh, pkw, psh, psw, poh, pow_, nt):
    """maxpool(relu(conv(xpad))) -> y, arg (N, F, poh, pow); see _forward_share."""
    _check_conv("conv_relu_maxpool_forward", xpad, w2, kh, kw, sh, sw, oh, ow, nt)
    _check_bias("conv_relu_maxpool_forward", b, w2)
    checks.window("conv_relu_maxpool_forward", "the pooled H", oh, pkh, psh, poh)
    checks.window("conv_relu_maxpool_forward", "the pooled W", ow, pkw, psw, pow_)
    y = np.empty((len(xpad), len(w2), poh, pow_), dtype=xpad.dtype)
    arg = np.empty(y.shape, dtype=np.int32)
    _forward(nt, xpad, w2, b, kh, kw, sh, sw, oh, ow, True, pkh, pkw, psh, psw, _g(w2, oh * ow, xpad, nt), y, arg)
    return y, arg


_NO_ARG = np.empty((1, 1, 1, 1), dtype=np.int32)  # the unpooled forward's (unused) arg


PLAIN, RELU, MAXPOOL = 0, 1, 2  # how a backward pass turns dy into dz


@njit(**OPTS)
def _backward_share(t, nt, xpad, w2, dy, aux, mode, kh, kw, sh, sw, oh, ow, need_dx, g, dxpad, dw_t, db_t):
    """Thread t's part of every direct backward (the groups of _forward_share). ``mode`` says
    how dz (F, oh·ow) comes from dy:
    PLAIN dz = dy;  RELU dz = dy · [aux > 0] (aux = the layer's output y);
    MAXPOOL dz = dy (N, F, poh, pow) scattered to aux = arg (−1: no gradient).
    Writes dxpad (N, C, Hp, Wp) (when need_dx) and adds this thread's sums to dw_t[t]
    (F, C·kh·kw) and db_t[t] (F,); the callers add the nt rows up (_summed) in NumPy."""
    n, nf = dy.shape[0], dy.shape[1]
    nk = w2.shape[1]
    nl = oh * ow
    cols = np.empty((nk, g, nl), dtype=xpad.dtype)
    dz = np.zeros((nf, g, nl), dtype=xpad.dtype)
    dcols = np.empty((nk, g, nl) if need_dx else (1, 1, 1), dtype=xpad.dtype)
    lo, count, q = _groups(t, nt, n, g)
    for grp in range(q):
        s0, m = _group(lo, count, q, grp)
        for j in range(m):
            s = s0 + j
            if mode == MAXPOOL:
                for f in range(nf):
                    dzr = dz[f, j]
                    dzr[:] = 0
                    for u in range(dy.shape[2]):
                        for v in range(dy.shape[3]):
                            a = int(aux[s, f, u, v])
                            if a >= 0:
                                dzr[a] += dy[s, f, u, v]
            else:
                for f in range(nf):
                    dzr = dz[f, j]
                    for i in range(oh):
                        for jj in range(ow):
                            gr = dy[s, f, i, jj]
                            dzr[i * ow + jj] = gr if mode == PLAIN or aux[s, f, i, jj] > 0 else 0
            unroll_rows(xpad[s], kh, kw, sh, sw, oh, ow, cols, j)
        _grads(w2, cols.reshape(nk, g * nl), dz.reshape(nf, g * nl), dw_t[t], db_t[t],
               dcols.reshape(nk, g * nl) if need_dx else dcols.reshape(1, 1), m * nl, need_dx)
        if need_dx:
            for j in range(m):
                dxpad[s0 + j] = 0
                fold_rows(dcols, kh, kw, sh, sw, oh, ow, dxpad[s0 + j], j)


_backward_shares = Shares(_backward_share)


def _backward(xpad, w2, dy, aux, mode, kh, kw, sh, sw, oh, ow, need_dx, nt):
    """-> dxpad (N, C, Hp, Wp) (or a dummy), dw_t (nt, F, C·kh·kw), db_t (nt, F)."""
    kernel = ("conv_backward", "relu_mask_conv_backward", "conv_relu_maxpool_backward")[mode]
    checks.array(kernel, "dy", dy, 4)
    _check_conv(kernel, xpad, w2, kh, kw, sh, sw, oh, ow, nt)
    g = _g(w2, oh * ow, dy, nt)  # after the checks: it reads their shapes
    checks.same_dtype(kernel, xpad=xpad, dy=dy)
    n, f = xpad.shape[0], w2.shape[0]
    if mode == MAXPOOL:
        if tuple(dy.shape[:2]) != (n, f):
            checks.fail(kernel, f"dy {dy.shape} must be (N, F, poh, pow) with N = {n}, F = {f}")
        checks.array(kernel, "arg", aux, 4, np.int32)
        checks.indices(kernel, "arg", aux, oh * ow, lowest=-1)
    else:
        checks.shape(kernel, "dy", dy, (n, f, oh, ow))
        checks.array(kernel, "the layer output", aux, 4)
    checks.shape(kernel, "the layer output" if mode == RELU else "arg", aux, dy.shape)
    nf, nk = w2.shape
    dw_t = np.zeros((nt, nf, nk), dtype=w2.dtype)
    db_t = np.zeros((nt, nf), dtype=w2.dtype)
    dxpad = np.empty(xpad.shape if need_dx else (1, 1, 1, 1), dtype=xpad.dtype)
    _backward_shares(nt, xpad, w2, dy, aux, mode, kh, kw, sh, sw, oh, ow, need_dx, g, dxpad, dw_t, db_t)
    return dxpad, dw_t, db_t


def _summed(out):
    dxpad, dw_t, db_t = out
    return dxpad, dw_t.sum(axis=0), db_t.sum(axis=0)


def conv_backward(xpad, w2, dy, kh, kw, sh, sw, need_dx, nt):
    """dy (N, F, oh, ow) -> dxpad, dw (F, C·kh·kw), db (F,): the backward of conv_forward."""
    oh, ow = (dy.shape[2], dy.shape[3]) if getattr(dy, "ndim", 0) == 4 else (1, 1)  # else _backward says so
    return _summed(_backward(xpad, w2, dy, dy, PLAIN, kh, kw, sh, sw, oh, ow, need_dx, nt))


def relu_mask_conv_backward(xpad, w2, dy, y, kh, kw, sh, sw, need_dx, nt):
    """The backward of relu(conv(xpad)) with y its output: dz = dy · [y > 0]."""
    oh, ow = (dy.shape[2], dy.shape[3]) if getattr(dy, "ndim", 0) == 4 else (1, 1)  # else _backward says so
    return _summed(_backward(xpad, w2, dy, y, RELU, kh, kw, sh, sw, oh, ow, need_dx, nt))


def conv_relu_maxpool_backward(xpad, w2, dy, arg, kh, kw, sh, sw, oh, ow, need_dx, nt):
    """dy, arg (N, F, poh, pow) -> the backward of conv_relu_maxpool_forward."""
    return _summed(_backward(xpad, w2, dy, arg, MAXPOOL, kh, kw, sh, sw, oh, ow, need_dx, nt))
