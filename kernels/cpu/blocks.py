"""Register blocks of the direct convolutions' three products, and the groups of samples a share
runs them on (Numba, inlined into the shares of conv.py and conv_c1.py).

Each block keeps 16 weights or 16 running sums in registers while its innermost loop runs along
the columns (vectorised): 0.75 loads or stores a multiply-add (0.5 for dW), where one row of z
per sweep needed 1.5 and was bound by them. The input columns are rows of a *row source*:
    cols[k] = src[base + offs[k]:]       (read along l = 0 … nl − 1)
For an unrolled buffer (conv.py) src is the flat (K4, G·L) buffer, base 0 and offs[k] = k·G·L;
for a one-channel input with stride 1 (conv_c1.py) src is the flat input itself, base the
group's first pixel and offs[(p, q)] = p·Wp + q: every row is the image shifted, nothing is
copied. Weights come padded to whole blocks (conv._padded): no remainder loops.
"""
from __future__ import annotations

from numba import njit

from .launch import span

# as in conv.py: fastmath lets the compiler reorder the sums of the weight gradients into SIMD lanes
OPTS = dict(cache=True, nogil=True, fastmath=True)


@njit(inline="always", **OPTS)
def z_rows4(w4, b4, src, base, offs, z, f, nl):
    """z[f:f+4, :nl] = b4[f:f+4] + w4[f:f+4] @ cols[:, :nl], four rows of cols per sweep, where
    cols[k] = src[base + offs[k]:] (see the module docstring).

    Register blocking: 16 weights stay in registers while the loop along the nl columns
    (vectorised) loads four rows of cols and four of z and stores four, for 16 multiply-adds:
    0.75 loads or stores a multiply-add, where one row of z per sweep needed 1.5 and was bound by
    them. (One thread, batch 128: LeNet-5's second layer 0.95 → 0.56 ms, benchmarks/README.md.)"""
    nk, nv = w4.shape[1], _vector_part(nl)
    z0, z1, z2, z3 = z[f], z[f + 1], z[f + 2], z[f + 3]
    b0, b1, b2, b3 = b4[f], b4[f + 1], b4[f + 2], b4[f + 3]
    for l in range(nl):
        z0[l] = b0
        z1[l] = b1
        z2[l] = b2
        z3[l] = b3
    for k in range(0, nk, 4):
        c0, c1, c2, c3 = src[base + offs[k]:], src[base + offs[k + 1]:], src[base + offs[k + 2]:], src[base + offs[k + 3]:]
        a00, a01, a02, a03 = w4[f, k], w4[f, k + 1], w4[f, k + 2], w4[f, k + 3]
        a10, a11, a12, a13 = w4[f + 1, k], w4[f + 1, k + 1], w4[f + 1, k + 2], w4[f + 1, k + 3]
        a20, a21, a22, a23 = w4[f + 2, k], w4[f + 2, k + 1], w4[f + 2, k + 2], w4[f + 2, k + 3]
        a30, a31, a32, a33 = w4[f + 3, k], w4[f + 3, k + 1], w4[f + 3, k + 2], w4[f + 3, k + 3]
        for l in range(nv):
            x0, x1, x2, x3 = c0[l], c1[l], c2[l], c3[l]
            z0[l] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
            z1[l] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            z2[l] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
            z3[l] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        for l in range(nv, nl):
            _z_tail(w4, z, f, 4, k, c0[l], c1[l], c2[l], c3[l], l)


@njit(inline="always", **OPTS)
def _z_tail(w4, z, f, rows, k, x0, x1, x2, x3, l):
    """z[f + r, l] += w4[f + r, k:k+4] · (x0, x1, x2, x3) for r < rows: a remainder column of
    z_rows4 / z_rows6, its weights read again from w4 (see ``_vector_part``)."""
    for r in range(rows):
        z[f + r, l] += w4[f + r, k] * x0 + w4[f + r, k + 1] * x1 + w4[f + r, k + 2] * x2 + w4[f + r, k + 3] * x3


