"""Fused layers for the Numba CPU path, and ``fuse`` which puts them into a model.

``fuse(model)`` returns a Sequential that shares the model's Parameter objects (so the
optimizer, checkpoints and summary keep working on the original) in which
    Conv2D → ReLU → MaxPool2D   becomes  ConvReLUMaxPool   (pre-activation never stored)
    Conv2D → ReLU               becomes  ConvReLU
Each computes exactly what the unfused layers compute; the tests compare them. Like the
``numba`` algorithm, each runs as "direct" (see fastcnn.conv.numba_conv.choose) or, pinned,
as "gemm".
"""
from __future__ import annotations

import numpy as np

from ..conv import numba_conv
from .. import registry
from ..geometry import out_size
from ..kernels.cpu import conv as conv_kernels
from ..kernels.cpu import im2col as im2col_kernels
from .activation import ReLU
from .conv import Conv2D
from .module import Layer, ShapeError
from .pool import MaxPool2D


class _FusedConv(Layer):
    param_names = ("weight", "bias")

    def __init__(self, conv: Conv2D, parts: list):
        super().__init__()
        self.conv = conv
        self.weight, self.bias = conv.weight, conv.bias
        self.name = "+".join(p.name for p in parts)
        self.variant = None
        #: a variant fixed from outside ("direct" or "gemm"), or None: numba_conv.choose's
        self.pinned = None
        self._cache = self._out_shape = None

    @property
    def algo_used(self):
        return f"numba-fused ({self.variant})" if self.variant else None

    def output_shape(self, in_shape):
        return self.conv.output_shape(in_shape)

    def forward(self, x):
        """x (N, C, H, W) float, C the convolution's input channels -> y; anything else is an error
        naming the layer before a kernel runs (the kernels index without bounds checks)."""
        if type(x) is not np.ndarray:
            raise TypeError(f"{self.name}: the fused CPU layer takes a numpy array, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.conv.in_channels:
            raise ShapeError(f"{self.name} expects input (N, {self.conv.in_channels}, H, W), got {tuple(x.shape)}")
        if x.dtype.kind != "f":
            raise TypeError(f"{self.name}: the input is {x.dtype}; it must be floating point like the weights "
                            f"({self.weight.data.dtype})")
        self.check_dtype(x)
        out = self.output_shape(x.shape[1:])  # ShapeError when the windows do not fit H×W
        x = np.ascontiguousarray(x)
        self._cache = None
        self.variant = self.pinned if self.pinned is not None else numba_conv.choose()
        y, self._cache = self._forward(self.variant, x)
        self._out_shape = (x.shape[0], *out)
        return y

    def backward(self, dy):
        """dy of the shape and dtype of the last forward's output -> dx (or None); fills the gradients."""
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward needs a forward first (nothing is cached)")
        if type(dy) is not np.ndarray or tuple(dy.shape) != self._out_shape or dy.dtype != self.weight.data.dtype:
            raise ShapeError(f"{self.name}: backward expects dy of the forward's output, {self._out_shape} "
                             f"{self.weight.data.dtype}, got {tuple(getattr(dy, 'shape', ()))} "
                             f"{getattr(dy, 'dtype', type(dy).__name__)}")
        dx, dw, db = self._backward(self.variant, np.ascontiguousarray(dy))
        self.weight.grad[...] = dw
        if self.bias is not None:
            self.bias.grad[...] = db
        return dx

    # shared pieces ------------------------------------------------------------------
    def _geometry(self, x):
        (kh, kw), (sh, sw) = self.conv.kernel_size, self.conv.stride
        ph, pw = self.conv.padding
        oh, ow = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
        return kh, kw, sh, sw, oh, ow

    def _w2(self):
        return self.weight.data.reshape(self.conv.out_channels, -1)

    def _b(self, dtype):
        return self.bias.data if self.bias is not None else np.zeros(self.conv.out_channels, dtype)

    def _finish_direct(self, dxpad, dw, db):
        return numba_conv.finish(dxpad, dw, db, self.weight.data, self.conv.padding, self.needs_input_grad,
                         self.bias is not None)

    def _finish_gemm(self, dz, geo):
        return numba_conv.grads(dz, geo, self.weight.data, self.conv.stride, self.conv.padding, self.needs_input_grad,
                        self.bias is not None)

    def clear_cache(self):
        self._cache = None


class ConvReLU(_FusedConv):
    """y = max(conv(x) + b, 0);  backward: dz = dy · [y > 0], then the convolution backward."""

    def _forward(self, variant, x):
        kh, kw, sh, sw, oh, ow = self._geometry(x)
        if variant == "direct":
            xpad = numba_conv.padded(x, self.conv.padding)
            z = conv_kernels.conv_forward(xpad, self._w2(), self._b(x.dtype), kh, kw, sh, sw, oh, ow, numba_conv.shares(len(x)))
            np.maximum(z, 0, out=z)
            return z, (xpad, z)
        z, geo = numba_conv.gemm(x, self.weight.data, self.conv.stride, self.conv.padding)
        y = im2col_kernels.cnhw_to_nchw_bias(z, self._b(x.dtype), x.shape[0], oh, ow, True)
        return y, (geo, y)

    def _backward(self, variant, dy):
        data, y = self._cache
        if variant == "direct":
            kh, kw = self.conv.kernel_size
            sh, sw = self.conv.stride
            out = conv_kernels.relu_mask_conv_backward(data, self._w2(), dy, y, kh, kw, sh, sw, self.needs_input_grad,
                                             numba_conv.shares(len(dy)))
            return self._finish_direct(*out)
        return self._finish_gemm(im2col_kernels.nchw_to_cnhw_relu_mask(dy, y), data)


class ConvReLUMaxPool(_FusedConv):
    """y = maxpool(max(conv(x) + b, 0)) with the argmax kept;
    backward: dz = dy scattered to each window's argmax (nothing where the max was ≤ 0)."""

    def __init__(self, conv, pool, parts):
        super().__init__(conv, parts)
        self.pool = pool

    def output_shape(self, in_shape):
        return self.pool.output_shape(self.conv.output_shape(in_shape))

    def _forward(self, variant, x):
        kh, kw, sh, sw, oh, ow = self._geometry(x)
        (pkh, pkw), (psh, psw) = self.pool.kernel_size, self.pool.stride
        poh, pow_ = out_size(oh, pkh, psh, 0), out_size(ow, pkw, psw, 0)
        if variant == "direct":
            xpad = numba_conv.padded(x, self.conv.padding)
            y, arg = conv_kernels.conv_relu_maxpool_forward(xpad, self._w2(), self._b(x.dtype), kh, kw, sh, sw, oh, ow,
                                                  pkh, pkw, psh, psw, poh, pow_, numba_conv.shares(len(x)),
                                                  keep_arg=self.training)
            return y, (xpad, arg, oh, ow)  # arg None in evaluation: _backward makes it if asked
        z, geo = numba_conv.gemm(x, self.weight.data, self.conv.stride, self.conv.padding)
        y, arg = im2col_kernels.cnhw_bias_relu_maxpool(z, self._b(x.dtype), x.shape[0], oh, ow, pkh, pkw, psh, psw, poh, pow_)
        return y, (geo, arg, oh, ow)

    def _backward(self, variant, dy):
        data, arg, oh, ow = self._cache
        if variant == "direct":
            kh, kw = self.conv.kernel_size
            sh, sw = self.conv.stride
            if arg is None:  # the forward ran in evaluation mode, without the argmax: make it now
                (pkh, pkw), (psh, psw) = self.pool.kernel_size, self.pool.stride
                arg = conv_kernels.conv_relu_maxpool_forward(data, self._w2(), self._b(data.dtype), kh, kw, sh, sw, oh,
                                                             ow, pkh, pkw, psh, psw, dy.shape[2], dy.shape[3],
                                                             numba_conv.shares(len(dy)))[1]
            out = conv_kernels.conv_relu_maxpool_backward(data, self._w2(), dy, arg, kh, kw, sh, sw, oh, ow,
                                                self.needs_input_grad, numba_conv.shares(len(dy)))
            return self._finish_direct(*out)
        return self._finish_gemm(im2col_kernels.maxpool_scatter_cnhw(dy, arg, oh, ow), data)


def fusable(conv) -> bool:
    """Whether ``conv`` may run on the fused Numba path (numpy backend, numba allowed)."""
    # exact types: a user's subclass overriding forward/backward must run its own code, not the fused kernel
    if type(conv) is not Conv2D or conv.algo not in ("auto", "numba"):
        return False
    return registry.forced("conv") in (None, "numba") and type(conv.weight.data) is np.ndarray


def fuse_layers(layers: list) -> list:
    """The layers with each fusable Conv2D→ReLU(→MaxPool2D) replaced by one fused layer over the
    same parameters (the others are the same objects)."""
    out, i = [], 0
    while i < len(layers):
        a = layers[i]
        b = layers[i + 1] if i + 1 < len(layers) else None
        c = layers[i + 2] if i + 2 < len(layers) else None
        if fusable(a) and type(b) is ReLU:
            if type(c) is MaxPool2D and c.padding == (0, 0):
                out.append(ConvReLUMaxPool(a, c, [a, b, c]))
                i += 3
                continue
            out.append(ConvReLU(a, [a, b]))
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def fuse(model):
    """A Sequential over the same parameters in which Conv2D→ReLU(→MaxPool2D) runs fused
    (``model.fused()``; a Sequential does this by itself on the CPU backend)."""
    return model.fused()


def backward_specs(layers: list, in_shape: tuple) -> list:
    """The direct backward shares that ``layers`` (a plan, fused by ``fuse_layers``) will run for a
    per-sample input of ``in_shape``, as kernels.cpu.precompile specs: one per kind of layer (its
    stride and output width, conv._kind), dtype and what its backward reads (a pool's argmax or
    the ReLU's output). Layers it cannot place (a shape it cannot follow) end the list."""
    from ..kernels.cpu import precompile

    specs, shape = [], tuple(in_shape)
    for layer in layers:
        if isinstance(layer, _FusedConv) and layer.pinned != "gemm" and len(shape) == 3:
            (sh, sw), ow = layer.conv.stride, layer.conv.output_shape(shape)[2]
            aux = "maxpool" if isinstance(layer, ConvReLUMaxPool) else "relu"
            specs.append(precompile.spec(conv_kernels._kind(sh, sw, ow), layer.weight.data.dtype, aux))
        try:
            shape = tuple(layer.output_shape(shape))
        except (ShapeError, ValueError, TypeError):
            break
    return sorted(set(specs))
