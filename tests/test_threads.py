"""The thread knobs: set_threads sets Numba and BLAS together; the restart sets OpenBLAS's env once."""
import os
import subprocess
import sys

import numba
import pytest
from threadpoolctl import threadpool_info

from fastcnn import threads


def test_set_threads_sets_numba_and_blas():
    try:
        assert threads.set_threads(1) == 1
        assert numba.get_num_threads() == 1
        assert threads.blas_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    finally:
        threads.set_threads(None)


def test_bad_thread_count():
    with pytest.raises(ValueError, match="positive integer"):
        threads.set_threads(0)


def test_command_restarts_once_with_the_openblas_timeout():
    env = {k: v for k, v in os.environ.items() if k not in threads.BLAS_ENV and k != "FASTCNN_NO_REEXEC"}
    code = ("import os, sys; from fastcnn.threads import reexec_with_env; "
            "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), flush=True); "
            "reexec_with_env(sys.orig_argv[1:])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "4"]  # first run: unset; after the restart: set, no second restart