@njit(inline="always", **OPTS)
def _vector_part(nl):
    """The columns 0 … nv − 1 (nv = nl rounded down to a multiple of 16) that a block's main loop
    runs; the other nl − nv go to a remainder loop that reads its weights from the array again.
    When one loop ran all nl columns, LLVM kept the 16 weights as scalars as well, for its scalar
    remainder, and had no register left for five of their vector copies: five of the 16
    multiply-adds of each step read their weight from the stack. Without the remainder in the
    weights' lifetime all 16 stay in vector registers (one thread, 16 rows × 152 × 400 columns:
    ≈ 1.25× the multiply-adds a second; benchmarks/README.md, session 10)."""
    return (nl >> 4) << 4


@njit(inline="always", **OPTS)
def dw_block(src, base, offs, dz, dw, f, k, nl):
    """dw[f:f+4, k:k+4] += dz[f:f+4, :nl] @ cols[k:k+4, :nl]ᵀ (cols[k] = src[base + offs[k]:]): 16
    dot products along L sharing eight vector loads a column step (0.5 loads a multiply-add)."""
    zero = dz.dtype.type(0)
    c0, c1, c2, c3 = src[base + offs[k]:], src[base + offs[k + 1]:], src[base + offs[k + 2]:], src[base + offs[k + 3]:]
    d0, d1, d2, d3 = dz[f], dz[f + 1], dz[f + 2], dz[f + 3]
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for l in range(nl):
        x0, x1, x2, x3 = c0[l], c1[l], c2[l], c3[l]
        e = d0[l]
        s00 += e * x0
        s01 += e * x1
        s02 += e * x2
        s03 += e * x3
        e = d1[l]
        s10 += e * x0
        s11 += e * x1
        s12 += e * x2
        s13 += e * x3
        e = d2[l]
        s20 += e * x0
        s21 += e * x1
        s22 += e * x2
        s23 += e * x3
        e = d3[l]
        s30 += e * x0
        s31 += e * x1
        s32 += e * x2
        s33 += e * x3
    dw[f, k] += s00
    dw[f, k + 1] += s01
    dw[f, k + 2] += s02
    dw[f, k + 3] += s03
    dw[f + 1, k] += s10
    dw[f + 1, k + 1] += s11
    dw[f + 1, k + 2] += s12
    dw[f + 1, k + 3] += s13
    dw[f + 2, k] += s20
    dw[f + 2, k + 1] += s21
    dw[f + 2, k + 2] += s22
    dw[f + 2, k + 3] += s23
    dw[f + 3, k] += s30
    dw[f + 3, k + 1] += s31
    dw[f + 3, k + 2] += s32
    dw[f + 3, k + 3] += s33


@njit(inline="always", **OPTS)
def dcols_rows4(w4, dz, dcols, k, nl):
    """dcols[k:k+4, :nl] = w4[:, k:k+4]ᵀ @ dz[:, :nl], summing four rows of dz per sweep (16
    weights in registers, as in z_rows4)."""
    nf, nv = w4.shape[0], _vector_part(nl)
    o0, o1, o2, o3 = dcols[k], dcols[k + 1], dcols[k + 2], dcols[k + 3]
    for l in range(nl):
        o0[l] = 0
        o1[l] = 0
        o2[l] = 0
        o3[l] = 0
    for f in range(0, nf, 4):
        d0, d1, d2, d3 = dz[f], dz[f + 1], dz[f + 2], dz[f + 3]
        a00, a01, a02, a03 = w4[f, k], w4[f + 1, k], w4[f + 2, k], w4[f + 3, k]
        a10, a11, a12, a13 = w4[f, k + 1], w4[f + 1, k + 1], w4[f + 2, k + 1], w4[f + 3, k + 1]
        a20, a21, a22, a23 = w4[f, k + 2], w4[f + 1, k + 2], w4[f + 2, k + 2], w4[f + 3, k + 2]
        a30, a31, a32, a33 = w4[f, k + 3], w4[f + 1, k + 3], w4[f + 2, k + 3], w4[f + 3, k + 3]
        for l in range(nv):
            x0, x1, x2, x3 = d0[l], d1[l], d2[l], d3[l]
            o0[l] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
            o1[l] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            o2[l] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
            o3[l] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        for l in range(nv, nl):  # weights read again, as in z_rows4 (_vector_part)
            x0, x1, x2, x3 = d0[l], d1[l], d2[l], d3[l]
            for r in range(4):
                dcols[k + r, l] += w4[f, k + r] * x0 + w4[f + 1, k + r] * x1 + w4[f + 2, k + r] * x2 + w4[f + 3, k + r] * x3


