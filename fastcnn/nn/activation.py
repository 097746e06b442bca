"""Element-wise activations. Each keeps only what its backward needs."""
from __future__ import annotations

from .. import backend
from .module import Layer


class ReLU(Layer):
    """y = max(x, 0);  dx = dy · [x > 0]  (the gradient at 0 is taken as 0)."""

    def forward(self, x):
        xp = backend.array_module(x)
        y = xp.maximum(x, 0)
        self._y = y
        return y

    def backward(self, dy):
        return dy * (self._y > 0)

    def clear_cache(self):
        self._y = None


class LeakyReLU(Layer):
    """y = x if x > 0 else slope·x;  dx = dy · (1 if x > 0 else slope)."""

    def __init__(self, slope: float = 0.01):
        super().__init__()
        if not 0 <= slope < 1:
            raise ValueError(f"LeakyReLU slope must be in [0, 1), got {slope}")
        self.slope = float(slope)

    def forward(self, x):
        xp = backend.array_module(x)
        self._pos = x > 0
        return xp.where(self._pos, x, x * x.dtype.type(self.slope))

    def backward(self, dy):
        xp = backend.array_module(dy)
        return xp.where(self._pos, dy, dy * dy.dtype.type(self.slope))

    def clear_cache(self):
        self._pos = None

    def extra_repr(self):
        return f"slope={self.slope}"


class Sigmoid(Layer):
    """y = 1 / (1 + e^(−x)) (computed without overflow);  dx = dy · y · (1 − y)."""

    def forward(self, x):
        xp = backend.array_module(x)
        e = xp.exp(-xp.abs(x))
        self._y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self._y

    def backward(self, dy):
        y = self._y
        return dy * y * (1 - y)

    def clear_cache(self):
        self._y = None


class Tanh(Layer):
    """y = tanh(x);  dx = dy · (1 − y²)."""

    def forward(self, x):
        self._y = backend.array_module(x).tanh(x)
        return self._y

    def backward(self, dy):
        return dy * (1 - self._y * self._y)

    def clear_cache(self):
        self._y = None


#: Activations after which a weight layer gets He initialisation.
RELU_FAMILY = (ReLU, LeakyReLU)
