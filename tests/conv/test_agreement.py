"""Every convolution and pooling algorithm agrees with the naive reference, forward and backward."""
import numpy as np
import pytest

from fastcnn import backend
from fastcnn.conv import CONV
from fastcnn.geometry import out_size
from fastcnn.pool import POOL

TOLS = {np.float64: 1e-10, np.float32: 1e-5}
CPU_CONV = [n for n, a in CONV.items() if a.available(np) and n != "naive"]
CPU_POOL = [n for n, a in POOL.items() if a.available(np) and n != "naive"]


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(1e-30, float(np.max(np.abs(b)))))


def _random_geometries(count, seed):
    """Random conv geometries: stride 1–3, padding 0–2, kernels 1–7 (rectangular), batch 1–4, channels 1–8."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        kh, kw = rng.integers(1, 8, 2)
        sh, sw = rng.integers(1, 4, 2)
        ph, pw = rng.integers(0, 3, 2)
        h, w = rng.integers(max(kh, 3), 14), rng.integers(max(kw, 3), 14)
        if out_size(h, kh, sh, ph) < 1 or out_size(w, kw, sw, pw) < 1:
            continue
        n = int(rng.choice([1, 2, 4]))
        c, f = rng.integers(1, 9, 2)
        out.append((n, int(c), int(f), (int(h), int(w)), (int(kh), int(kw)), (int(sh), int(sw)), (int(ph), int(pw))))
    return out


def _geom_id(g):
    return "x".join(map(str, g[:3])) + f"k{g[4]}s{g[5]}p{g[6]}"


def _conv_case(geom, dtype, seed):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,), stride, padding for a geometry of _random_geometries."""
    n, c, f, hw, k, s, p = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + hw).astype(dtype)
    w = rng.standard_normal((f, c) + k).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    return x, w, b, s, p, rng


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("algo", CPU_CONV)
@pytest.mark.parametrize("geom", _random_geometries(12, seed=0), ids=_geom_id)
def test_conv_agrees_with_naive(algo, geom, dtype):
    x, w, b, s, p, rng = _conv_case(geom, dtype, seed=1)
    y_ref, cache_ref = CONV["naive"].forward(x, w, b, s, p)
    y, cache = CONV[algo].forward(x, w, b, s, p)
    assert y.shape == y_ref.shape and y.dtype == dtype
    tol = TOLS[dtype]
    assert _rel(y, y_ref) <= tol
    dy = rng.standard_normal(y.shape).astype(dtype)
    ref = CONV["naive"].backward(dy, cache_ref, True)
    got = CONV[algo].backward(dy, cache, True)
    for name, a, r in zip(("dx", "dW", "db"), got, ref):
        assert a.dtype == dtype, name
        assert _rel(a, r) <= tol, name


@pytest.mark.parametrize("algo", CPU_CONV)
def test_conv_without_bias_and_without_dx(algo):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    y_ref, c_ref = CONV["naive"].forward(x, w, None, (1, 1), (1, 1))
    y, c = CONV[algo].forward(x, w, None, (1, 1), (1, 1))
    assert _rel(y, y_ref) <= 1e-10
    dy = rng.standard_normal(y.shape)
    dx, dw, db = CONV[algo].backward(dy, c, False)
    assert dx is None and db is None
    assert _rel(dw, CONV["naive"].backward(dy, c_ref, False)[1]) <= 1e-10


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("algo", CPU_POOL)
@pytest.mark.parametrize("geom", [((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)), ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1)),
                                  ((3, 1, 6, 5), (2, 3), (1, 2), (1, 0)), ((2, 4, 5, 5), (1, 1), (1, 1), (0, 0))])
def test_pool_agrees_with_naive(algo, mode, geom, dtype):
    shape, k, s, p = geom
    rng = np.random.default_rng(3)
    x = (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0 - 3).astype(dtype)  # no ties
    y_ref, c_ref = POOL["naive"].forward(x, k, s, p, mode)
    y, c = POOL[algo].forward(x, k, s, p, mode)
    tol = TOLS[dtype]
    assert _rel(y, y_ref) <= tol
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert _rel(POOL[algo].backward(dy, c), POOL["naive"].backward(dy, c_ref)) <= tol


@pytest.mark.parametrize("algo", ["naive"] + CPU_POOL)
def test_max_pool_tie_rule_first_maximum(algo):
    x = np.zeros((1, 1, 2, 2))  # every element ties
    y, c = POOL[algo].forward(x, (2, 2), (2, 2), (0, 0), "max")
    dx = POOL[algo].backward(np.ones_like(y), c)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


def test_max_pool_pads_with_minus_infinity():
    x = -np.ones((1, 1, 2, 2))  # all negative: zero padding would win
    for algo in ["naive"] + CPU_POOL:
        y, _ = POOL[algo].forward(x, (2, 2), (1, 1), (1, 1), "max")
        np.testing.assert_array_equal(y, -np.ones((1, 1, 3, 3)))


def test_im2col_buffer_is_bounded(monkeypatch):
    from fastcnn.conv import im2col
    monkeypatch.setattr(im2col, "MAX_COLS_BYTES", 4096)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    y, cache = im2col.forward(x, w, None, (1, 1), (0, 0))
    assert cache[1] is None  # too big to keep: rebuilt chunk by chunk in backward
    y_ref, c_ref = CONV["naive"].forward(x, w, None, (1, 1), (0, 0))
    assert _rel(y, y_ref) <= 1e-12
    dy = rng.standard_normal(y.shape)
    for a, r in zip(im2col.backward(dy, cache), CONV["naive"].backward(dy, c_ref)):
        if r is not None:
            assert _rel(a, r) <= 1e-12


def test_backend_array_module():
    assert backend.array_module(np.zeros(1)) is np


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("variant", ["direct", "gemm"])
@pytest.mark.parametrize("geom", _random_geometries(8, seed=5), ids=_geom_id)
def test_numba_variants_agree_with_naive(variant, geom, dtype):
    """Both Numba variants, whichever the per-shape timing would pick."""
    from fastcnn.conv import numba_conv
    x, w, b, s, p, rng = _conv_case(geom, dtype, seed=6)
    y_ref, cache_ref = CONV["naive"].forward(x, w, b, s, p)
    y, cache = numba_conv._forward(variant, x, w, b, s, p)
    assert cache[0] == variant
    assert _rel(y, y_ref) <= TOLS[dtype]
    dy = rng.standard_normal(y.shape).astype(dtype)
    for a, r in zip(numba_conv.backward(dy, cache, True), CONV["naive"].backward(dy, cache_ref, True)):
        assert a.dtype == dtype and _rel(a, r) <= TOLS[dtype]
