"""Fused layers for the Numba CPU path, and ``fuse`` which puts them into a model.

``fuse(model)`` returns a Sequential that shares the model's Parameter objects (so the
optimizer, checkpoints and summary keep working on the original) in which
    Conv2D → ReLU → MaxPool2D   becomes  ConvReLUMaxPool   (pre-activation never stored)
    Conv2D → ReLU               becomes  ConvReLU
Each computes exactly what the unfused layers compute; the tests compare them.
"""
from __future__ import annotations

import numpy as np

from ..conv import numba_conv, registry
from ..kernels.cpu import im2col as k
from .activation import ReLU
from .conv import Conv2D
from .module import Layer
from .pool import MaxPool2D


class _FusedConv(Layer):
    param_names = ("weight", "bias")

    def __init__(self, conv: Conv2D, parts: list):
        super().__init__()
        self.conv = conv
        self.weight, self.bias = conv.weight, conv.bias
        self.name = "+".join(p.name for p in parts)
        self.algo_used = "numba-fused"

    def output_shape(self, in_shape):
        return self.conv.output_shape(in_shape)

    def _gemm(self, x):
        return numba_conv.gemm(np.ascontiguousarray(x), self.weight.data, self.conv.stride, self.conv.padding)

    def _bias(self, dtype):
        return self.bias.data if self.bias is not None else np.zeros(self.conv.out_channels, dtype)

    def _grads(self, dz):
        dx, dw, db = numba_conv.grads(dz, self._geo, self.weight.data, self.conv.stride, self.conv.padding,
                                      self.needs_input_grad, self.bias is not None)
        self.weight.grad[...] = dw
        if self.bias is not None:
            self.bias.grad[...] = db
        return dx

    def clear_cache(self):
        self._geo = self._y = self._arg = None


class ConvReLU(_FusedConv):
    """y = max(conv(x) + b, 0);  backward: dz = dy · [y > 0], then the convolution backward."""

    def forward(self, x):
        z, self._geo = self._gemm(x)
        self._y = k.cnhw_to_nchw_bias(z, self._bias(x.dtype), x.shape[0], self._geo[2], self._geo[3], True)
        return self._y

    def backward(self, dy):
        return self._grads(k.nchw_to_cnhw_relu_mask(np.ascontiguousarray(dy), self._y))


class ConvReLUMaxPool(_FusedConv):
    """y = maxpool(max(conv(x) + b, 0)) with the argmax kept;
    backward: dz = dy scattered to each window's argmax (nothing where the max was ≤ 0)."""

    def __init__(self, conv, pool, parts):
        super().__init__(conv, parts)
        self.pool = pool

    def output_shape(self, in_shape):
        return self.pool.output_shape(self.conv.output_shape(in_shape))

    def forward(self, x):
        z, self._geo = self._gemm(x)
        oh, ow = self._geo[2], self._geo[3]
        (pkh, pkw), (psh, psw) = self.pool.kernel_size, self.pool.stride
        poh, pow_ = (oh - pkh) // psh + 1, (ow - pkw) // psw + 1
        y, self._arg = k.cnhw_bias_relu_maxpool(z, self._bias(x.dtype), x.shape[0], oh, ow,
                                                pkh, pkw, psh, psw, poh, pow_)
        return y

    def backward(self, dy):
        oh, ow = self._geo[2], self._geo[3]
        return self._grads(k.maxpool_scatter_cnhw(np.ascontiguousarray(dy), self._arg, oh, ow))


def fusable(conv) -> bool:
    """Whether ``conv`` may run on the fused Numba path (numpy backend, numba allowed)."""
    if not isinstance(conv, Conv2D) or conv.algo not in ("auto", "numba"):
        return False
    forced = registry.forced("conv")
    return forced in (None, "numba") and conv.weight.data.__class__ is np.ndarray


def fuse(model):
    """A Sequential over the same parameters with Conv2D→ReLU(→MaxPool2D) runs fused."""
    from .sequential import Sequential

    layers, out, i = model.layers, [], 0
    while i < len(layers):
        a = layers[i]
        b = layers[i + 1] if i + 1 < len(layers) else None
        c = layers[i + 2] if i + 2 < len(layers) else None
        if fusable(a) and isinstance(b, ReLU):
            if isinstance(c, MaxPool2D) and c.padding == (0, 0):
                out.append(ConvReLUMaxPool(a, c, [a, b, c]))
                i += 3
                continue
            out.append(ConvReLU(a, [a, b]))
            i += 2
            continue
        out.append(a)
        i += 1
    fused = Sequential(*out, reset=False)
    fused.needs_input_grad = model.needs_input_grad
    return fused
