"""Training on the GPU backend (needs CuPy and a CUDA device; marked gpu, skipped otherwise)."""
from __future__ import annotations

import numpy as np
import pytest

from gpu_support import FAKE, cupy, pytestmark  # noqa: F401  (real CuPy, or the stand-in)

from fastcnn.config import TrainConfig  # noqa: E402
from fastcnn.data import Dataset, load_mnist  # noqa: E402
from fastcnn.train import Trainer  # noqa: E402


@pytest.fixture(scope="module")
def small():
    d = load_mnist()
    return Dataset(d.x_train[:2048], d.y_train[:2048], d.x_test[:500], d.y_test[:500])


@pytest.mark.parametrize("model", ["lenet5", "compact"])
def test_loss_curve_matches_numpy(tmp_path, small, model):
    curves = {}
    for be in ("numpy", "cupy"):
        cfg = TrainConfig(model=model, backend=be, epochs=1, batch_size=128, eval_every=4, log_every=4,
                          progress=False, out=str(tmp_path / be), conv_algo="im2col", fuse=False)
        t = Trainer(cfg, data=small)
        t.fit()
        curves[be] = [h["loss"] for h in t.history]
        if be == "cupy":
            assert isinstance(t.model.parameters()[0].data, cupy.ndarray)
            assert isinstance(t.batches.x, cupy.ndarray) and t.batches.x.dtype == np.uint8  # uploaded once
    np.testing.assert_allclose(curves["cupy"], curves["numpy"], rtol=1e-3)


@pytest.mark.slow
def test_full_mnist_reaches_97_percent_on_the_gpu(tmp_path):
    cfg = TrainConfig(backend="cupy", target_acc=0.97, epochs=3, eval_every=50, progress=False,
                      out=str(tmp_path / "run"))
    m = Trainer(cfg).fit()
    assert m["status"] == "target_reached" and m["backend"] == "cupy"
    assert m["peak_device_memory_bytes"] < 1 << 30  # far below a 4 GB card


def _tiny_cnn(conv_algo, pool_algo):
    from fastcnn import nn

    return nn.Sequential(nn.Conv2D(1, 2, 3, padding=1, algo=conv_algo), nn.ReLU(), nn.MaxPool2D(2, algo=pool_algo),
                         nn.Conv2D(2, 3, 3, padding=1, algo=conv_algo), nn.ReLU(), nn.AvgPool2D(2, algo=pool_algo),
                         nn.Flatten(), nn.Linear(3 * 2 * 2, 10), seed=0, input_shape=(1, 8, 8))


def test_cuda_algorithms_train_end_to_end(tmp_path):
    """The Trainer with every convolution and pooling on the 'cuda' algorithms (small 8×8 images, so
    that it also runs under Numba's simulator): the same history as numpy with im2col/vectorised."""
    d = load_mnist()
    crop = (slice(None), slice(2, 26, 3), slice(2, 26, 3))  # 28×28 -> 8×8
    data = Dataset(d.x_train[:16][crop], d.y_train[:16], d.x_test[:8][crop], d.y_test[:8])
    hist = {}
    for be, conv, pool in (("numpy", "im2col", "vectorised"), ("cupy", "cuda", "cuda")):
        cfg = TrainConfig(backend=be, epochs=1, batch_size=8, eval_every=1, log_every=1, progress=False,
                          fuse=False, out=str(tmp_path / be), optimizer="sgd", lr=0.1, schedule="none")
        t = Trainer(cfg, model=_tiny_cnn(conv, pool), data=data)
        m = t.fit()
        hist[be] = t.history
    assert m["backend"] == "cupy" and set(m["conv_algo"].values()) == {"cuda"}
    assert m["peak_device_memory_bytes"] > 0
    for key in ("loss", "test_loss", "test_accuracy"):
        np.testing.assert_allclose([h[key] for h in hist["cupy"]], [h[key] for h in hist["numpy"]], rtol=1e-3)
