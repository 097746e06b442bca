"""One knob for the CPU threads of BLAS and Numba, so that they never oversubscribe the cores."""
from __future__ import annotations

import os

_limits = None


def set_threads(n: int | None) -> int:
    """Use ``n`` threads for BLAS (via threadpoolctl) and for Numba's parallel kernels.

    None means all cores. The two never run at the same time (a step calls one, then
    the other), so giving each the same ``n`` keeps the machine at ``n`` busy threads.
    Returns the number in force.
    """
    global _limits
    import numba
    from threadpoolctl import threadpool_limits

    cores = os.cpu_count() or 1
    if n is None:
        n = cores
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    n = min(n, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    _limits = threadpool_limits(limits=n, user_api="blas")
    return n
