"""Batch norm inside a conv stack: gradients, and the fused path (nn.fused.fuse) computes the same."""
import numpy as np
import pytest

from fastcnn import models, nn
from fastcnn.gradcheck import check_layer
from fastcnn.nn.fused import ConvReLUMaxPool, fuse

STACKS = {
    # batch norm after pooling (lab-best): Conv → ReLU → pool still fuses
    "after-pool": lambda: [nn.Conv2D(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2), nn.BatchNorm2d(4),
                           nn.Conv2D(4, 5, 3), nn.ReLU(), nn.MaxPool2D(2), nn.BatchNorm2d(5)],
    # batch norm between convolution and ReLU (the textbook place): the conv stays unfused
    "before-relu": lambda: [nn.Conv2D(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2D(2),
                            nn.Conv2D(4, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.MaxPool2D(2)],
}


def _stack(kind, dtype):
    m = nn.Sequential(*STACKS[kind](), nn.Flatten(), nn.Linear(5 * 2 * 2, 3), seed=2,
                      input_shape=(1, 12, 12)).to("numpy", dtype)
    m.needs_input_grad = True
    return m


@pytest.mark.parametrize("kind", sorted(STACKS))
def test_fused_stack_with_batch_norm_matches_unfused(kind):
    ref = _stack(kind, np.float64)
    fused = fuse(ref)
    ref.fusion = False  # the reference runs layer by layer
    n_fused = sum(isinstance(l, ConvReLUMaxPool) for l in fused.layers)
    assert n_fused == (2 if kind == "after-pool" else 0)
    assert sum(type(l).__name__ == "BatchNorm2d" for l in fused.layers) == 2
    x = np.random.default_rng(0).standard_normal((6, 1, 12, 12)) * 3
    dy = np.random.default_rng(1).standard_normal((6, 3))
    for training in (True, False):
        ref.train(training)
        fused.train(training)
        bufs = [l.running_mean.copy() for l in ref.layers if isinstance(l, nn.BatchNorm2d)]
        y_ref = ref.forward(x)
        after_ref = [l.running_mean.copy() for l in ref.layers if isinstance(l, nn.BatchNorm2d)]
        dx_ref = ref.backward(dy)
        g_ref = [p.grad.copy() for p in ref.parameters()]
        for l, b in zip([l for l in ref.layers if isinstance(l, nn.BatchNorm2d)], bufs):
            l.running_mean[...] = b  # the same starting statistics for the fused pass
        y = fused.forward(x)
        dx = fused.backward(dy)
        np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-9, atol=1e-10)
        for a, p in zip(g_ref, fused.parameters()):
            np.testing.assert_allclose(p.grad, a, rtol=1e-9, atol=1e-10)
        after = [l.running_mean for l in ref.layers if isinstance(l, nn.BatchNorm2d)]
        for a, b in zip(after, after_ref):  # same layer objects: the running statistics moved alike
            np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("kind", sorted(STACKS))
def test_gradient_check_of_a_conv_stack_with_batch_norm(kind):
    m = _stack(kind, np.float64)
    x = np.random.default_rng(3).standard_normal((4, 1, 12, 12)) * 3  # spread: no ties in pooling windows
    errs = check_layer(m, x)
    assert max(errs.values()) < 1e-6, errs


def test_lab_best_fused_runs_its_convolutions_fused():
    f = fuse(models.build("lab-best"))
    assert [type(l).__name__ for l in f.layers][:4] == ["ConvReLUMaxPool", "BatchNorm2d", "ConvReLUMaxPool",
                                                       "BatchNorm2d"]