@njit(inline="always", **OPTS)
def z_rows6(w4, b4, src, base, offs, z, f, nl):
    """``z_rows4`` for the last six rows of an F4 that is 2 mod 4 (LeNet-5's first layer: F = 6):
    24 weights in registers, 16 loads or stores for 24 multiply-adds. (It replaced a block of four
    then one of two rows: 8 loads or stores for the last two rows' 8 multiply-adds; one thread,
    6 rows × 28 × 668 columns: ≈ 1.14× the multiply-adds a second.)"""
    nk, nv = w4.shape[1], _vector_part(nl)
    z0, z1, z2, z3, z4, z5 = z[f], z[f + 1], z[f + 2], z[f + 3], z[f + 4], z[f + 5]
    b0, b1, b2, b3, b4_, b5 = b4[f], b4[f + 1], b4[f + 2], b4[f + 3], b4[f + 4], b4[f + 5]
    for l in range(nl):
        z0[l] = b0
        z1[l] = b1
        z2[l] = b2
        z3[l] = b3
        z4[l] = b4_
        z5[l] = b5
    for k in range(0, nk, 4):
        c0, c1, c2, c3 = src[base + offs[k]:], src[base + offs[k + 1]:], src[base + offs[k + 2]:], src[base + offs[k + 3]:]
        a00, a01, a02, a03 = w4[f, k], w4[f, k + 1], w4[f, k + 2], w4[f, k + 3]
        a10, a11, a12, a13 = w4[f + 1, k], w4[f + 1, k + 1], w4[f + 1, k + 2], w4[f + 1, k + 3]
        a20, a21, a22, a23 = w4[f + 2, k], w4[f + 2, k + 1], w4[f + 2, k + 2], w4[f + 2, k + 3]
        a30, a31, a32, a33 = w4[f + 3, k], w4[f + 3, k + 1], w4[f + 3, k + 2], w4[f + 3, k + 3]
        a40, a41, a42, a43 = w4[f + 4, k], w4[f + 4, k + 1], w4[f + 4, k + 2], w4[f + 4, k + 3]
        a50, a51, a52, a53 = w4[f + 5, k], w4[f + 5, k + 1], w4[f + 5, k + 2], w4[f + 5, k + 3]
        for l in range(nv):
            x0, x1, x2, x3 = c0[l], c1[l], c2[l], c3[l]
            z0[l] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
            z1[l] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            z2[l] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
            z3[l] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
            z4[l] += a40 * x0 + a41 * x1 + a42 * x2 + a43 * x3
            z5[l] += a50 * x0 + a51 * x1 + a52 * x2 + a53 * x3
        for l in range(nv, nl):
            _z_tail(w4, z, f, 6, k, c0[l], c1[l], c2[l], c3[l], l)


@njit(inline="always", **OPTS)
def share_groups(t, nt, n, g):
    """Thread t's samples span(t, nt, n) as (first sample, count, q): q groups of at most g."""
    lo, hi = span(t, nt, n)
    return lo, hi - lo, -(-(hi - lo) // g)


@njit(inline="always", **OPTS)
def share_group(lo, count, q, i):
    """Group i of share_groups' q: (first sample, samples), the sizes equal within one."""
    first, last = span(i, q, count)
    return lo + first, last - first


@njit(inline="always", **OPTS)
def grads(w4, src, base, offs, dz, dw, db, dcols, nl, need_dx):
    """From dz[:, :nl] (F4, nl) and cols[:, :nl] (K4, nl; the row source src, base, offs of
    blocks.py): db (F4,) += Σ_l dz, dw (F4, K4) += dz @ colsᵀ in 4×4 blocks (dw_block);
    dcols[:, :nl] = w4ᵀ @ dz when need_dx (dcols_rows4).
    F4 and K4 are multiples of four here (_padded(w2, rows=4))."""
    nf, nk = w4.shape
    zero = dz.dtype.type(0)
    for f in range(dz.shape[0]):
        dr = dz[f]
        acc = zero
        for l in range(nl):
            acc += dr[l]
        db[f] += acc
    for k in range(0, nk, 4):
        for f in range(0, nf, 4):
            dw_block(src, base, offs, dz, dw, f, k, nl)
    if need_dx:
        for k in range(0, nk, 4):
            dcols_rows4(w4, dz, dcols, k, nl)
