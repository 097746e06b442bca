"""Fused layers for the GPU path (CuPy), and ``gpu_fuse_layers`` which a Sequential plans with.

On a GPU a small network is bound by kernel launches, not arithmetic, so each block runs in
few launches (fastcnn.gpu_kernels; each kernel has a NumPy twin the CuPy stand-in runs):

    Conv2D → ReLU → MaxPool2D   GpuConvReLUPool   forward 3: im2col, one GEMM, bias+ReLU+pool
                                                  backward 3 (+2 for dx): scatter, dW GEMM, db sum
                                                  (dx: one GEMM + col2im)
    Linear (→ ReLU)             GpuLinear         forward 2: GEMM, bias(+ReLU); backward 3:
                                                  mask+db, dW GEMM, dx GEMM
    BatchNorm1d                 GpuBatchNorm      forward 1, backward 1 in training
    BatchNorm2d                 GpuBatchNorm      forward 3, backward 3 (slices, channels, elements)

Each computes what the unfused layers compute (tests/gpu/test_gpu_fused.py compares them) over
the same Parameter objects, writing the gradients straight into ``.grad`` (GEMMs with ``out=``:
nothing to zero, nothing to copy). Shapes: conv x (N, C, H, W) -> (N, F, qh, qw); columns are
(C·kh·kw, N·oh·ow) so one GEMM covers the batch; the pre-activation z is (F, N·oh·ow).
"""
from __future__ import annotations

import math

from .. import backend, gpu_kernels, registry
from ..geometry import out_size
from .activation import ReLU
from .conv import Conv2D
from .linear import Linear
from .module import Layer
from .norm import BatchNorm1d, BatchNorm2d
from .pool import MaxPool2D


def _k(xp, name):
    return gpu_kernels.kernel(xp, name)


class GpuConvReLUPool(Layer):
    """y = maxpool(max(conv(x) + b, 0)), the argmax kept (−1 where the window's max ≤ 0);
    backward: dz = dy routed to the argmax, dW₂ = dz @ colsᵀ, db = Σ dz, dx = col2im(W₂ᵀ @ dz)."""

    param_names = ("weight", "bias")

    def __init__(self, conv: Conv2D, pool: MaxPool2D, parts):
        super().__init__()
        self.conv, self.pool = conv, pool
        self.weight, self.bias = conv.weight, conv.bias
        self.name = "+".join(p.name for p in parts)
        self._cache = None

    algo_used = "cuda-fused"

    def output_shape(self, in_shape):
        return self.pool.output_shape(self.conv.output_shape(in_shape))

    def _geometry(self, x):
        c = self.conv
        (kh, kw), (sh, sw), (ph, pw) = c.kernel_size, c.stride, c.padding
        oh, ow = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
        (pkh, pkw), (psh, psw) = self.pool.kernel_size, self.pool.stride
        return (kh, kw, sh, sw, ph, pw, oh, ow), (pkh, pkw, psh, psw, out_size(oh, pkh, psh, 0), out_size(ow, pkw, psw, 0))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.conv.in_channels:
            return self._unfused("forward", x)
        self.check_dtype(x)
        xp = backend.array_module(x)
        x = xp.ascontiguousarray(x)
        n, c, h, w = x.shape
        f = self.conv.out_channels
        geo, pool = self._geometry(x)
        oh, ow = geo[6], geo[7]
        cols = xp.empty((c * geo[0] * geo[1], n * oh * ow), x.dtype)
        _k(xp, "im2col_t")(x, c, h, w, *geo, n, cols)
        z = xp.empty((f, n * oh * ow), x.dtype)
        xp.matmul(self.weight.data.reshape(f, -1), cols, out=z)
        y = xp.empty((n, f, pool[4], pool[5]), x.dtype)
        arg = xp.empty(y.shape, xp.int32)
        _k(xp, "conv_pool")(z, self._bias(xp, x.dtype), f, n, oh, ow, *pool, y, arg)
        self.conv.algo_used = self.pool.algo_used = self.algo_used
        self._cache = (x.shape, cols, arg, geo, pool)
        return y

    def _bias(self, xp, dtype):
        if self.bias is not None:
            return self.bias.data
        z = getattr(self, "_zero_bias", None)
        if z is None or z.dtype != dtype:
            z = self._zero_bias = xp.zeros(self.conv.out_channels, dtype)
        return z

    def backward(self, dy):
        x_shape, cols, arg, geo, pool = self._cache
        xp = backend.array_module(dy)
        dy = xp.ascontiguousarray(dy)
        n, c, h, w = x_shape
        f = self.conv.out_channels
        oh, ow = geo[6], geo[7]
        dz = xp.empty((f, n * oh * ow), dy.dtype)
        _k(xp, "pool_scatter")(dy, arg, f, n, oh, ow, *pool, dz)
        xp.matmul(dz, cols.T, out=self.weight.grad.reshape(f, -1))
        if self.bias is not None:
            dz.sum(axis=1, out=self.bias.grad)
        if not self.needs_input_grad:
            return None
        dcols = xp.matmul(self.weight.data.reshape(f, -1).T, dz)
        dx = xp.empty(x_shape, dy.dtype)
        _k(xp, "col2im_t")(dcols, c, h, w, *geo, n, dx)
        return dx

    def _unfused(self, what, x):
        raise ValueError(f"{self.name} expects input (N, {self.conv.in_channels}, H, W), got {tuple(x.shape)}")

    def clear_cache(self):
        self._cache = None


