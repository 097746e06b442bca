"""Vectorised pooling on any ``xp``: one strided slice per window offset (p, q).

    stack[k] = xpad[:, :, p::sh, q::sw] (first oh×ow),   k = p·kw + q
Max: y = stack.max(0), arg = stack.argmax(0) (first maximum: the shared tie rule);
     backward: dxpad[:, :, p::sh, q::sw] += dy · [arg == k].
Avg: y = stack.mean(0) (zero padding counted); backward: each offset gets dy / (kh·kw).
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
    stack = xp.stack([xpad[:, :, p:p + sh * oh:sh, q:q + sw * ow:sw] for p in range(kh) for q in range(kw)])
    if mode == "max":
        arg = stack.argmax(axis=0).astype(xp.uint8 if kh * kw < 256 else xp.int32)
        y = xp.take_along_axis(stack, arg[None].astype(xp.intp), axis=0)[0]
    else:
        arg, y = None, stack.mean(axis=0)
    return y, (xpad.shape, arg, kernel, stride, padding, mode)


def backward(dy, cache):
    """dy (N, C, oh, ow) -> dx (N, C, H, W)."""
    xpad_shape, arg, (kh, kw), (sh, sw), (ph, pw), mode = cache
    xp = backend.array_module(dy)
    oh, ow = dy.shape[2:]
    dxpad = xp.zeros(xpad_shape, dtype=dy.dtype)
    g = dy / dy.dtype.type(kh * kw) if mode == "avg" else None
    for p in range(kh):
        for q in range(kw):
            sl = (slice(None), slice(None), slice(p, p + sh * oh, sh), slice(q, q + sw * ow, sw))
            dxpad[sl] += g if mode == "avg" else dy * (arg == p * kw + q)
    return unpad(dxpad, ph, pw).copy() if (ph or pw) else dxpad
