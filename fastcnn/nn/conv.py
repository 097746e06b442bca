"""2-D convolution layer; the arithmetic lives in fastcnn.conv (one interface, several algorithms)."""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import conv as _algorithms  # noqa: F401  (registers the convolution algorithms)
from .. import registry
from ..geometry import out_size
from .module import Layer, Parameter, ShapeError, check_grad, fan_init, pair


class Conv2D(Layer):
    """Cross-correlation, as in every deep-learning framework:

        y[n, f, i, j] = b[f] + Σ_{c,p,q} xpad[n, c, i·sh + p, j·sw + q] · W[f, c, p, q]

    Shapes: x (N, C, H, W), W (F, C, kh, kw), b (F,), y (N, F, oh, ow) with
    oh = ⌊(H + 2ph − kh) / sh⌋ + 1. Backward: dW = Σ dy ⋆ xpad, db = Σ_{n,i,j} dy,
    dx = dy (dilated by the stride) fully convolved with W rotated by 180°.

    ``algo``: "auto" (time the available algorithms once per shape and keep the
    fastest), or a name from ``fastcnn.registry.CONV`` (naive, einsum, im2col, numba, cuda).
    """

    param_names = ("weight", "bias")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, algo: str = "auto", init="auto", seed: int = 0, dtype=np.float32):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"Conv2D needs positive channel counts, got {in_channels} -> {out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size + self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2D needs kernel and stride ≥ 1 and padding ≥ 0, got "
                             f"kernel {self.kernel_size}, stride {self.stride}, padding {self.padding}")
        if algo != "auto" and algo not in registry.CONV:
            raise ValueError(f"unknown conv algorithm {algo!r}: choose auto or one of {', '.join(registry.CONV)}")
        self.algo, self.algo_used, self.init = algo, None, init
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((out_channels, in_channels, kh, kw), dtype), "weight")
        self.bias = Parameter(np.zeros(out_channels, dtype), "bias") if bias else None
        self.reset_parameters(np.random.default_rng(seed), "he" if init == "auto" else init)
        self._cache = self._out = None

    def reset_parameters(self, rng, scheme):
        kh, kw = self.kernel_size
        w = self.weight.data
        w[...] = fan_init(rng, w.shape, self.in_channels * kh * kw, self.out_channels * kh * kw, scheme, w.dtype)
        if self.bias is not None:
            self.bias.data[...] = 0

    def _choose(self, x):
        xp = backend.array_module(x)
        w = self.weight.data
        b = None if self.bias is None else self.bias.data
        key = (x.shape, x.dtype.str, w.shape, self.stride, self.padding, b is not None)

        def trial(algo):
            y, cache = algo.forward(x, w, b, self.stride, self.padding)
            algo.backward(y, cache, self.needs_input_grad)

        return registry.resolve("conv", self.algo, xp, key, trial)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(f"{self.name} expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        self.check_dtype(x)
        algo = self._choose(x)
        self.algo_used = algo.name
        b = None if self.bias is None else self.bias.data
        self._cache = None
        y, self._cache = algo.forward(x, self.weight.data, b, self.stride, self.padding)
        self._algo, self._out = algo, (tuple(y.shape), y.dtype)
        return y

    def backward(self, dy):
        check_grad(self, dy, self._cache, self._out)
        dx, dw, db = self._algo.backward(dy, self._cache, self.needs_input_grad)
        self.weight.grad[...] = dw
        if self.bias is not None:
            self.bias.grad[...] = db
        return dx

    def output_shape(self, in_shape):
        if len(in_shape) != 3 or in_shape[0] != self.in_channels:
            raise ShapeError(f"{self.name} expects per-sample input ({self.in_channels}, H, W), gets {tuple(in_shape)}")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = out_size(in_shape[1], kh, sh, ph), out_size(in_shape[2], kw, sw, pw)
        if oh < 1 or ow < 1:
            raise ShapeError(f"{self.name}: a {kh}×{kw} kernel with padding {self.padding} does not fit "
                             f"an input of {in_shape[1]}×{in_shape[2]}")
        return (self.out_channels, oh, ow)

    def clear_cache(self):
        self._cache = None

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, algo={self.algo!r}")
