"""The fused Numba layers compute exactly what Conv2D → ReLU (→ MaxPool2D) computes."""
import numpy as np
import pytest

from fastcnn import models, nn
from fastcnn.gradcheck import check_layer
from fastcnn.nn.fused import ConvReLU, ConvReLUMaxPool, fuse


def _pair(dtype, c=3, f=4, k=3, s=1, p=1, pool=(2, 2)):
    rng = np.random.default_rng(0)
    layers = [nn.Conv2D(c, f, k, stride=s, padding=p, algo="numba"), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2D(pool[0], stride=pool[1]))
    ref = nn.Sequential(*layers, seed=3, fusion=False).to("numpy", dtype)  # the unfused reference
    ref.needs_input_grad = True
    fused = fuse(ref)
    x = rng.standard_normal((5, c, 9, 8)).astype(dtype)
    return ref, fused, x


@pytest.mark.parametrize("variant", ["direct", "gemm"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("geom", [dict(), dict(k=(3, 2), s=2, p=0, pool=(3, 2)), dict(pool=None), dict(c=1, f=6, k=5, p=2)])
def test_fused_matches_unfused(dtype, tol, geom, variant, monkeypatch):
    from fastcnn.conv import numba_conv
    monkeypatch.setattr(numba_conv, "choose", lambda: variant)
    ref, fused, x = _pair(dtype, **geom)
    assert isinstance(fused[0], ConvReLUMaxPool if geom.get("pool", (2, 2)) else ConvReLU)
    y_ref, y = ref.forward(x), fused.forward(x)
    assert fused[0].variant == variant
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx_ref = ref.backward(dy)
    g_ref = [p.grad.copy() for p in ref.parameters()]
    dx = fused.backward(dy)
    np.testing.assert_allclose(dx, dx_ref, rtol=tol, atol=tol)
    for a, b in zip(g_ref, [p.grad for p in fused.parameters()]):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("variant", ["direct", "gemm"])
def test_fused_gradient_check(variant, monkeypatch):
    from fastcnn.conv import numba_conv
    monkeypatch.setattr(numba_conv, "choose", lambda: variant)
    ref, fused, x = _pair(np.float64)
    fused.needs_input_grad = True
    errs = check_layer(fused[0], x * 4)  # spread values apart: no ties inside pooling windows
    assert max(errs.values()) < 1e-7, errs


def test_fuse_shares_parameters_and_keeps_weights():
    m = models.build("lenet5", seed=1)
    before = [p.data.copy() for p in m.parameters()]
    f = fuse(m)
    assert [type(l).__name__ for l in f.layers][:2] == ["ConvReLUMaxPool", "ConvReLUMaxPool"]
    assert all(a is b for a, b in zip(m.parameters(), f.parameters()))
    for a, p in zip(before, m.parameters()):
        np.testing.assert_array_equal(a, p.data)
    assert f.layers[0].needs_input_grad is False


@pytest.mark.parametrize("variant", ["direct", "gemm"])
def test_fused_pool_ties_go_to_first_maximum(variant, monkeypatch):
    """Quantised input and weights make most 2×2 windows tie: the fused layer (branch-free 2×2
    path) must send each gradient where the unfused MaxPool2D does, the first maximum."""
    from fastcnn.conv import numba_conv
    monkeypatch.setattr(numba_conv, "choose", lambda: variant)
    ref, fused, x = _pair(np.float64, c=2, f=3, k=2, p=0)
    x = np.random.default_rng(2).integers(0, 2, x.shape).astype(np.float64)
    for p in ref.parameters():
        p.data[...] = 1.0 if p.data.ndim > 1 else 0.0
    y_ref, y = ref.forward(x), fused.forward(x)
    np.testing.assert_array_equal(y, y_ref)
    dy = np.arange(1, y.size + 1, dtype=np.float64).reshape(y.shape)
    dx_ref = ref.backward(dy)
    g_ref = [p.grad.copy() for p in ref.parameters()]
    np.testing.assert_array_equal(fused.backward(dy), dx_ref)
    for a, b in zip(g_ref, [p.grad for p in fused.parameters()]):
        np.testing.assert_array_equal(b, a)


def test_unpinned_layer_chooses_again():
    """A layer pinned to a variant and then un-pinned runs numba_conv.choose's variant again."""
    ref, fused, x = _pair(np.float32)
    layer = fused[0]
    layer.pinned = "gemm"
    fused.forward(x)
    assert layer.variant == "gemm"
    layer.pinned = None
    np.testing.assert_allclose(fused.forward(x), ref.forward(x), rtol=1e-5, atol=1e-5)
    assert layer.variant == "direct"


def test_a_models_own_plan_follows_its_mode():
    """model.eval() reaches the fused layers a Sequential runs by itself (plan()), also those built
    after the switch: in evaluation they keep no argmax; back in training they do again."""
    model = models.build("lenet5")
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    model.eval()
    model.forward(x)
    assert [l._cache[1] for l in model.plan() if isinstance(l, ConvReLUMaxPool)] == [None, None]
    model.train()
    model.forward(x)
    assert all(l._cache[1] is not None for l in model.plan() if isinstance(l, ConvReLUMaxPool))


@pytest.mark.parametrize("geom", [dict(), dict(k=(3, 2), s=2, p=0, pool=(3, 2)), dict(c=1, f=6, k=5, p=2)])
def test_evaluation_skips_the_argmax_and_a_backward_after_it_still_matches(geom):
    """In evaluation the fused layer computes y without the argmax (no backward is expected);
    y is the same, and a backward asked for anyway (saliency, a gradient check in eval mode)
    makes the argmax then and gives the training-mode gradients."""
    ref, fused, x = _pair(np.float64, **geom)
    y_train = fused.forward(x)
    dy = np.random.default_rng(4).standard_normal(y_train.shape)
    dx_train = fused.backward(dy)
    g_train = [p.grad.copy() for p in fused.parameters()]
    fused.eval()
    y_eval = fused.forward(x)
    assert fused[0]._cache[1] is None  # no argmax kept
    np.testing.assert_array_equal(y_eval, y_train)
    np.testing.assert_array_equal(fused.backward(dy), dx_train)
    for a, p in zip(g_train, fused.parameters()):
        np.testing.assert_array_equal(p.grad, a)
