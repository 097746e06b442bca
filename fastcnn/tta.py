"""Test-time augmentation (TTA) over translations: average the model's softmax over shifted copies.

    logp = tta_log_probs(model, x_uint8, pixels=1)   # (N, K): log of the mean softmax

``pixels=1`` uses 5 views: the image itself and its shifts by one pixel left, right,
up and down; ``pixels=2`` adds the four shifts by two pixels (9 views). A shift
moves the pixels exactly and fills the uncovered border with zeros (black, as
MNIST's background). The result is log(mean_v softmax(f(shift_v(x)))): its argmax
is the averaged prediction and, being log-probabilities, softmax gives back the
averaged probabilities, so SoftmaxCrossEntropy scores it like logits.
"""
from __future__ import annotations

import numpy as np

from . import backend


def offsets(pixels: int) -> list:
    """The (dy, dx) shifts of TTA with up to ``pixels`` pixels: (0, 0) first, then ±k along each axis."""
    pixels = int(pixels)
    if pixels < 0:
        raise ValueError(f"--tta takes the largest shift in pixels (1 or 2), got {pixels}")
    out = [(0, 0)]
    for k in range(1, pixels + 1):
        out += [(0, k), (0, -k), (k, 0), (-k, 0)]
    return out


def shift_images(x, dy: int, dx: int):
    """Images x (N, H, W) moved down by dy and right by dx pixels (negative: up / left),
    zeros where nothing moved in; same shape and dtype, on x's device."""
    xp = backend.array_module(x)
    n, h, w = x.shape
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"a shift of ({dy}, {dx}) pixels leaves nothing of {h}×{w} images")
    out = xp.zeros_like(x)
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def tta_log_probs(model, x_uint8, pixels: int = 1, batch_size: int = 1000, dtype=np.float32):
    """log of the softmax averaged over ``offsets(pixels)`` shifts of uint8 images (N, H, W) -> (N, K)."""
    from .train import predict_logits

    if x_uint8.ndim != 3:
        raise ValueError(f"TTA expects images of shape (N, H, W), got {x_uint8.shape}")
    views = offsets(pixels)
    mean = None
    for dy, dx in views:
        z = predict_logits(model, shift_images(x_uint8, dy, dx), batch_size, dtype)
        xp = backend.array_module(z)
        p = xp.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        mean = p if mean is None else mean + p
    mean /= len(views)
    xp = backend.array_module(mean)
    return xp.log(xp.maximum(mean, xp.finfo(mean.dtype).tiny))
