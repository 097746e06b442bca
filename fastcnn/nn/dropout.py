"""Inverted dropout."""
from __future__ import annotations

import numpy as np

from .. import backend
from .module import Layer


class Dropout(Layer):
    """Training: y = x · m / (1 − p) with m ~ Bernoulli(1 − p); evaluation: y = x.

    Backward: dx = dy · m / (1 − p). The mask comes from the layer's own seeded generator.
    """

    def __init__(self, p: float = 0.5, seed: int = 0):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout p is the probability to drop and must be in [0, 1), got {p}")
        self.p = float(p)
        self.seed = seed
        self._rng = {}
        self._mask = None

    def _generator(self, xp):
        key = backend.name_of(xp)
        if key not in self._rng:
            self._rng[key] = np.random.default_rng(self.seed) if xp is np else xp.random.default_rng(self.seed)
        return self._rng[key]

    def forward(self, x):
        if not self.training or self.p == 0:
            self._mask = None
            return x
        xp = backend.array_module(x)
        keep = self._generator(xp).random(x.shape, dtype=np.float32) >= self.p
        self._mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, dy):
        return dy if self._mask is None else dy * self._mask

    def clear_cache(self):
        self._mask = None

    def extra_repr(self):
        return f"p={self.p}"
