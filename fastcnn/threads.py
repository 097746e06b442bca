"""One knob for the CPU threads of BLAS and Numba, so that they never oversubscribe the cores."""
from __future__ import annotations

import os
import sys

#: OpenBLAS's idle worker threads spin for about 2**N cycles before sleeping. Its default (N≈28)
#: keeps them spinning through a whole training step, on the cores Numba's threads need;
#: N=4 lets them sleep at once. OpenBLAS reads this only from the environment the process
#: started with (setting it later from Python had no effect), hence ``reexec_with_env``.
BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}

_blas = None  # the BLAS thread count last set here (None: the library's own default)
_limits = None


THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def set_thread_env(n) -> None:
    """Put ``n`` in every thread-count variable, for pools that start later (call before numpy,
    numba or torch are imported: each pool reads its variable once, at start). No-op for None."""
    if n:
        for var in THREAD_ENV:
            os.environ[var] = str(n)


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


def reexec_with_env(argv: list) -> None:
    """Restart this process as ``python argv...`` with ``BLAS_ENV`` in its environment, unless
    those variables are already set (by the user, or by an earlier restart). Interleaved runs
    of a LeNet-5 step on the 2-core machine: ≈ 9.5 ms without, ≈ 5.9 ms with. Set
    FASTCNN_NO_REEXEC=1 to keep the process as it is."""
    if os.environ.get("FASTCNN_NO_REEXEC") or all(k in os.environ for k in BLAS_ENV) or not sys.executable:
        return
    for k, v in BLAS_ENV.items():
        os.environ.setdefault(k, v)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable] + list(argv))
