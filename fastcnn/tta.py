"""Test-time augmentation (TTA) over translations: the image shifts whose softmax is averaged.

    views = offsets(1)                          # [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0)]
    x2 = shift_images(x_uint8, dy, dx)          # (N, H, W) -> (N, H, W)

fastcnn.inference.tta_log_probs(model, x_uint8, pixels) averages the model over these views.

``pixels=1`` uses 5 views: the image itself and its shifts by one pixel left, right,
up and down; ``pixels=2`` adds the four shifts by two pixels (9 views). A shift
moves the pixels exactly and fills the uncovered border with zeros (black, as
MNIST's background). tta_log_probs returns log(mean_v softmax(f(shift_v(x)))).
"""
from __future__ import annotations

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
