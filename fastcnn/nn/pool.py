"""Max and average pooling; the arithmetic lives in fastcnn.pool (naive, vectorised, numba, cuda)."""
from __future__ import annotations

from .. import backend
from .. import pool as _algorithms  # noqa: F401  (registers the pooling algorithms)
from .. import registry
from ..geometry import out_size
from .module import Layer, ShapeError, check_grad, pair


class _Pool2D(Layer):
    mode = ""

    def __init__(self, kernel_size, stride=None, padding=0, algo: str = "auto"):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = pair(padding, "padding")
        if min(self.kernel_size + self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{self.name} needs kernel and stride ≥ 1 and padding ≥ 0")
        if 2 * self.padding[0] > self.kernel_size[0] or 2 * self.padding[1] > self.kernel_size[1]:
            raise ValueError(f"{self.name}: padding {self.padding} must be at most half the kernel {self.kernel_size}")
        if algo != "auto" and algo not in registry.POOL:
            raise ValueError(f"unknown pool algorithm {algo!r}: choose auto or one of {', '.join(registry.POOL)}")
        self.algo, self.algo_used = algo, None
        self._cache = self._out = None

    def forward(self, x):
        if x.ndim != 4:
            raise ShapeError(f"{self.name} expects input (N, C, H, W), got {tuple(x.shape)}")
        xp = backend.array_module(x)
        geo = (self.kernel_size, self.stride, self.padding, self.mode)

        def trial(algo):
            y, cache = algo.forward(x, *geo)
            algo.backward(y, cache)

        algo = registry.resolve("pool", self.algo, xp, (x.shape, x.dtype.str) + geo, trial)
        self._algo, self.algo_used = algo, algo.name
        self._cache = None
        y, self._cache = algo.forward(x, *geo)
        self._out = (tuple(y.shape), y.dtype)
        return y

    def backward(self, dy):
        check_grad(self, dy, self._cache, self._out)
        return self._algo.backward(dy, self._cache)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(f"{self.name} expects per-sample input (C, H, W), gets {tuple(in_shape)}")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = out_size(in_shape[1], kh, sh, ph), out_size(in_shape[2], kw, sw, pw)
        if oh < 1 or ow < 1:
            raise ShapeError(f"{self.name}: a {kh}×{kw} window does not fit an input of {in_shape[1]}×{in_shape[2]}")
        return (in_shape[0], oh, ow)

    def clear_cache(self):
        self._cache = None

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2D(_Pool2D):
    """y = max over each window of x padded with −inf; dx routes dy to the window's first
    maximum (row-major order). x (N, C, H, W) -> y (N, C, oh, ow)."""

    mode = "max"


class AvgPool2D(_Pool2D):
    """y = mean over each kh×kw window of x padded with 0 (padding counted);
    dx adds dy / (kh·kw) to every element of the window."""

    mode = "avg"
