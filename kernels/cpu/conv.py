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
The three products run in register blocks of four rows by four (blocks.py: ``z_rows4`` (six by four
for the last rows of an F4 that is 2 mod 4: ``z_rows6``),
``dw_block``, ``dcols_rows4``; the unrolled buffer, or conv_c1's flat input, is their row source)
on weights padded with zeros to whole blocks (``_padded``): no remainder loops. The shares are
made per kind of layer (``_kind``: stride 1, rows of four, or any; a 2×2 pool or any) by
factories whose arguments are compile-time constants, so that a run compiles only the copy, fold
and pooling code its layers use.

The fused variants (Conv2D → ReLU → MaxPool2D) apply bias, ReLU and pooling to z while it is
still in cache and keep the argmax (not in evaluation: an empty arg asks for y alone); their
backward scatters dy to the argmax (see pool.py for the tie rule: first maximum in row-major order).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit

from . import checks, conv_c1
from .blocks import grads, share_group, share_groups, z_rows4, z_rows6
from .launch import Shares
from .pool import relu_maxpool_2x2_inline, relu_maxpool_plane
from .unroll import fold_rows, fold_s1, fold_w4, unroll_rows, unroll_s1, unroll_w4

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
def _cols_buffer(nk, nk4, g, nl, dtype):
    """The (K4, g, nl) unroll buffer: rows K … K4 − 1 (the padding, see _padded) zero."""
    cols = np.empty((nk4, g, nl), dtype=dtype)
    for k in range(nk, nk4):
        for j in range(g):
            row = cols[k, j]
            for l in range(nl):
                row[l] = 0
    return cols


# Each share kernel is made per *kind* of layer — stride 1 or not, output rows four wide, a 2×2
# stride-2 pool or another — from a factory whose arguments are compile-time constants: Numba
# drops the branches of the other kinds before typing them, so a run compiles the copy, fold and
# pooling code of the layers it has, not of every kind (LeNet-5's shares compiled the general,
# strided and rows-of-four paths too: ≈ 1 s of a cold run). The kinds are cached like any kernel.

def _kind(sh, sw, ow) -> str:
    if sh == 1 and sw == 1:
        return "w4" if ow == 4 else "s1"
    return "any"


def _make_forward_share(kind, pool2):
    """The forward share for an unroll kind and, with ``pool2``, the 2×2 stride-2 pool. (Whether F4
    ends in a block of two rows is tested when it runs: as a kind of its own it had LeNet-5's two
    layers compile two shares each, ≈ 6 s more of a cold run.)"""
    w4, s1 = kind == "w4", kind == "s1"
    shifts = pool2 and kind != "any"  # whether a one-channel layer may skip the unroll (conv_c1.py)

    def forward_share(t, nt, xpad, w4_, b4, kh, kw, sh, sw, oh, ow, pool, pkh, pkw, psh, psw, g, y, arg, wide, offs):
        """Thread t's part of a direct forward: its samples span(t, nt, N), in groups of at most
        g. w4_ (F4, K4), b4 (F4,): the weights and bias padded with zeros (_padded); y has the F
        real channels. Without ``pool``: y = z (N, F, oh, ow), arg a dummy. With ``pool``: y =
        maxpool(relu(z)) (N, F, poh, pow) and arg int32 (same shape) = i·ow + j of the window's
        first maximum of z, or −1 where that maximum is ≤ 0 (ReLU passes no gradient); an empty
        arg (N, F, 0, 0): y alone. relu(max z) = max relu(z): ReLU is monotonic.
        The columns are the unrolled buffer (offs[k] = k·g·oh·ow), or with ``wide`` (a layer
        conv_c1.fits) the flat input itself (offs from conv_c1.offsets) and z's planes wide."""
        n, c, hw = xpad.shape[0], xpad.shape[1], xpad.shape[2] * xpad.shape[3]
        nf, nf4, nk4 = y.shape[1], w4_.shape[0], w4_.shape[1]
        nl = oh * ow
        wide = shifts and wide
        plane = hw if wide else nl  # z's columns per sample
        yl = y.reshape(n, nf, -1)
        zero = xpad.dtype.type(0)  # z already holds the bias
        cols = _cols_buffer(c * kh * kw, nk4, 1 if wide else g, 1 if wide else nl, xpad.dtype)
        z = np.empty((nf4, g * plane), dtype=xpad.dtype)
        flat = xpad.reshape(n * c * hw)
        lo, count, q = share_groups(t, nt, n, g)
        for grp in range(q):
            s0, m = share_group(lo, count, q, grp)
            if wide:  # the image is its own columns: from its first pixel to the group's last output
                src, base, run = flat, s0 * hw, (m - 1) * hw + (oh - 1) * xpad.shape[3] + ow
            else:
                for j in range(m):
                    if w4:
                        unroll_w4(xpad[s0 + j], kh, kw, oh, cols, j)
                    elif s1:
                        unroll_s1(xpad[s0 + j], kh, kw, oh, ow, cols, j)
                    else:
                        unroll_rows(xpad[s0 + j], kh, kw, sh, sw, oh, ow, cols, j)
                src, base, run = cols.reshape(-1), 0, m * nl
            last4 = nf4 - 6 if nf4 % 4 == 2 else nf4  # F4 2 mod 4 (then ≥ 6, _padded): six rows last
            for f in range(0, last4, 4):
                z_rows4(w4_, b4, src, base, offs, z, f, run)
            if last4 != nf4:
                z_rows6(w4_, b4, src, base, offs, z, last4, run)
            for j in range(m):
                for f in range(nf):
                    zp = z[f, j * plane:(j + 1) * plane]
                    if pool:
                        if pool2:
                            relu_maxpool_2x2_inline(zp, xpad.shape[3] if wide else ow, ow, zero, y[s0 + j, f], arg[s0 + j, f])
                        else:
                            relu_maxpool_plane(zp, ow, zero, pkh, pkw, psh, psw, y[s0 + j, f], arg[s0 + j, f])
                    else:  # an element loop: a slice assignment compiles a shape check's message (≈ 2 s)
                        dst = yl[s0 + j, f]
                        for l in range(nl):
                            dst[l] = zp[l]

    return forward_share


@functools.lru_cache(maxsize=None)
def _forward_kernel(kind, pool2):
    """The forward Shares of a layer's kind (made on first use, compiled on its first call)."""
    return Shares(njit(**OPTS)(_make_forward_share(kind, pool2)))


def _columns(xpad, w4, kh, kw, oh, ow, nt, wide):
    """(g, offs) of a share's row source (blocks.py): with ``wide`` the flat input (conv_c1's
    group and tap offsets), else the unrolled (K4, g·oh·ow) buffer, offs[k] = k·g·oh·ow."""
    if wide:
        return conv_c1.group(xpad, nt), conv_c1.offsets(kh, kw, xpad.shape[3], w4.shape[1])
    g = group(w4.shape[1], oh * ow, len(xpad), nt, xpad.itemsize)
    return g, _row_offsets(w4.shape[1], g * oh * ow)


@functools.lru_cache(maxsize=64)
def _row_offsets(k4: int, row: int) -> np.ndarray:
    """offs[k] = k·row: the rows of a (K4, row) unrolled buffer (made once per shape; read only)."""
    return np.arange(k4, dtype=np.int64) * row


def _forward(nt, xpad, w4, b4, kh, kw, sh, sw, oh, ow, pool, pkh, pkw, psh, psw, y, arg):
    """Run the forward share of this layer's kind: unrolled, or without an unroll where conv_c1 fits."""
    pool2 = bool(pool) and (pkh, pkw, psh, psw) == (2, 2, 2, 2)
    xpad = np.ascontiguousarray(xpad)  # the shares read it flat
    wide = conv_c1.fits(xpad, sh, sw, kh, kw, oh, ow, pool2)
    g, offs = _columns(xpad, w4, kh, kw, oh, ow, nt, wide)
    _forward_kernel(_kind(sh, sw, ow), pool2)(nt, xpad, w4, b4, kh, kw, sh, sw, oh, ow, pool, pkh, pkw, psh, psw, g,
                                              y, arg, wide, offs)


def _padded(w2, b=None, rows=2):
    """w2 (F, K) -> w4 (F4, K4) and b (F,) -> b4 (F4,), padded with zeros: K4 the multiple of four
    at or above K, F4 the multiple of ``rows`` at or above F, and at least 4. The kernels then run
    whole blocks of four rows of k and of f, and no remainder loops, whose code had cost a cold
    first run ≈ 3 s of compilation. The forward (rows=2) ends an F4 that is 2 mod 4, like LeNet-5's
    6, with a block of six rows (blocks.z_rows6; padding 6 to 8 had cost that layer's forward 16 %);
    the backward pads to four (rows=4): a block of two there cost more compilation (≈ 1.2 s) than
    its time saved."""
    f, k = w2.shape
    f4, k4 = max(-(-f // rows) * rows, 4), -(-k // 4) * 4  # at least 4 rows: blocks of 4 or 6
    w4 = np.zeros((f4, k4), dtype=w2.dtype)
    w4[:f, :k] = w2
    if b is None:
        return w4
    b4 = np.zeros(f4, dtype=w2.dtype)
    b4[:f] = b
    return w4, b4


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
    _forward(nt, xpad, *_padded(w2, b), kh, kw, sh, sw, oh, ow, False, 1, 1, 1, 1, y, _NO_ARG)
    return y


def conv_relu_maxpool_forward(xpad, w2, b, kh, kw, sh, sw, oh, ow, pkh, pkw, psh, psw, poh, pow_, nt, keep_arg=True):
    """maxpool(relu(conv(xpad))) -> y, arg (N, F, poh, pow); see _make_forward_share. With
    ``keep_arg=False`` (evaluation: no backward) arg is not computed and None is returned for it."""
    _check_conv("conv_relu_maxpool_forward", xpad, w2, kh, kw, sh, sw, oh, ow, nt)
    _check_bias("conv_relu_maxpool_forward", b, w2)
    checks.window("conv_relu_maxpool_forward", "the pooled H", oh, pkh, psh, poh)
    checks.window("conv_relu_maxpool_forward", "the pooled W", ow, pkw, psw, pow_)
    y = np.empty((len(xpad), len(w2), poh, pow_), dtype=xpad.dtype)
    arg = np.empty(y.shape if keep_arg else (len(xpad), len(w2), 0, 0), dtype=np.int32)
    _forward(nt, xpad, *_padded(w2, b), kh, kw, sh, sw, oh, ow, True, pkh, pkw, psh, psw, y, arg)
    return y, (arg if keep_arg else None)


_NO_ARG = np.empty((1, 1, 1, 1), dtype=np.int32)  # the unpooled forward's (unused) arg
_NO_AT = np.zeros(1, dtype=np.int64)  # the unrolled backward's (unused) index map


PLAIN, RELU, MAXPOOL = 0, 1, 2  # how a backward pass turns dy into dz


def _make_backward_share(kind):
    """The backward share for an unroll kind (see _make_forward_share)."""
    w4, s1 = kind == "w4", kind == "s1"

    shifts = kind != "any"  # whether a one-channel layer may skip the unroll (conv_c1.py)

    def backward_share(t, nt, xpad, w4_, dy, aux, mode, kh, kw, sh, sw, oh, ow, need_dx, g, dxpad, dw_t, db_t, wide,
                       offs, at):
        """Thread t's part of a direct backward (the groups of the forward; w4_ (F4, K4) the
        padded weights). ``mode`` says how dz (F, oh·ow) comes from dy:
        PLAIN dz = dy;  RELU dz = dy · [aux > 0] (aux = the layer's output y);
        MAXPOOL dz = dy (N, F, poh, pow) scattered to aux = arg (−1: no gradient).
        Writes dxpad (N, C, Hp, Wp) (when need_dx) and adds this thread's sums to dw_t[t]
        (F4, K4) and db_t[t] (F4,) (the padding's rows and columns stay zero: dz's padded rows
        are zero); the callers add the nt rows up and cut the padding off (_summed) in NumPy.
        With ``wide`` (MAXPOOL without dx, a layer conv_c1.fits) the columns are the flat input
        (offs from conv_c1.offsets), dz's planes wide, and at[i·ow + j] = i·Wp + j; else offs[k]
        = k·g·oh·ow of the unrolled buffer."""
        n, nf, c, hw = dy.shape[0], dy.shape[1], xpad.shape[1], xpad.shape[2] * xpad.shape[3]
        nf4, nk4 = w4_.shape
        nl = oh * ow
        wide = shifts and wide
        plane = hw if wide else nl  # dz's columns per sample
        cols = _cols_buffer(c * kh * kw, nk4, 1 if wide else g, 1 if wide else nl, xpad.dtype)
        dz = np.zeros((nf4, g * plane), dtype=xpad.dtype)  # rows F … F4 − 1 stay zero
        dcols = np.empty((nk4, g, nl) if need_dx else (1, 1, 1), dtype=xpad.dtype)
        dcols2 = dcols.reshape(nk4, g * nl) if need_dx else dcols.reshape(1, 1)
        flat = xpad.reshape(n * c * hw)
        lo, count, q = share_groups(t, nt, n, g)
        for grp in range(q):
            s0, m = share_group(lo, count, q, grp)
            for j in range(m):
                s = s0 + j
                for f in range(nf):
                    dzr = dz[f, j * plane:(j + 1) * plane]
                    if mode == MAXPOOL:
                        for l in range(plane):
                            dzr[l] = 0
                        for u in range(dy.shape[2]):
                            for v in range(dy.shape[3]):
                                a = int(aux[s, f, u, v])
                                if a >= 0:
                                    dzr[at[a] if wide else a] += dy[s, f, u, v]
                    else:
                        for i in range(oh):
                            for jj in range(ow):
                                gr = dy[s, f, i, jj]
                                dzr[i * ow + jj] = gr if mode == PLAIN or aux[s, f, i, jj] > 0 else 0
                if wide:
                    continue
                if w4:
                    unroll_w4(xpad[s], kh, kw, oh, cols, j)
                elif s1:
                    unroll_s1(xpad[s], kh, kw, oh, ow, cols, j)
                else:
                    unroll_rows(xpad[s], kh, kw, sh, sw, oh, ow, cols, j)
            if wide:  # the image is its own columns (see the forward)
                src, base, run = flat, s0 * hw, (m - 1) * hw + (oh - 1) * xpad.shape[3] + ow
            else:
                src, base, run = cols.reshape(-1), 0, m * nl
            grads(w4_, src, base, offs, dz, dw_t[t], db_t[t], dcols2, run, need_dx)
            if need_dx:
                for j in range(m):
                    dxpad[s0 + j] = 0
                    if w4:
                        fold_w4(dcols, kh, kw, oh, dxpad[s0 + j], j)
                    elif s1:
                        fold_s1(dcols, kh, kw, oh, ow, dxpad[s0 + j], j)
                    else:
                        fold_rows(dcols, kh, kw, sh, sw, oh, ow, dxpad[s0 + j], j)

    return backward_share


@functools.lru_cache(maxsize=None)
def _backward_kernel(kind):
    """The backward Shares of a layer's kind (made on first use, compiled on its first call)."""
    return Shares(njit(**OPTS)(_make_backward_share(kind)))


def _backward(xpad, w2, dy, aux, mode, kh, kw, sh, sw, oh, ow, need_dx, nt):
    """-> dxpad (N, C, Hp, Wp) (or a dummy), dw_t (nt, F, C·kh·kw), db_t (nt, F) (views without the padding)."""
    kernel = ("conv_backward", "relu_mask_conv_backward", "conv_relu_maxpool_backward")[mode]
    checks.array(kernel, "dy", dy, 4)
    _check_conv(kernel, xpad, w2, kh, kw, sh, sw, oh, ow, nt)
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
    w4 = _padded(w2, rows=4)
    dw_t = np.zeros((nt, *w4.shape), dtype=w2.dtype)
    db_t = np.zeros((nt, w4.shape[0]), dtype=w2.dtype)
    dxpad = np.empty(xpad.shape if need_dx else (1, 1, 1, 1), dtype=xpad.dtype)
    xpad = np.ascontiguousarray(xpad)  # the shares read it flat
    wide = mode == MAXPOOL and not need_dx and conv_c1.fits(xpad, sh, sw, kh, kw, oh, ow, True)
    g, offs = _columns(xpad, w4, kh, kw, oh, ow, nt, wide)
    at = conv_c1.wide_index(oh, ow, xpad.shape[3]) if wide else _NO_AT
    _backward_kernel(_kind(sh, sw, ow))(nt, xpad, w4, dy, aux, mode, kh, kw, sh, sw, oh, ow, need_dx, g, dxpad, dw_t,
                                        db_t, wide, offs, at)
    return dxpad, dw_t[:, :f, :w2.shape[1]], db_t[:, :f]


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
