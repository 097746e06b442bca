"""A student's own layers, written against fastcnn's Layer API: average pooling, a loop-based
convolution (an algorithm with forward/backward, and a layer using it) and a network of them.
The workbench's tests check, benchmark and train these (tests/workbench/)."""
import numpy as np

from fastcnn import nn


class AvgPool(nn.Layer):
    """Average pooling over k×k windows, stride k: y = mean of each window; dx = dy / (k·k) to each element."""

    def __init__(self, kernel_size=2):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x):
        n, c, h, w = x.shape
        k = self.kernel_size
        self.in_shape = x.shape
        oh, ow = h // k, w // k
        return x[:, :, :oh * k, :ow * k].reshape(n, c, oh, k, ow, k).mean(axis=(3, 5))

    def backward(self, dy):
        k = self.kernel_size
        oh, ow = dy.shape[2:]
        dx = np.zeros(self.in_shape, dtype=dy.dtype)
        dx[:, :, :oh * k, :ow * k] = np.repeat(np.repeat(dy, k, axis=2), k, axis=3) / (k * k)
        return dx

    def output_shape(self, in_shape):
        c, h, w = in_shape
        return (c, h // self.kernel_size, w // self.kernel_size)


class LoopConv:
    """A convolution algorithm (fastcnn.registry's contract), one loop over output positions.

    forward:  y[n,f,i,j] = b[f] + Σ_{c,p,q} xpad[n,c,i·sh+p,j·sw+q] · W[f,c,p,q]
    backward: dW = Σ over positions of dy ⊗ window; db = Σ dy;
              dx = (dy dilated by the stride, padded by k−1) correlated with W rotated 180°.
    """

    @staticmethod
    def forward(x, w, b, stride, padding):
        (sh, sw), (ph, pw) = stride, padding
        f, c, kh, kw = w.shape
        xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        oh, ow = (xpad.shape[2] - kh) // sh + 1, (xpad.shape[3] - kw) // sw + 1
        y = np.zeros((x.shape[0], f, oh, ow), dtype=x.dtype)
        for i in range(oh):
            for j in range(ow):
                win = xpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                y[:, :, i, j] = np.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3]))
        if b is not None:
            y += b.reshape(1, f, 1, 1)
        return y, (x.shape, xpad, w, stride, padding, b is not None)

    @staticmethod
    def backward(dy, cache, need_dx=True):
        x_shape, xpad, w, (sh, sw), (ph, pw), has_b = cache
        f, c, kh, kw = w.shape
        n, _, oh, ow = dy.shape
        dw = np.zeros_like(w)
        for i in range(oh):
            for j in range(ow):
                win = xpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                dw += np.tensordot(dy[:, :, i, j], win, axes=([0], [0]))
        db = dy.sum(axis=(0, 2, 3)) if has_b else None
        if not need_dx:
            return None, dw, db
        # full convolution: dy dilated by the stride, padded by k − 1, against W rotated by 180°
        dil = np.zeros((n, f, (oh - 1) * sh + 1, (ow - 1) * sw + 1), dtype=dy.dtype)
        dil[:, :, ::sh, ::sw] = dy
        dil = np.pad(dil, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
        rot = w[:, :, ::-1, ::-1]
        hh, ww = dil.shape[2] - kh + 1, dil.shape[3] - kw + 1
        dxpad = np.zeros(xpad.shape, dtype=dy.dtype)
        for i in range(hh):
            for j in range(ww):
                win = dil[:, :, i:i + kh, j:j + kw]
                dxpad[:, :, i, j] = np.tensordot(win, rot, axes=([1, 2, 3], [0, 2, 3]))
        return dxpad[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]].copy(), dw, db


class LoopConv2D(nn.Layer):
    """A convolution layer of my own on LoopConv: x (N, C, H, W) -> y (N, F, oh, ow)."""

    param_names = ("weight", "bias")
    init = "auto"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.in_channels, self.out_channels, self.k = in_channels, out_channels, kernel_size
        self.stride, self.padding = (stride, stride), (padding, padding)
        rng = np.random.default_rng(0)
        self.weight = nn.Parameter(rng.standard_normal((out_channels, in_channels, kernel_size, kernel_size))
                                   .astype(np.float32) * np.sqrt(2 / (in_channels * kernel_size ** 2)), "weight")
        self.bias = nn.Parameter(np.zeros(out_channels, np.float32), "bias")

    def reset_parameters(self, rng, scheme):
        fan_in = self.in_channels * self.k ** 2
        w = rng.standard_normal(self.weight.data.shape) * np.sqrt(2 / fan_in)
        self.weight.data[...] = w.astype(self.weight.data.dtype)
        self.bias.data[...] = 0

    def forward(self, x):
        y, self.cache = LoopConv.forward(x, self.weight.data, self.bias.data, self.stride, self.padding)
        return y

    def backward(self, dy):
        dx, self.weight.grad[...], self.bias.grad[...] = LoopConv.backward(dy, self.cache, self.needs_input_grad)
        return dx

    def output_shape(self, in_shape):
        c, h, w = in_shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        return (self.out_channels, (h + 2 * ph - self.k) // sh + 1, (w + 2 * pw - self.k) // sw + 1)


def small_net(seed=0):
    """My network: my convolution and my pooling between fastcnn's layers (5,874 parameters)."""
    return nn.Sequential(LoopConv2D(1, 4, 5), nn.ReLU(), AvgPool(2), nn.Flatten(), nn.Linear(4 * 12 * 12, 10),
                         seed=seed, input_shape=(1, 28, 28))
