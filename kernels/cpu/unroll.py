"""One sample's receptive fields to columns and back (Numba), for every CPU convolution path.

The columns of a group of G samples (or of a whole batch, G = N) are a (C·kh·kw, G, oh·ow)
buffer, so that each row a sample fills, cols[k, g], is C-contiguous:
    cols[(c, p, q), g, i·ow + j] = xpad[g, c, i·sh + p, j·sw + q]
``unroll`` fills sample g's columns; ``fold`` adds them back to the pixels they came from
(col2im). The direct kernels (conv.py) call them per group, im2col.py per batch.
"""
from __future__ import annotations

from numba import njit

# fastmath as in conv.py: the fold is ≈ 5–9 % faster with it (interleaved A/B); each pixel still
# receives its additions one at a time in the same order, so the sums are unchanged.
OPTS = dict(cache=True, nogil=True, fastmath=True)


@njit(**OPTS)
def unroll(xs, kh, kw, sh, sw, oh, ow, cols, g):
    """xs (C, Hp, Wp) -> cols[:, g] (C·kh·kw, oh·ow) of cols (C·kh·kw, G, oh·ow):
    cols[(c, p, q), g, i·ow + j] = xs[c, i·sh + p, j·sw + q]."""
    k = 0
    for c in range(xs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = cols[k, g]
                for i in range(oh):
                    src = xs[c, i * sh + p]
                    base = i * ow
                    if sw == 1:  # contiguous: the compiler vectorises this copy, not the strided one
                        for j in range(ow):
                            row[base + j] = src[j + q]
                    else:
                        for j in range(ow):
                            row[base + j] = src[j * sw + q]
                k += 1


@njit(**OPTS)
def fold(dcols, kh, kw, sh, sw, oh, ow, dxs, g):
    """dxs (C, Hp, Wp) += col2im(dcols[:, g]) of dcols (C·kh·kw, G, oh·ow)."""
    k = 0
    for c in range(dxs.shape[0]):
        for p in range(kh):
            for q in range(kw):
                row = dcols[k, g]
                for i in range(oh):
                    dst = dxs[c, i * sh + p]
                    base = i * ow
                    if sw == 1:
                        for j in range(ow):
                            dst[j + q] += row[base + j]
                    else:
                        for j in range(ow):
                            dst[j * sw + q] += row[base + j]
                k += 1
