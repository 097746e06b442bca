"""Batch normalisation over the batch (and spatial) axes."""
from __future__ import annotations

import numpy as np

from .. import backend
from ..kernels.cpu import norm as norm_kernels
from .module import Layer, Parameter, ShapeError


class _BatchNorm(Layer):
    """y = γ · x̂ + β with x̂ = (x − μ) / √(σ² + ε), per feature/channel.

    Training uses the batch's μ, σ² (biased) and updates the running statistics
    r ← (1 − momentum)·r + momentum·batch (the running variance unbiased, as PyTorch);
    evaluation uses the running statistics.

    Backward (training), with m the number of values per feature:
        dβ = Σ dy,  dγ = Σ dy·x̂,
        dx = γ / (m·√(σ² + ε)) · (m·dy − Σ dy − x̂ · Σ dy·x̂).
    Backward (evaluation): dx = dy · γ / √(σ²_run + ε).
    """

    param_names = ("weight", "bias")
    buffer_names = ("running_mean", "running_var")
    _axes: tuple = ()
    _ndim = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.weight = Parameter(np.ones(num_features, dtype), "weight")
        self.bias = Parameter(np.zeros(num_features, dtype), "bias")
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)

    def _bshape(self, v):
        """A per-feature vector shaped to broadcast against x."""
        return v.reshape((1, -1) + (1,) * (self._ndim - 2))

    def forward(self, x):
        xp = backend.array_module(x)
        if x.ndim != self._ndim or x.shape[1] != self.num_features:
            raise ShapeError(f"{self.name}({self.num_features}) got input of shape {x.shape}")
        self.check_dtype(x)
        if self.training:
            m = x.size // self.num_features
            if m < 2:
                raise ShapeError(f"{self.name}: a batch of {x.shape[0]} sample{'s' if x.shape[0] != 1 else ''} in "
                                 f"training mode gives {m} value{'s' if m != 1 else ''} per feature: batch statistics "
                                 "need at least 2; train with batches of ≥ 2 samples (fastcnn train --batch-size; its "
                                 "loader drops a last batch of one sample), or call model.eval() to use the running "
                                 "statistics")
            if xp is np and x.flags.c_contiguous:  # one Numba pass for the statistics, one for y
                y, xhat, mean, var, inv_std = norm_kernels.batchnorm_forward(x, self.weight.data, self.bias.data,
                                                                             self.eps)
            else:
                y = None
                mean = x.mean(axis=self._axes)
                var = x.var(axis=self._axes)
            mom = self.momentum
            self.running_mean *= 1 - mom
            self.running_mean += mom * mean
            self.running_var *= 1 - mom
            self.running_var += (mom * m / (m - 1)) * var
            if y is not None:
                self._xhat, self._inv_std = xhat, inv_std
                return y
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1 / xp.sqrt(var + x.dtype.type(self.eps))
        if not self.training and xp is np and x.flags.c_contiguous:  # one Numba pass; backward: dy · γ/√(σ²+ε)
            scale = (self.weight.data * inv_std).astype(x.dtype, copy=False)
            self._xhat, self._inv_std, self._eval_input = None, inv_std, (x, mean)  # x̂ made if backward asks
            return norm_kernels.batchnorm_eval(x, scale, (self.bias.data - mean * scale).astype(x.dtype, copy=False))
        xhat = (x - self._bshape(mean)) * self._bshape(inv_std)
        self._xhat, self._inv_std = xhat, inv_std
        return xhat * self._bshape(self.weight.data) + self._bshape(self.bias.data)

    def backward(self, dy):
        xhat, inv_std, axes = self._xhat, self._inv_std, self._axes
        if xhat is None:  # evaluation mode's one-pass forward kept x and μ_run instead of x̂
            x, mean = self._eval_input
            xhat = (x - self._bshape(mean)) * self._bshape(inv_std)
        if self.training and type(dy) is np.ndarray and dy.flags.c_contiguous and dy.shape == xhat.shape \
                and dy.dtype == xhat.dtype:
            dx, self.weight.grad[...], self.bias.grad[...] = norm_kernels.batchnorm_backward(
                dy, xhat, self.weight.data, inv_std, self.needs_input_grad)
            return dx
        self.bias.grad[...] = dy.sum(axis=axes)
        self.weight.grad[...] = (dy * xhat).sum(axis=axes)
        if not self.needs_input_grad:
            return None
        g = self._bshape(self.weight.data * inv_std)
        if not self.training:
            return dy * g
        m = dy.size // self.num_features
        mean_dy = self._bshape(self.bias.grad / m)
        mean_dy_xhat = self._bshape(self.weight.grad / m)
        return g * (dy - mean_dy - xhat * mean_dy_xhat)

    def output_shape(self, in_shape):
        if len(in_shape) != self._ndim - 1 or in_shape[0] != self.num_features:
            raise ShapeError(f"{self.name}({self.num_features}) expects per-sample shape "
                             f"({self.num_features}{', H, W' if self._ndim == 4 else ''}), gets {tuple(in_shape)}")
        return tuple(in_shape)

    def clear_cache(self):
        self._xhat = self._inv_std = self._eval_input = None

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm for x of shape (N, F); statistics over N."""

    _axes, _ndim = (0,), 2


class BatchNorm2d(_BatchNorm):
    """Batch norm for x of shape (N, C, H, W); statistics over N, H, W per channel."""

    _axes, _ndim = (0, 2, 3), 4