class GpuLinear(Layer):
    """y = x @ W + b, then max(y, 0) when ``relu``;
    backward: dz = dy · [y > 0] (relu), db = Σ_n dz, dW = xᵀ @ dz, dx = dz @ Wᵀ."""

    param_names = ("weight", "bias")

    def __init__(self, linear: Linear, relu: bool, parts):
        super().__init__()
        self.linear, self.relu = linear, bool(relu)
        self.weight, self.bias = linear.weight, linear.bias
        self.name = "+".join(p.name for p in parts)
        self._x = self._y = None

    def output_shape(self, in_shape):
        return self.linear.output_shape(in_shape)

    def forward(self, x):
        self.check_dtype(x)
        xp = backend.array_module(x)
        f = self.linear.out_features
        y = xp.empty((x.shape[0], f), x.dtype)
        xp.matmul(x, self.weight.data, out=y)
        _k(xp, "bias_act")(self.bias.data, f, int(self.relu), y)
        self._x, self._y = x, y
        return y

    def backward(self, dy):
        xp = backend.array_module(dy)
        x, y = self._x, self._y
        n, f = y.shape
        if self.relu:
            dz = xp.empty_like(y)
            _k(xp, "relu_colsum")(xp.ascontiguousarray(dy), y, n, f, dz, self.bias.grad)
        else:
            dz = dy
            dy.sum(axis=0, out=self.bias.grad)
        xp.matmul(x.T, dz, out=self.weight.grad)
        return xp.matmul(dz, self.weight.data.T) if self.needs_input_grad else None

    def clear_cache(self):
        self._x = self._y = None


