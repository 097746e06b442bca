"""What crashed or misled on real CuPy (issue 20), each reproduced on the stand-in, which now behaves
as CuPy does where it matters (``.data`` is a memory pointer, no ``put_along_axis``, ...)."""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn import backend, nn
from fastcnn.conv import cuda_conv
from fastcnn.testing import fake_cupy


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("FASTCNN_FAKE_CUPY", "1")
    monkeypatch.setattr(cuda_conv, "_reason", [])
    return backend.get("cupy")


def _bn_model():
    return nn.Sequential(nn.Conv2D(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 6 * 6, 4), seed=0, input_shape=(1, 6, 6))


def test_load_state_dict_with_batch_norm_buffers_on_the_device(fake):
    """A CuPy array's ``.data`` is its memory pointer: buffers must not be taken for Parameters."""
    src = _bn_model()
    src.layers[1].running_mean[...] = np.arange(3, dtype=np.float32)
    src.layers[1].running_var[...] = 2.0
    state = src.state_dict()
    model = _bn_model().to(fake)
    assert isinstance(model.layers[1].running_mean, fake.ndarray) and hasattr(model.layers[1].running_mean, "data")
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.layers[1].running_mean.get(), [0, 1, 2])
    np.testing.assert_array_equal(model.layers[1].running_var.get(), [2, 2, 2])
    np.testing.assert_array_equal(model.layers[0].weight.data.get(), src.layers[0].weight.data)
    back = model.state_dict()
    for k, v in state.items():
        np.testing.assert_array_equal(back[k], v, err_msg=k)


def test_naive_max_pool_backward_on_the_device_matches_numpy(fake):
    """pool/naive.py used put_along_axis (CuPy 14 only); now a one-hot both have."""
    from fastcnn.pool import naive

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    dy = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    y, cache = naive.forward(x, (2, 2), (2, 2), (0, 0), "max")
    dx = naive.backward(dy, cache)
    yd, cached = naive.forward(fake.asarray(x), (2, 2), (2, 2), (0, 0), "max")
    dxd = naive.backward(fake.asarray(dy), cached)
    np.testing.assert_array_equal(yd.get(), y)
    np.testing.assert_array_equal(dxd.get(), dx)


def test_stand_in_has_no_put_along_axis():
    assert not hasattr(fake_cupy, "put_along_axis")
