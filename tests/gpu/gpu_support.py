"""Where the gpu tests get ``cupy``: real CuPy with a device, or the stand-in under FASTCNN_FAKE_CUPY=1.

With ``FASTCNN_FAKE_CUPY=1`` (and ``NUMBA_ENABLE_CUDASIM=1`` for the 'cuda' algorithms) the
gpu-marked tests run on ``fastcnn.testing.fake_cupy``; tests/gpu/test_fake_cupy.py runs them
that way in a subprocess. Cases too large for Numba's simulator (which runs every GPU thread
as Python) skip there with ``sim_skip``; scripts/gpu_check.sh runs them on a real GPU.
"""
from __future__ import annotations

import os

import pytest

FAKE = os.environ.get("FASTCNN_FAKE_CUPY") == "1"
#: GPU threads (kernel launches' total work) a simulated case may cost: about a second each.
SIM_THREADS = 6000

if FAKE:
    from fastcnn import backend

    cupy = backend.get("cupy")
else:
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install 'fastcnn[gpu]')")


def device_count() -> int:
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no driver, no device node
        return 0


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(device_count() < 1, reason="CuPy is installed but sees no CUDA device"),
]


def sim_skip(algo: str, threads: int) -> None:
    """Skip a 'cuda' case whose kernels would launch more than SIM_THREADS threads under the stand-in."""
    if FAKE and algo == "cuda" and threads > SIM_THREADS:
        pytest.skip(f"{threads} GPU threads: too slow for Numba's CUDA simulator (scripts/gpu_check.sh runs it on a GPU)")
