"""Softmax + cross-entropy, fused for a stable and cheap gradient."""
from __future__ import annotations

from .. import backend


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels.

    Shapes: logits (N, K), labels (N,) ints in [0, K).
    With label smoothing s the target is t = (1 − s)·onehot + s/K.
    loss = −(1/N) Σ_n Σ_k t_nk · log softmax(z)_nk, computed as z − max − log Σ e^(z − max).
    backward: dlogits = (softmax(z) − t) / N.
    """

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
        z = logits - logits.max(axis=1, keepdims=True)
        e = xp.exp(z)
        s = e.sum(axis=1, keepdims=True)
        logp = z - xp.log(s)
        rows = xp.arange(n)
        labels = labels.astype(xp.intp, copy=False)
        sm = self.label_smoothing
        nll = -logp[rows, labels]
        loss = nll.mean() if sm == 0 else ((1 - sm) * nll - (sm / k) * logp.sum(axis=1)).mean()
        self._p, self._labels = e / s, labels
        return loss

    __call__ = forward

    def backward(self):
        p, labels = self._p, self._labels
        xp = backend.array_module(p)
        n, k = p.shape
        d = p.copy()
        sm = self.label_smoothing
        if sm:
            d -= p.dtype.type(sm / k)
        d[xp.arange(n), labels] -= p.dtype.type(1 - sm)
        d *= p.dtype.type(1.0 / n)
        return d

    def probabilities(self):
        """softmax(logits) of the last forward, (N, K)."""
        return self._p
