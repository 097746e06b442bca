"""Array backends: NumPy on the CPU, CuPy on NVIDIA GPUs.

A layer never imports numpy for its arithmetic: it asks its input which module
it belongs to (``xp = array_module(x)``) and computes with that. Everything
where numpy and cupy differ lives here, once.
"""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np

NAMES = ("numpy", "cupy", "auto")
#: When set to 1 (read here, never written), 'cupy' is fastcnn.testing.fake_cupy, a strict NumPy
#: stand-in, so the GPU path runs on machines without a GPU (tests, CI).
FAKE_ENV = "FASTCNN_FAKE_CUPY"
_FAKE_MODULE = "fastcnn.testing.fake_cupy"
_auto_warned = False
_fake_announced = False


class BackendError(RuntimeError):
    """The requested backend cannot be used on this machine."""


def _fake_cupy():
    """The stand-in module, announced once per process (one line on stderr)."""
    global _fake_announced
    from .testing import fake_cupy

    if not _fake_announced:
        print(fake_cupy.BANNER, file=sys.stderr)
        _fake_announced = True
    return fake_cupy


def _import_cupy():
    """Return the cupy module with a usable device, or raise BackendError saying why."""
    if os.environ.get(FAKE_ENV) == "1":
        return _fake_cupy()
    try:
        import cupy  # noqa: F401  (optional dependency)
    except ImportError as e:
        raise BackendError(
            "backend 'cupy' needs CuPy, which is not installed: run  pip install 'fastcnn[gpu]'  (CUDA 12; "
            "'fastcnn[gpu-cuda13]' when nvidia-smi shows CUDA 13), or use --backend numpy"
        ) from e
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # driver missing / too old / no device node
        raise BackendError(
            f"CuPy is installed but no CUDA device is usable ({e}); check the NVIDIA driver "
            "(nvidia-smi) or use --backend numpy"
        ) from e
    if n < 1:
        raise BackendError("CuPy is installed but it sees no CUDA device; use --backend numpy")
    return cupy


def get(name: str = "numpy"):
    """The array module for ``name`` ('numpy', 'cupy' or 'auto').

    'auto' picks cupy when a CUDA device is usable and numpy otherwise, saying so once.
    """
    global _auto_warned
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(NAMES)}")
    if name == "numpy":
        return np
    if name == "cupy":
        return _import_cupy()
    try:
        return _import_cupy()
    except BackendError as e:
        if not _auto_warned:
            warnings.warn(f"backend 'auto' falls back to numpy: {e}", stacklevel=2)
            _auto_warned = True
        return np


def name_of(xp) -> str:
    """'numpy' or 'cupy' for an array module."""
    return "numpy" if xp is np else "cupy"


def array_module(x):
    """The module (numpy or cupy) that array ``x`` belongs to."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np
    mod = type(x).__module__
    if mod.split(".")[0] == "cupy":
        import cupy

        return cupy
    if mod == _FAKE_MODULE:
        return sys.modules[_FAKE_MODULE]
    return np


def to_device(x, xp):
    """Copy a host array to ``xp``'s device (no copy when already there)."""
    if xp is np:
        return as_numpy(x)
    return xp.asarray(x)


def as_numpy(x):
    """A numpy array for ``x``, wherever it lives."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def synchronize(xp) -> None:
    """Wait for the device to finish queued work (a no-op on numpy)."""
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()


def scatter_add(xp, a, indices, values) -> None:
    """``a[indices] += values`` with repeated indices accumulated (numpy/cupy differ)."""
    if xp is np:
        np.add.at(a, indices, values)
    else:
        cupyx = xp.cupyx if xp.__name__ == _FAKE_MODULE else __import__("cupyx")
        cupyx.scatter_add(a, indices, values)


def as_strided(xp, x, shape, strides):
    """A strided view of ``x`` (numpy.lib.stride_tricks vs cupy.lib.stride_tricks)."""
    if xp is np:
        return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)
    return xp.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)
