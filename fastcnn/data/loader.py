"""Mini-batches: uint8 images sliced per batch, then normalised to float on the target device.

The data set stays uint8 (4x smaller than float32, and cheap to move to a GPU
once); each batch is converted when it is drawn.
"""
from __future__ import annotations

import numpy as np

from fastcnn import gpu_kernels
from fastcnn.backend import array_module, to_device

MEAN, STD = 0.1307, 0.3081  # of MNIST's training pixels, scaled to [0, 1]


def normalize(x, xp=None, dtype=np.float32, mean: float = MEAN, std: float = STD):
    """``(x / 255 - mean) / std`` of a uint8 batch, as ``dtype`` on ``xp`` (default: x's module).

    x: (N, H, W) or (N, C, H, W) uint8, on host or device -> (N, 1, H, W) or (N, C, H, W).
    Computed as ``x * a + b`` in ``dtype`` with a = 1/(255 std), b = -mean/std: two
    in-place passes over the output, no temporaries (faster than a 256-entry lookup
    table ``lut[x]``, whose uint8 indices numpy widens to int64), and the same float
    operations on numpy and cupy, so both give the same bits. Error < 4e-7 for MNIST.
    """
    xp = array_module(x) if xp is None else xp
    if x.dtype != np.uint8:
        raise TypeError(f"normalize expects uint8 images, got {x.dtype}")
    if x.ndim not in (3, 4):
        raise ValueError(f"normalize expects (N, H, W) or (N, C, H, W) images, got shape {x.shape}")
    x = to_device(x, xp)
    dt = np.dtype(dtype)
    out = xp.empty(x.shape if x.ndim == 4 else (x.shape[0], 1, *x.shape[1:]), dtype=dt)
    xp.multiply(x.reshape(out.shape), dt.type(1.0 / (255.0 * std)), out=out, dtype=dt)
    out += dt.type(-mean / std)
    return out


class BatchIterator:
    """Batches ``(xb, yb)`` on ``xp``: xb (B, 1 or C, H, W) normalised ``dtype``, yb (B,) int64.

    x: (N, H, W) or (N, C, H, W) uint8, y: (N,) integer labels (numpy or cupy).
    ``len()`` is the number of batches; the last partial batch is kept unless
    ``drop_last`` — except that a last batch of ONE sample is dropped when ``drop_single``
    (default: when shuffling, i.e. for training) and there are other batches: one sample has no
    batch statistics (batch norm cannot train on it) and its step is mostly noise; with
    shuffling, a different sample sits out each epoch. With ``shuffle``, epoch ``e`` uses the permutation of
    ``np.random.default_rng(seed + e)``; the epoch advances after each complete
    pass (or is set with ``set_epoch``). ``iter_from(step)`` resumes mid-epoch.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = True, seed: int = 0, xp=np,
                 dtype=np.float32, drop_last: bool = False, mean: float = MEAN, std: float = STD,
                 drop_single: bool | None = None):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if len(x) != len(y):
            raise ValueError(f"x holds {len(x)} samples but y holds {len(y)} labels")
        if len(x) == 0:
            raise ValueError("the data set is empty: no samples to iterate over")
        if drop_last and len(x) < batch_size:
            raise ValueError(f"drop_last with batch_size {batch_size} > {len(x)} samples "
                             "leaves no batch")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.shuffle, self.seed, self.xp, self.dtype = shuffle, seed, xp, dtype
        self.drop_last, self.mean, self.std = drop_last, mean, std
        self.drop_single = bool(shuffle) if drop_single is None else bool(drop_single)
        self.epoch = 0

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        if self.drop_last or (self.drop_single and n % b == 1 and n > b):
            return n // b
        return -(-n // b)

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` for the next pass."""
        self.epoch = int(epoch)

    def __iter__(self):
        return self.iter_from(0)

    def iter_from(self, step: int):
        """Iterate over the current epoch from batch ``step`` (0 <= step <= len), skipping
        the first ``step`` batches without touching them."""
        if not 0 <= step <= len(self):
            raise ValueError(f"step must be in [0, {len(self)}] for {len(self)} batches, "
                             f"got {step}")
        return self._batches(step)

    def _batches(self, step: int):
        n, b = len(self.x), self.batch_size
        if self.shuffle:  # drawn on the host, moved to where x and y live
            perm = np.random.default_rng(self.seed + self.epoch).permutation(n)
            px = to_device(perm, array_module(self.x))
            py = px if array_module(self.y) is array_module(self.x) else to_device(perm, array_module(self.y))
        fused = self.shuffle and self.xp is not np and array_module(self.x) is self.xp and self.x.dtype == np.uint8
        for i in range(step, len(self)):
            sl = slice(i * b, min((i + 1) * b, n))
            if fused:  # on a GPU: gathered and normalised in one kernel
                yield self._gather_normalised(px, sl), to_device(self.y[py[sl]], self.xp).astype(np.int64, copy=False)
                continue
            xb, yb = (self.x[px[sl]], self.y[py[sl]]) if self.shuffle else (self.x[sl], self.y[sl])
            yield (normalize(xb, self.xp, self.dtype, self.mean, self.std),
                   to_device(yb, self.xp).astype(np.int64, copy=False))
        self.epoch += 1

    def _gather_normalised(self, px, sl):
        """normalize(x[px[sl]]) as one device kernel (fastcnn.gpu_kernels gather_norm), the same bits."""
        xp, dt = self.xp, np.dtype(self.dtype)
        if not self.x.flags.c_contiguous:  # once: the kernel indexes the images flat
            self.x = xp.ascontiguousarray(self.x)
        x = self.x
        out = xp.empty((sl.stop - sl.start, *(x.shape[1:] if x.ndim == 4 else (1, *x.shape[1:]))), dt)
        gpu_kernels.kernel(xp, "gather_norm", dt)(x, px, sl.start, out[0].size,
                                              dt.type(1.0 / (255.0 * self.std)), dt.type(-self.mean / self.std), out)
        return out
