"""One sample's receptive fields to columns and back (Numba), for every CPU convolution path.

The columns of a group of G samples (or of a whole batch, G = N) are a (C·kh·kw, G, oh·ow)
buffer, so that each row a sample fills, cols[k, g], is C-contiguous:
    cols[(c, p, q), g, i·ow + j] = xpad[g, c, i·sh + p, j·sw + q]
``unroll`` fills sample g's columns; ``fold`` adds them back to the pixels they came from
(col2im). The direct kernels (conv.py) call them per group, im2col.py per batch.
``unroll_rows`` / ``fold_rows`` (what both callers use) pick, for stride-1 output rows four
wide (compact's second layer, 24@6×6 on 7×7), a copy of the four values written out: LLVM runs a 4-long loop of
unknown length through its scalar remainder, after the vectorised loop's checks, and that
cost the unroll 2.2–2.8× and the fold 1.7× its time (one thread, compact's shapes). The
general functions stay separate so that their code is not changed by the special case.
"""
from __future__ import annotations

from numba import njit

# fastmath as in conv.py: the fold is ≈ 5–9 % faster with it (interleaved A/B); each pixel still
# receives its additions one at a time in the same order, so the sums are unchanged.
OPTS = dict(cache=True, nogil=True, fastmath=True)


@njit(**OPTS)
def unroll(xs, kh, kw, sh, sw, oh, ow, cols, g):
    """xs (C, Hp, Wp) -> cols[:, g] (C·kh·kw, oh·ow) of cols (C·kh·kw, G, oh·ow):
    cols[(c, p, q), g, i·ow + j] = xs[c, i·sh + p, j·sw + q].
    Stride 1 is a loop nest of its own, without the strides: contiguous copies the compiler
    vectorises, rows found without a multiply (with the strides as variables, LeNet-5's second
    layer, rows of 8, took 1.5× as long; a test of sw inside the row loop had cost its backward
    pass 19 %)."""
    if sh == 1 and sw == 1:
        unroll_s1(xs, kh, kw, oh, ow, cols, g)
        return
    k = 0
    for c in range(xs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = cols[k, g]
                for i in range(oh):
                    src = xs[c, i * sh + p]
                    base = i * ow
                    for j in range(ow):
                        row[base + j] = src[j * sw + q]
                k += 1


@njit(**OPTS)
def unroll_s1(xs, kh, kw, oh, ow, cols, g):
    """``unroll`` for stride 1; rows eight wide (LeNet-5's second layer) copied by ``unroll_w8``."""
    if ow == 8:
        unroll_w8(xs, kh, kw, oh, cols, g)
        return
    k = 0
    for c in range(xs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = cols[k, g]
                for i in range(oh):
                    src = xs[c, i + p]
                    base = i * ow
                    for j in range(ow):
                        row[base + j] = src[j + q]
                k += 1


@njit(**OPTS)
def fold(dcols, kh, kw, sh, sw, oh, ow, dxs, g):
    """dxs (C, Hp, Wp) += col2im(dcols[:, g]) of dcols (C·kh·kw, G, oh·ow); stride 1 apart, as in unroll."""
    if sh == 1 and sw == 1:
        fold_s1(dcols, kh, kw, oh, ow, dxs, g)
        return
    k = 0
    for c in range(dxs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = dcols[k, g]
                for i in range(oh):
                    dst = dxs[c, i * sh + p]
                    base = i * ow
                    for j in range(ow):
                        dst[j * sw + q] += row[base + j]
                k += 1


@njit(**OPTS)
def fold_s1(dcols, kh, kw, oh, ow, dxs, g):
    """``fold`` for stride 1."""
    k = 0
    for c in range(dxs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = dcols[k, g]
                for i in range(oh):
                    dst = dxs[c, i + p]
                    base = i * ow
                    for j in range(ow):
                        dst[j + q] += row[base + j]
                k += 1


@njit(**OPTS)
def unroll_w4(xs, kh, kw, oh, cols, g):
    """``unroll`` for stride 1 (both ways) and rows of 4 (ow = 4): each row's four values copied at once."""
    k = 0
    for c in range(xs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = cols[k, g]
                for i in range(oh):
                    src = xs[c, i + p]
                    a0, a1, a2, a3 = src[q], src[q + 1], src[q + 2], src[q + 3]
                    b = 4 * i
                    row[b] = a0
                    row[b + 1] = a1
                    row[b + 2] = a2
                    row[b + 3] = a3
                k += 1


@njit(inline="always", **OPTS)
def unroll_w8(xs, kh, kw, oh, cols, g):
    """``unroll`` for stride 1 and rows of 8 (ow = 8): each row's eight values loaded, then stored.
    The plain loop's eight iterations ran in the scalar remainder of LLVM's vectorised loop;
    loading all eight before the first store lets them go as one vector without an alias
    check (one thread, LeNet-5's second layer, 60 samples: 0.15 → 0.10 ms, benchmarks/README.md)."""
    k = 0
    for c in range(xs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = cols[k, g]
                for i in range(oh):
                    src = xs[c, i + p]
                    a0, a1, a2, a3 = src[q], src[q + 1], src[q + 2], src[q + 3]
                    a4, a5, a6, a7 = src[q + 4], src[q + 5], src[q + 6], src[q + 7]
                    b = 8 * i
                    row[b] = a0
                    row[b + 1] = a1
                    row[b + 2] = a2
                    row[b + 3] = a3
                    row[b + 4] = a4
                    row[b + 5] = a5
                    row[b + 6] = a6
                    row[b + 7] = a7
                k += 1


@njit(**OPTS)
def fold_w4(dcols, kh, kw, oh, dxs, g):
    """``fold`` for stride 1 (both ways) and rows of 4 (ow = 4)."""
    k = 0
    for c in range(dxs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = dcols[k, g]
                for i in range(oh):
                    dst = dxs[c, i + p]
                    b = 4 * i
                    a0, a1, a2, a3 = row[b], row[b + 1], row[b + 2], row[b + 3]
                    d0, d1, d2, d3 = dst[q], dst[q + 1], dst[q + 2], dst[q + 3]
                    dst[q] = d0 + a0
                    dst[q + 1] = d1 + a1
                    dst[q + 2] = d2 + a2
                    dst[q + 3] = d3 + a3
                k += 1


@njit(inline="always", **OPTS)
def unroll_rows(xs, kh, kw, sh, sw, oh, ow, cols, g):
    """``unroll``, or ``unroll_w4`` where it applies (stride 1, rows of 4; both strides: with a
    vertical stride of 2 it had copied the wrong rows)."""
    if sh == 1 and sw == 1 and ow == 4:
        unroll_w4(xs, kh, kw, oh, cols, g)
    else:
        unroll(xs, kh, kw, sh, sw, oh, ow, cols, g)


@njit(inline="always", **OPTS)
def fold_rows(dcols, kh, kw, sh, sw, oh, ow, dxs, g):
    """``fold``, or ``fold_w4`` where it applies (stride 1, rows of 4)."""
    if sh == 1 and sw == 1 and ow == 4:
        fold_w4(dcols, kh, kw, oh, dxs, g)
    else:
        fold(dcols, kh, kw, sh, sw, oh, ow, dxs, g)
