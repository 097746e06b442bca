"""Shape arithmetic and padding shared by every convolution and pooling algorithm."""
from __future__ import annotations

from .kernels.shapes import out_size  # ⌊(size + 2p − k) / s⌋ + 1, shared with the CUDA launchers


def check_geometry(name: str, in_hw, k, s, p) -> tuple:
    """(oh, ow) or a clear error when the window does not fit the padded input."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = in_hw, k, s, p
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{name}: kernel and stride must be ≥ 1 and padding ≥ 0, got k={k}, s={s}, p={p}")
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"{name}: a {kh}×{kw} window does not fit an input of {h}×{w} with padding {p}")
    return oh, ow


def pad(xp, x, ph: int, pw: int, value=0):
    """x (N, C, H, W) padded with ``value`` -> (N, C, H + 2ph, W + 2pw); no copy when ph = pw = 0."""
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def unpad(x, ph: int, pw: int):
    """Inverse of ``pad``: the interior (a view)."""
    h, w = x.shape[2] - 2 * ph, x.shape[3] - 2 * pw
    return x[:, :, ph:ph + h, pw:pw + w]
