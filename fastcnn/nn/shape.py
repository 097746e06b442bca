"""Layers that only reshape."""
from __future__ import annotations

import math

from .module import Layer


class Flatten(Layer):
    """(N, C, H, W) -> (N, C·H·W); backward reshapes dy back."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape)

    def output_shape(self, in_shape):
        return (math.prod(in_shape),)