class GpuBatchNorm(Layer):
    """The batch norm of ``bn`` (the same parameters and running statistics) in training: (N, F) one
    kernel per pass (a thread per feature); (N, C, H, W) three per pass, so that no thread loops over
    N·H·W values (per (channel, sample) slice, per channel, per element). In evaluation the layer's
    own code runs."""

    param_names = ("weight", "bias")

    def __init__(self, bn: BatchNorm1d | BatchNorm2d):
        super().__init__()
        self.bn = bn
        self.weight, self.bias = bn.weight, bn.bias
        self.name = bn.name
        self._cache = None

    def output_shape(self, in_shape):
        return self.bn.output_shape(in_shape)

    def train(self, mode=True):
        self.training = mode
        self.bn.train(mode)
        return self

    def forward(self, x):
        bn = self.bn
        if not bn.training or x.ndim != bn._ndim or x.shape[1] != bn.num_features:
            self._cache = None
            return bn.forward(x)
        self.check_dtype(x)
        xp = backend.array_module(x)
        x = xp.ascontiguousarray(x)
        n, f = x.shape[0], x.shape[1]
        hw = math.prod(x.shape[2:])
        m = n * hw
        if m < 2:
            raise ValueError(f"{bn.name} needs more than one value per feature in training (got batch of {n})")
        xhat, y = xp.empty_like(x), xp.empty_like(x)
        inv_std = xp.empty(f, x.dtype)
        unbias = bn.momentum * m / (m - 1)
        if hw == 1:  # (N, F): a thread per feature over the batch
            _k(xp, "bn_train")(x, self.weight.data, self.bias.data, n, f, hw, bn.eps, bn.momentum, unbias,
                               xhat, y, inv_std, bn.running_mean, bn.running_var)
        else:  # (N, C, H, W): a thread per (channel, sample) slice, merged per channel, then per element
            pmean, pm2, mean = xp.empty((f, n), x.dtype), xp.empty((f, n), x.dtype), xp.empty(f, x.dtype)
            _k(xp, "bn_partial")(x, n, f, hw, pmean, pm2)
            _k(xp, "bn_finalize")(pmean, pm2, n, hw, bn.eps, bn.momentum, unbias, mean, inv_std,
                                  bn.running_mean, bn.running_var)
            _k(xp, "bn_apply")(x, mean, inv_std, self.weight.data, self.bias.data, f, hw, xhat, y)
        self._cache = (xhat, inv_std, n, f, hw)
        return y

    def backward(self, dy):
        if self._cache is None:
            return self.bn.backward(dy)
        xhat, inv_std, n, f, hw = self._cache
        xp = backend.array_module(dy)
        dy = xp.ascontiguousarray(dy)
        if hw > 1:
            ps, psx = xp.empty((f, n), dy.dtype), xp.empty((f, n), dy.dtype)
            _k(xp, "bn_bpartial")(dy, xhat, n, f, hw, ps, psx)
            _k(xp, "bn_bfinal")(ps, psx, n, self.weight.grad, self.bias.grad)
            if not self.needs_input_grad:
                return None
            dx = xp.empty_like(xhat)
            _k(xp, "bn_bapply")(dy, xhat, self.weight.data, inv_std, self.weight.grad, self.bias.grad, f, hw,
                                n * hw, dx)
            return dx
        dx = xp.empty_like(xhat) if self.needs_input_grad else xp.empty(1, xhat.dtype)
        _k(xp, "bn_backward")(dy, xhat, self.weight.data, inv_std, n, f, hw,
                              int(self.needs_input_grad), dx, self.weight.grad, self.bias.grad)
        return dx if self.needs_input_grad else None

    def clear_cache(self):
        self._cache = None
        self.bn.clear_cache()


def _conv_fusable(conv) -> bool:
    return (type(conv) is Conv2D and conv.algo in ("auto", "cuda")
            and registry.forced("conv") in (None, "cuda"))


def gpu_fuse_layers(layers: list) -> list:
    """The layers with Conv2D→ReLU→MaxPool2D, Linear(→ReLU) and batch norm replaced by their
    lean GPU forms over the same parameters (the other layers are the same objects)."""
    out, i = [], 0
    while i < len(layers):
        a = layers[i]
        b = layers[i + 1] if i + 1 < len(layers) else None
        c = layers[i + 2] if i + 2 < len(layers) else None
        # exact types, as fused.fusable: a user's subclass overriding forward/backward runs its own code
        if (_conv_fusable(a) and type(b) is ReLU and type(c) is MaxPool2D and c.padding == (0, 0)
                and c.algo in ("auto", "cuda") and registry.forced("pool") in (None, "cuda")):
            out.append(GpuConvReLUPool(a, c, [a, b, c]))
            i += 3
        elif type(a) is Linear and a.bias is not None:
            relu = type(b) is ReLU
            out.append(GpuLinear(a, relu, [a, b] if relu else [a]))
            i += 2 if relu else 1
        elif type(a) in (BatchNorm1d, BatchNorm2d):
            out.append(GpuBatchNorm(a))
            i += 1
        else:
            out.append(a)
            i += 1
    return out
