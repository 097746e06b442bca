"""Reference pooling: a loop over output positions.

Max:  y[n, c, i, j] = max over the window of xpad (padded with −inf); the gradient goes to
      the first maximum of the window in row-major order (the tie rule of every path).
Avg:  y[n, c, i, j] = mean over the kh·kw window of xpad (padded with 0, padding counted);
      each window element receives dy / (kh·kw).
"""
from __future__ import annotations

from .. import backend
from ..geometry import check_geometry, pad, unpad


def forward(x, kernel, stride, padding, mode):
    """x (N, C, H, W) -> y (N, C, oh, ow), cache."""
    xp = backend.array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = check_geometry(f"{mode}-pool", x.shape[2:], kernel, stride, padding)
    xpad = pad(xp, x, ph, pw, -xp.inf if mode == "max" else 0)
    n, c = x.shape[:2]
    y = xp.empty((n, c, oh, ow), dtype=x.dtype)
    arg = xp.empty((n, c, oh, ow), dtype=xp.int64) if mode == "max" else None
    for i in range(oh):
        for j in range(ow):
            win = xpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, c, kh * kw)
            if mode == "max":
                arg[:, :, i, j] = win.argmax(axis=2)
                y[:, :, i, j] = win.max(axis=2)
            else:
                y[:, :, i, j] = win.mean(axis=2)
    return y, (xpad.shape, arg, kernel, stride, padding, mode)


def backward(dy, cache):
    """dy (N, C, oh, ow) -> dx (N, C, H, W)."""
    xpad_shape, arg, (kh, kw), (sh, sw), (ph, pw), mode = cache
    xp = backend.array_module(dy)
    n, c, oh, ow = dy.shape
    dxpad = xp.zeros(xpad_shape, dtype=dy.dtype)
    positions = xp.arange(kh * kw)  # a window's flat positions: one-hot of the argmax (numpy and CuPy 13 alike)
    for i in range(oh):
        for j in range(ow):
            g = dy[:, :, i, j]
            if mode == "max":
                win = (positions == arg[:, :, i, j, None]) * g[:, :, None]  # g at the argmax, 0 elsewhere
                dxpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += win.reshape(n, c, kh, kw)
            else:
                dxpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += g[:, :, None, None] / (kh * kw)
    return unpad(dxpad, ph, pw).copy() if (ph or pw) else dxpad
