"""The Numba batch-norm kernels (kernels/cpu/norm.py) against the layer's NumPy formulas.

A C-contiguous NumPy input in training mode takes the kernels; the same values as a
non-contiguous view take the NumPy expressions — both must give the same y, running
statistics, dx, dγ and dβ (float64: to rounding; float32: float32 tolerance)."""
import numpy as np
import pytest

from fastcnn import nn
from fastcnn.kernels.cpu import norm as kernels


def _pair(cls, c, dtype):
    a, b = cls(c, dtype=dtype), cls(c, dtype=dtype)
    rng = np.random.default_rng(1)
    for layer in (a, b):
        layer.weight.data[...] = rng.standard_normal(c).astype(dtype) if layer is a else a.weight.data
        layer.bias.data[...] = rng.standard_normal(c).astype(dtype) if layer is a else a.bias.data
        layer.needs_input_grad = True
    return a, b


@pytest.mark.parametrize("cls, shape", [(nn.BatchNorm2d, (5, 3, 4, 6)), (nn.BatchNorm2d, (64, 6, 12, 12)),
                                        (nn.BatchNorm1d, (7, 9))])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_kernels_agree_with_the_numpy_formulas(cls, shape, dtype, tol):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    fast, ref = _pair(cls, shape[1], dtype)
    wide = np.empty(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]  # the same values, not contiguous
    wide[...] = x
    y = fast.forward(x)
    y_ref = ref.forward(wide)
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(fast.running_mean, ref.running_mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(fast.running_var, ref.running_var, rtol=tol, atol=tol)
    dyw = np.empty_like(wide)
    dyw[...] = dy
    dx = fast.backward(dy)
    dx_ref = ref.backward(dyw)
    np.testing.assert_allclose(dx, dx_ref, rtol=10 * tol, atol=10 * tol)
    np.testing.assert_allclose(fast.weight.grad, ref.weight.grad, rtol=10 * tol, atol=10 * tol)
    np.testing.assert_allclose(fast.bias.grad, ref.bias.grad, rtol=10 * tol, atol=10 * tol)
    assert y.dtype == dx.dtype == dtype


def test_the_kernels_check_their_arguments():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="weight must have shape"):
        kernels.batchnorm_forward(x, np.ones(2, np.float32), np.zeros(3, np.float32), 1e-5)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.batchnorm_backward(x[:, :, ::2], x[:, :, ::2], np.ones(3, np.float32), np.ones(3, np.float32), True)


@pytest.mark.parametrize("cls, shape", [(nn.BatchNorm2d, (5, 3, 4, 6)), (nn.BatchNorm1d, (7, 9))])
def test_evaluation_mode_kernel_agrees_forward_and_backward(cls, shape):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 2 - 1).astype(np.float64)
    dy = rng.standard_normal(shape)
    fast, ref = _pair(cls, shape[1], np.float64)
    for layer in (fast, ref):
        layer.running_mean[...] = np.linspace(-1, 1, shape[1])
        layer.running_var[...] = np.linspace(0.5, 2, shape[1])
        layer.eval()
    wide = np.empty(shape[:-1] + (2 * shape[-1],))[..., ::2]
    wide[...] = x
    np.testing.assert_allclose(fast.forward(x), ref.forward(wide), rtol=1e-12, atol=1e-12)
    dyw = np.empty_like(wide)
    dyw[...] = dy
    np.testing.assert_allclose(fast.backward(dy), ref.backward(dyw), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast.weight.grad, ref.weight.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast.bias.grad, ref.bias.grad, rtol=1e-12, atol=1e-12)
