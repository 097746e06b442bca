"""One knob for the CPU threads of BLAS and Numba, so that they never oversubscribe the cores."""
from __future__ import annotations

import os

_blas = None  # the BLAS thread count last set here (None: the library's own default)
_limits = None


def set_threads(n: int | None) -> int:
    """Use ``n`` threads for BLAS (via threadpoolctl) and for Numba's parallel kernels.

    None means all cores. The two never run at the same time (a step calls one, then
    the other), so giving each the same ``n`` keeps the machine at ``n`` busy threads.
    Returns the number in force.
    """
    import numba

    cores = os.cpu_count() or 1
    if n is None:
        n = cores
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    set_blas_threads(n)
    return n


def set_blas_threads(n: int) -> None:
    """Limit BLAS to ``n`` threads from now on (process-wide)."""
    global _blas, _limits
    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(limits=n, user_api="blas")
    _blas = n


def blas_threads():
    """The BLAS thread count set through this module, or None."""
    return _blas


def numba_threads() -> int:
    import numba

    return numba.get_num_threads()
