"""The one-channel path (kernels/cpu/conv_c1.py: the image as its own columns, no unroll) against
the unrolled kernels it replaces for a first layer: same outputs, argmax and gradients."""
import numpy as np
import pytest

from fastcnn.kernels.cpu import conv as kd
from fastcnn.kernels.cpu import conv_c1


def _run(x, w2, b, dy_seed, kh, kw):
    oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    poh, pow_ = oh // 2, ow // 2
    y, arg = kd.conv_relu_maxpool_forward(x, w2, b, kh, kw, 1, 1, oh, ow, 2, 2, 2, 2, poh, pow_, 4)
    y_eval, _ = kd.conv_relu_maxpool_forward(x, w2, b, kh, kw, 1, 1, oh, ow, 2, 2, 2, 2, poh, pow_, 4, keep_arg=False)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(x.dtype)
    _, dw, db = kd.conv_relu_maxpool_backward(x, w2, dy, arg, kh, kw, 1, 1, oh, ow, False, 4)
    return y, arg, y_eval, dw, db


@pytest.mark.parametrize("n, h, w, kh, kw, f", [(9, 28, 28, 5, 5, 6), (7, 32, 32, 5, 5, 6), (5, 11, 9, 3, 2, 5),
                                                (3, 9, 10, 4, 4, 8), (33, 12, 12, 3, 3, 16)])
def test_the_one_channel_path_matches_the_unrolled_one(n, h, w, kh, kw, f, monkeypatch):
    """float64: the same z, bit for bit (the same products in the same order), so the same y and
    argmax (odd sizes: the pool drops the last row or column); dW and db differ only by the
    order of their sums."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 1, h, w))
    w2, b = rng.standard_normal((f, kh * kw)), rng.standard_normal(f)
    assert conv_c1.fits(x, 1, 1, kh, kw, h - kh + 1, w - kw + 1, True)
    new = _run(x, w2, b, n, kh, kw)
    monkeypatch.setattr(conv_c1, "fits", lambda *a: False)
    old = _run(x, w2, b, n, kh, kw)
    for a, b_ in zip(new[:3], old[:3]):
        np.testing.assert_array_equal(a, b_)
    for a, b_ in zip(new[3:], old[3:]):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_what_the_one_channel_path_takes():
    x = np.zeros((2, 1, 12, 12))
    assert conv_c1.fits(x, 1, 1, 5, 5, 8, 8, True)
    assert not conv_c1.fits(x, 1, 1, 5, 5, 8, 8, False)           # no 2×2 pool after it
    assert not conv_c1.fits(x, 2, 1, 5, 5, 4, 8, True)            # strided
    assert not conv_c1.fits(np.zeros((2, 3, 12, 12)), 1, 1, 5, 5, 8, 8, True)  # three channels
    assert not conv_c1.fits(np.zeros((2, 1, 12, 24))[..., ::2], 1, 1, 5, 5, 8, 8, True)  # not contiguous


def test_a_strided_view_is_computed_all_the_same():
    """A non-contiguous input goes through a contiguous copy (the kernels read it flat)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 14, 28))[..., ::2]
    w2, b = rng.standard_normal((6, 9)), rng.standard_normal(6)
    y, arg = kd.conv_relu_maxpool_forward(x, w2, b, 3, 3, 1, 1, 12, 12, 2, 2, 2, 2, 6, 6, 2)
    y2, arg2 = kd.conv_relu_maxpool_forward(np.ascontiguousarray(x), w2, b, 3, 3, 1, 1, 12, 12, 2, 2, 2, 2, 6, 6, 2)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(arg, arg2)
