"""Test-wide set-up: fastcnn's tuning cache goes to a temporary folder, never the user's."""
import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _tuning_cache_in_tmp(tmp_path_factory):
    before = os.environ.get("FASTCNN_CACHE_DIR")
    os.environ["FASTCNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("fastcnn-cache"))
    yield
    if before is None:
        os.environ.pop("FASTCNN_CACHE_DIR", None)
    else:
        os.environ["FASTCNN_CACHE_DIR"] = before


def _small_npz(path, n_train=1000, n_test=300):
    """A Keras-style mnist.npz holding the first images of the bundled MNIST; returns its path."""
    import numpy as np

    from fastcnn.data import load_mnist

    ds = load_mnist()
    np.savez(path, x_train=ds.x_train[:n_train], y_train=ds.y_train[:n_train],
             x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test])
    return path


@pytest.fixture(scope="session")
def small_npz():
    """``small_npz(path, n_train, n_test)``: write a small mnist.npz (see _small_npz)."""
    return _small_npz
