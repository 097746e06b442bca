"""A one-channel input with stride 1, ReLU and 2×2 max-pooling, convolved without an unroll.

A network's first layer (MNIST: C = 1) unrolls K = kh·kw copies of every image (25 for 5×5)
and then reads them back, which cost that layer as much as its products. With one channel and
stride 1, column (p, q) of the unrolled buffer is the image itself shifted by p·Wp + q, so the
flat input serves as its own columns (a *row source*, blocks.py):
    z[f, t] = b[f] + Σ_(p,q) W[f, p, q] · x[base + t + p·Wp + q]        t = i·Wp + j
over a group of G consecutive images at once (base = the first image's first pixel). z is
*wide*: its rows are Wp long, of which the first ow are the output; the other Wp − ow columns
of each row, and the rows after oh in each image, are computed and never read (LeNet-5's first
layer: 28·28 = 784 columns an image for 24·24 = 576 outputs, 17 % more multiply-adds — and no
copy). The pooling reads z with row stride Wp (pool.relu_maxpool_2x2) and numbers its argmax
as the other kernels do, i·ow + j.
Backward (no input gradient: a first layer has none to give), per group:
    dz (wide) = dy scattered to each window's argmax (``wide`` maps i·ow + j to i·Wp + j),
    db[f] += Σ_t dz[f, t],   dW[f, (p, q)] += Σ_t dz[f, t] · x[base + t + p·Wp + q]
where dz is zero in every column the forward did not output, so those add nothing.
The shares of conv.py run it (their ``wide`` argument) for the layers that ``fits``; this module
holds what they are given: the group size, the offsets of the taps and the index map.
One thread, batch 128, LeNet-5's first layer: see benchmarks/README.md (session 8).
"""
from __future__ import annotations

import functools

import numpy as np

COLUMNS = 1536  # wide columns a group of images fills (G = COLUMNS // (Hp·Wp), at least 1)


def fits(xpad, sh, sw, kh, kw, oh, ow, pooled_2x2) -> bool:
    """Whether the shares may skip the unroll: one input channel, stride 1, every window of the
    padded input used (oh = Hp − kh + 1, ow = Wp − kw + 1), a 2×2 stride-2 pool after the ReLU,
    and a C-contiguous input (the shares read it flat)."""
    return (xpad.shape[1] == 1 and sh == 1 and sw == 1 and pooled_2x2 and xpad.flags.c_contiguous
            and oh == xpad.shape[2] - kh + 1 and ow == xpad.shape[3] - kw + 1)


def group(xpad, nt: int) -> int:
    """Images per group: COLUMNS // (Hp·Wp), at least 1, at most one share's ⌈N / nt⌉."""
    return max(1, min(COLUMNS // (xpad.shape[2] * xpad.shape[3]), -(-len(xpad) // nt)))


# Both are made once per shape (they were ≈ 25 µs of every training step's Python) and shared:
# callers only read them. (Not flagged read-only: Numba types a read-only array apart, and the
# shares would compile a second time for it.)

@functools.lru_cache(maxsize=64)
def offsets(kh: int, kw: int, wp: int, k4: int) -> np.ndarray:
    """offs (K4,) int64: p·Wp + q for tap (p, q), then offs[0] for the padding rows K … K4 − 1
    (their weights are zero, and they read pixels the first tap reads)."""
    offs = np.zeros(k4, dtype=np.int64)
    offs[:kh * kw] = wide_index(kh, kw, wp)  # tap (p, q) sits where output (p, q) of a wide plane does
    return offs


@functools.lru_cache(maxsize=64)
def wide_index(oh: int, ow: int, wp: int) -> np.ndarray:
    """at (oh·ow,) int64: the output position i·ow + j (a pooling argmax) -> i·Wp + j in a wide plane."""
    return (np.arange(oh)[:, None] * wp + np.arange(ow)[None, :]).ravel().astype(np.int64)
