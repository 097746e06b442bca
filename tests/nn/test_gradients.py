"""Float64 central-difference gradient checks for every layer."""
import numpy as np
import pytest

from fastcnn import nn
from fastcnn.gradcheck import check_layer

TOL = 1e-7


def _no_ties(rng, shape):
    """Values that are all distinct and well apart (max-pooling without ties)."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) / n * 4 - 2).astype(np.float64)


def _check(layer, x):
    layer.to("numpy", np.float64)
    errs = check_layer(layer, x)
    assert max(errs.values()) < TOL, errs


@pytest.mark.parametrize("n,in_f,out_f,bias", [(1, 3, 2, True), (5, 7, 4, False), (4, 16, 9, True)])
def test_linear(n, in_f, out_f, bias):
    rng = np.random.default_rng(n)
    _check(nn.Linear(in_f, out_f, bias=bias, seed=n), rng.standard_normal((n, in_f)))


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(), nn.Flatten()],
                         ids=lambda l: type(l).__name__)
def test_elementwise(layer):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 5, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink of ReLU-family functions
    _check(layer, x)


@pytest.mark.parametrize("algo", ["naive", "einsum", "im2col", "numba"])
@pytest.mark.parametrize("n,c,f,hw,k,s,p,bias", [
    (1, 1, 1, (5, 5), 3, 1, 0, True),
    (2, 3, 4, (7, 6), (3, 2), (2, 1), (1, 0), True),
    (3, 2, 3, (9, 8), 4, 3, 2, False),
    (2, 4, 2, (6, 11), (1, 5), 2, (0, 2), True),
])
def test_conv2d(algo, n, c, f, hw, k, s, p, bias):
    rng = np.random.default_rng(7)
    layer = nn.Conv2D(c, f, k, stride=s, padding=p, bias=bias, algo=algo, seed=3)
    _check(layer, rng.standard_normal((n, c) + hw))


@pytest.mark.parametrize("algo", ["naive", "vectorised", "numba"])
@pytest.mark.parametrize("cls", [nn.MaxPool2D, nn.AvgPool2D])
@pytest.mark.parametrize("n,c,hw,k,s,p", [
    (1, 1, (4, 4), 2, None, 0),
    (2, 3, (7, 6), 3, 2, 1),     # overlapping windows, padding
    (3, 2, (5, 9), (2, 3), (1, 2), (1, 1)),
])
def test_pool(algo, cls, n, c, hw, k, s, p):
    rng = np.random.default_rng(11)
    _check(cls(k, stride=s, padding=p, algo=algo), _no_ties(rng, (n, c) + hw))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (6, 5)), (nn.BatchNorm2d, (4, 3, 5, 2))])
def test_batchnorm(cls, shape, training):
    rng = np.random.default_rng(5)
    layer = cls(shape[1])
    layer.to("numpy", np.float64)
    layer.weight.data[...] = rng.uniform(0.5, 2, shape[1])
    layer.bias.data[...] = rng.standard_normal(shape[1])
    layer.running_mean[...] = rng.standard_normal(shape[1])
    layer.running_var[...] = rng.uniform(0.5, 2, shape[1])
    layer.train(training)
    # batch statistics change the running ones on every forward: freeze them for the check
    layer.momentum = 0.0
    _check(layer, rng.standard_normal(shape) * 2 + 1)


def test_dropout_gradient_uses_the_same_mask():
    layer = nn.Dropout(0.3, seed=2).to("numpy", np.float64)
    x = np.random.default_rng(0).standard_normal((4, 6))
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx, np.where(y != 0, 1 / 0.7, 0))
    np.testing.assert_allclose(y, x * dx)


def test_sequential_gradient():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2D(2, 3, 3, padding=1, algo="im2col"), nn.Tanh(), nn.AvgPool2D(2),
                          nn.Flatten(), nn.Linear(3 * 3 * 3, 4), nn.Sigmoid(), nn.Linear(4, 2), seed=1)
    x = rng.standard_normal((2, 2, 6, 6))
    model.to("numpy", np.float64)
    errs = check_layer(model, x)
    assert max(errs.values()) < TOL, errs


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_cross_entropy(smoothing):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5, 4)) * 3
    labels = rng.integers(0, 4, 5)
    loss = nn.SoftmaxCrossEntropy(smoothing)
    loss.forward(z, labels)
    d = loss.backward()
    from fastcnn.gradcheck import numerical_grad, rel_error
    num = numerical_grad(lambda: float(loss.forward(z, labels)), z)
    assert rel_error(d, num) < 1e-8
