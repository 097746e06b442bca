"""Mixed dtypes are a clear error naming the layer and both dtypes — never a silent cast."""
import numpy as np
import pytest

from fastcnn import models, nn


@pytest.mark.parametrize("layer,shape", [(lambda: nn.Linear(6, 3), (2, 6)),
                                         (lambda: nn.Conv2D(2, 3, 3), (2, 2, 5, 5)),
                                         (lambda: nn.BatchNorm1d(4), (3, 4))])
def test_float64_input_through_a_float32_layer(layer, shape):
    l = layer()
    with pytest.raises(TypeError, match=rf"{l.name}: the input is float64 but its weight is float32"):
        l.forward(np.zeros(shape, np.float64))


def test_float64_input_through_a_float32_model_names_the_first_layer():
    m = models.build("lenet5")
    with pytest.raises(TypeError, match=r"Conv2D#0: the input is float64 .* float32"):
        m.forward(np.zeros((2, 1, 28, 28)))


def test_data_replaced_by_another_dtype():
    m = models.build("lenet5")
    lin = m.layers[7]
    lin.weight.data = lin.weight.data.astype(np.float64)
    with pytest.raises(TypeError, match=rf"{lin.name}: the input is float32 but its weight is float64"):
        m.forward(np.zeros((2, 1, 28, 28), np.float32))


def test_data_replaced_keeps_grad_dtype_is_an_error():
    lin = nn.Linear(4, 2)
    lin.weight.data = lin.weight.data.astype(np.float64)
    lin.bias.data = lin.bias.data.astype(np.float64)
    with pytest.raises(TypeError, match="gradient buffer is float32"):
        lin.forward(np.zeros((3, 4), np.float64))


def test_fused_layer_checks_too():
    m = models.build("lenet5").to("numpy", np.float64)
    fused = m.plan()[0]
    with pytest.raises(TypeError, match=r"the input is float32 but its weight is float64"):
        fused.forward(np.zeros((2, 1, 28, 28), np.float32))


def test_to_changes_both_and_float64_runs():
    m = models.build("lenet5").to("numpy", np.float64)
    y = m.forward(np.zeros((2, 1, 28, 28)))
    assert y.dtype == np.float64
    assert m.backward(np.ones_like(y)) is None
    assert all(p.grad.dtype == np.float64 for p in m.parameters())
