"""Softmax + cross-entropy, fused for a stable and cheap gradient."""
from __future__ import annotations

import numpy as np

from .. import backend, gpu_kernels


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    Shapes: logits (N, K), labels (N,) ints in [0, K). A label outside [0, K) is an error on NumPy; on a
    GPU (where CuPy's indexing would wrap it around, and raising would need a host sync) that sample's
    loss and gradient are NaN, so the mean loss is NaN, not silently wrong.
    With label smoothing s the target is t = (1 − s)·onehot + s/K.
    loss = −(1/N) Σ_n Σ_k t_nk · log softmax(z)_nk, computed as z − max − log Σ e^(z − max).
    backward: dlogits = (softmax(z) − t) / N.

    On a GPU both passes are two kernels (fastcnn.gpu_kernels xent_rows, xent_mean) with no host
    synchronisation: the loss stays on the device and ``correct`` (0-d) counts the rows whose
    argmax is the label.
    """

    correct = None
    _d = None

    def __init__(self, label_smoothing: float = 0.0):
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits, labels):
        """Returns the mean loss as a 0-d array on the logits' device (read it with float())."""
        xp = backend.array_module(logits)
        n, k = logits.shape
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},) to match logits {logits.shape}, got {labels.shape}")
        if xp is not np and n > 0:
            return self._forward_device(xp, logits, labels)
        self._d = self.correct = None
        z = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(z)
        s = e.sum(axis=1, keepdims=True)
        logp = z - xp.log(s)
        rows = xp.arange(n)
        labels = labels.astype(xp.intp, copy=False)
        sm = self.label_smoothing
        self._bad = None
        if xp is np:
            if n and (labels.min() < 0 or labels.max() >= k):
                i = int(np.flatnonzero((labels < 0) | (labels >= k))[0])
                raise ValueError(f"labels[{i}] = {labels[i]} is outside 0–{k - 1} (the logits have {k} classes)")
        else:  # no host sync: out-of-range (negative ones read as huge unsigned) -> NaN
            self._bad = labels.view(xp.uint64) >= k
        nll = -logp[rows, labels]
        if self._bad is not None:
            nll = xp.where(self._bad, logits.dtype.type("nan"), nll)
        loss = nll.mean() if sm == 0 else ((1 - sm) * nll - (sm / k) * logp.sum(axis=1)).mean()
        self._p, self._labels = e / s, labels
        return loss

    def _forward_device(self, xp, logits, labels):
        z = xp.ascontiguousarray(logits)
        n, k = z.shape
        t = z.dtype.type
        sm = self.label_smoothing
        d = xp.empty_like(z)
        rowloss, ok = xp.empty(n, z.dtype), xp.empty(n, xp.int32)
        gpu_kernels.kernel(xp, "xent_rows")(z, xp.ascontiguousarray(labels.astype(xp.int64, copy=False)), k,
                                            sm, 1 - sm, sm / k, t(1.0 / n), float("nan"), d, rowloss, ok)
        loss, self.correct = xp.empty((), z.dtype), xp.empty((), xp.int64)
        gpu_kernels.kernel(xp, "xent_mean")(rowloss, ok, n, loss, self.correct)
        self._d, self._z, self._p, self._labels = d, z, None, labels
        return loss

    __call__ = forward

    def backward(self):
        if self._d is not None:
            return self._d
        p, labels = self._p, self._labels
        xp = backend.array_module(p)
        n, k = p.shape
        d = p.copy()
        sm = self.label_smoothing
        if sm:
            d -= p.dtype.type(sm / k)
        d[xp.arange(n), labels] -= p.dtype.type(1 - sm)
        d *= p.dtype.type(1.0 / n)
        if self._bad is not None:
            d = xp.where(self._bad[:, None], p.dtype.type("nan"), d)
        return d

    def probabilities(self):
        """softmax(logits) of the last forward, (N, K)."""
        if self._p is None and self._d is not None:
            xp = backend.array_module(self._z)
            e = xp.exp(self._z - self._z.max(axis=1, keepdims=True))
            self._p = e / e.sum(axis=1, keepdims=True)
        return self._p
