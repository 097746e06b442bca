"""The thread policy around fastcnn's own compute: BLAS on one thread, Numba on all of them.

A training step alternates Numba's parallel kernels (the convolutions) with small BLAS calls
(Linear layers, the gemm variant). OpenBLAS's idle workers spin for about 2**28 cycles after a
multi-threaded call — a tenth of a second — on the very cores Numba's threads need next, and
OpenBLAS reads its spin time only from the environment it started with. Instead of restarting
the process with another environment, fastcnn runs its own compute with BLAS on the calling
thread only: no BLAS worker ever wakes, so none spins. The small GEMMs of these networks lose
little (a 128×256 @ 256×120 product is ≈ 0.05 ms on one core), and Numba's kernels keep every core.

``compute()`` is that scope: re-entrant and cheap (two ctypes calls on entry and on exit of
the outermost scope), process-wide while it runs (a BLAS limit cannot be per thread), and the
previous limit is put back when the outermost scope exits. Sequential's forward and backward
use it, so a plain training loop gets it without asking.
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_depth = 0
_saved: list = []
_blas = None  # the BLAS libraries' threadpoolctl controllers, found once


def _blas_libs() -> list:
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = list(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _blas


class _Compute:
    """BLAS limited to one thread while fastcnn computes; see the module docstring."""

    __slots__ = ()

    def __enter__(self):
        global _depth
        with _lock:
            if _depth == 0:
                _saved.clear()
                for lib in _blas_libs():
                    n = lib.num_threads
                    _saved.append(n)
                    if n != COMPUTE_BLAS_THREADS:
                        lib.set_num_threads(COMPUTE_BLAS_THREADS)
            _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, n in zip(_blas_libs(), _saved):
                    if n != COMPUTE_BLAS_THREADS:
                        lib.set_num_threads(n)
        return False


#: BLAS threads inside ``compute()``.
COMPUTE_BLAS_THREADS = 1
_COMPUTE = _Compute()


def compute() -> _Compute:
    """The scope fastcnn's CPU compute runs in: ``with threads.compute(): ...``."""
    return _COMPUTE


def numba_threads() -> int:
    """Numba's thread count in force for the calling thread."""
    import numba

    return numba.get_num_threads()
