"""The 'cuda' algorithms on machines that cannot run them: importing is free, check() says why.

Runs everywhere. The import test runs in a subprocess with CuPy made unimportable, so it
means the same on a machine that has CuPy and a GPU.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from fastcnn import backend
from fastcnn.conv import cuda_conv
from fastcnn.pool import cuda_pool

NO_CUPY = """
import sys
sys.modules["cupy"] = None  # `import cupy` now raises ImportError, as where CuPy is not installed
from fastcnn import backend
from fastcnn.conv import cuda_conv
from fastcnn.pool import cuda_pool
for check in (cuda_conv.check, cuda_pool.check):
    try:
        check()
    except backend.BackendError as e:
        assert "CuPy" in str(e) and "pip install" in str(e), e
    else:
        raise AssertionError("check() passed without CuPy")
print("ok")
"""


def test_import_needs_no_cupy_and_check_says_why():
    r = subprocess.run([sys.executable, "-c", NO_CUPY], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


def test_check_agrees_with_the_backend():
    """check() passes exactly where the cupy backend (and Numba's CUDA target) is usable."""
    try:
        backend.get("cupy")
    except backend.BackendError as e:
        for check in (cuda_conv.check, cuda_pool.check):
            with pytest.raises(backend.BackendError, match="CuPy"):
                check()
    else:
        pytest.skip("CuPy and a device are present: test_cupy_device.py covers this machine")
