import importlib.util

import numpy as np
import pytest

from fastcnn import backend


def test_numpy_backend():
    assert backend.get("numpy") is np
    assert backend.array_module(np.ones(2)) is np
    assert backend.name_of(np) == "numpy"


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        backend.get("tpu")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_cupy_missing_says_what_to_install():
    with pytest.raises(backend.BackendError, match=r"pip install 'fastcnn\[gpu\]'"):
        backend.get("cupy")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_auto_falls_back_to_numpy_once(monkeypatch):
    monkeypatch.setattr(backend, "_auto_warned", False)
    with pytest.warns(UserWarning, match="falls back to numpy"):
        assert backend.get("auto") is np
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backend.get("auto") is np  # said once only
