"""kernels.cpu.unroll: the rows-of-four fast path equals the general unroll and fold, and a
convolution whose output rows are four wide agrees with the naive reference."""
import numpy as np
import pytest

from fastcnn.conv import CONV
from fastcnn.kernels.cpu.unroll import fold, fold_rows, fold_w4, unroll, unroll_rows, unroll_w4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c, hw, k", [(1, (4, 4), (1, 1)), (3, (7, 9), (4, 6)), (16, (9, 9), (6, 6))])
def test_rows_of_four_equal_the_general_unroll_and_fold(c, hw, k, dtype):
    kh, kw = k
    oh, ow = hw[0] - kh + 1, hw[1] - kw + 1
    assert ow == 4 or hw[1] == 4
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((c,) + hw).astype(dtype)
    g = 3  # fill and fold sample 1 of a 3-sample buffer: the others stay untouched
    ref = np.full((c * kh * kw, g, oh * ow), 7.0, dtype)
    out = ref.copy()
    unroll(xs, kh, kw, 1, 1, oh, ow, ref, 1)
    unroll_w4(xs, kh, kw, oh, out, 1)
    np.testing.assert_array_equal(out, ref)
    dcols = rng.standard_normal(ref.shape).astype(dtype)
    dref, dout = np.ones_like(xs), np.ones_like(xs)
    fold(dcols, kh, kw, 1, 1, oh, ow, dref, 1)
    fold_w4(dcols, kh, kw, oh, dout, 1)
    np.testing.assert_array_equal(dout, dref)


def test_the_dispatchers_take_the_general_path_elsewhere():
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((2, 9, 9))
    for (kh, kw), s in [((3, 3), 1), ((3, 3), 2), ((4, 6), 1)]:
        oh, ow = (9 - kh) // s + 1, (9 - kw) // s + 1
        ref = np.zeros((2 * kh * kw, 1, oh * ow))
        out = np.zeros_like(ref)
        unroll(xs, kh, kw, s, s, oh, ow, ref, 0)
        unroll_rows(xs, kh, kw, s, s, oh, ow, out, 0)
        np.testing.assert_array_equal(out, ref)
        dref, dout = np.zeros_like(xs), np.zeros_like(xs)
        fold(ref, kh, kw, s, s, oh, ow, dref, 0)
        fold_rows(ref, kh, kw, s, s, oh, ow, dout, 0)
        np.testing.assert_array_equal(dout, dref)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_a_convolution_with_rows_of_four_agrees_with_naive(dtype, tol):
    """compact's second layer in small: 5@6×6 over 4 channels of 9×9 -> 4×4 outputs."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 9, 9)).astype(dtype)
    w = rng.standard_normal((5, 4, 6, 6)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    y_ref, cache_ref = CONV["naive"].forward(x, w, b, (1, 1), (0, 0))
    y, cache = CONV["numba"].forward(x, w, b, (1, 1), (0, 0))
    assert y.shape == (3, 5, 4, 4)

    def rel(a, r):
        return float(np.max(np.abs(a - r)) / np.max(np.abs(r)))

    assert rel(y, y_ref) <= tol
    dy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(CONV["numba"].backward(dy, cache), CONV["naive"].backward(dy, cache_ref)):
        assert rel(got, want) <= tol


@pytest.mark.parametrize("algo", [n for n in CONV if n in ("numba", "im2col")])
@pytest.mark.parametrize("stride, hw", [((2, 1), (9, 6)), ((3, 1), (12, 6)), ((1, 2), (6, 9))])
def test_unequal_strides_with_rows_of_four_agree_with_naive(algo, stride, hw):
    """Stride (2, 1) and output rows four wide: the rows-of-four path ignored the vertical stride
    (it copied rows i + p instead of 2i + p) until session 7; (1, 2) and (3, 1) for company."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2) + hw)
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    y_ref, c_ref = CONV["naive"].forward(x, w, b, stride, (0, 0))
    y, c = CONV[algo].forward(x, w, b, stride, (0, 0))
    assert 4 in y.shape[2:]
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(y.shape)
    for got, ref in zip(CONV[algo].backward(dy, c, True), CONV["naive"].backward(dy, c_ref, True)):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("c, hw, k", [(6, (12, 12), (5, 5)), (2, (10, 9), (3, 2))])
def test_rows_of_eight_equal_the_definition(c, hw, k):
    """unroll_s1 copies rows eight wide (unroll_w8: LeNet-5's second layer) as the definition says:
    cols[(c, p, q), g, i·ow + j] = xs[c, i + p, j + q]; the other samples' columns untouched."""
    from fastcnn.kernels.cpu.unroll import unroll_s1
    kh, kw = k
    oh, ow = hw[0] - kh + 1, hw[1] - kw + 1
    assert ow == 8
    xs = np.random.default_rng(3).standard_normal((c,) + hw).astype(np.float32)
    out = np.full((c * kh * kw, 3, oh * ow), 7.0, np.float32)
    unroll_s1(xs, kh, kw, oh, ow, out, 1)
    ref = np.stack([xs[ci, p:p + oh, q:q + ow].ravel() for ci in range(c) for p in range(kh) for q in range(kw)])
    np.testing.assert_array_equal(out[:, 1], ref)
    assert (out[:, [0, 2]] == 7).all()
