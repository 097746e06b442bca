"""Fully connected layer."""
from __future__ import annotations

import numpy as np

from .module import Layer, Parameter, ShapeError, fan_init


class Linear(Layer):
    """``y = x @ W + b``.

    Shapes: x (N, in), W (in, out), b (out,), y (N, out).
    Backward: dx = dy @ Wᵀ, dW = xᵀ @ dy, db = Σ_n dy.
    """

    param_names = ("weight", "bias")

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init="auto",
                 seed: int = 0, dtype=np.float32):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive sizes, got in={in_features}, out={out_features}")
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self.weight = Parameter(np.zeros((in_features, out_features), dtype), "weight")
        self.bias = Parameter(np.zeros(out_features, dtype), "bias") if bias else None
        self.reset_parameters(np.random.default_rng(seed), "he" if init == "auto" else init)
        self._x = None

    def reset_parameters(self, rng, scheme):
        w = self.weight.data
        self.weight.data[...] = fan_init(rng, w.shape, self.in_features, self.out_features, scheme, w.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0

    def forward(self, x):
        self.check_dtype(x)
        self._x = x
        y = x @ self.weight.data
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, dy):
        x = self._x
        self.weight.grad[...] = x.T @ dy
        if self.bias is not None:
            self.bias.grad[...] = dy.sum(axis=0)
        return dy @ self.weight.data.T if self.needs_input_grad else None

    def output_shape(self, in_shape):
        if len(in_shape) != 1 or in_shape[0] != self.in_features:
            hint = " (add a Flatten before it)" if len(in_shape) > 1 else ""
            raise ShapeError(f"{self.name} expects {self.in_features} features per sample, "
                             f"gets shape {tuple(in_shape)}{hint}")
        return (self.out_features,)

    def clear_cache(self):
        self._x = None

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"
