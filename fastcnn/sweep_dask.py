"""Sweep trials on a Dask distributed cluster (the optional extra ``pip install 'fastcnn[dask]'``).

    with dask_pool("tcp://host:8786") as pool:     # or "local": a LocalCluster on this machine
        fut = pool.executor.submit(fn, job)         # a concurrent.futures.Executor
        pool.lost_reason()                          # None, or why the pending trials cannot finish

The executor is ``Client.get_executor(pure=False)``: with Dask's default ``pure=True``
two trials with the same settings would be merged into one task. A worker that dies
mid-trial has its task rescheduled on another worker by the scheduler (up to
``distributed.scheduler.allowed-failures`` times, then the future raises KilledWorker);
when no worker is connected for ``lost_after`` seconds, ``lost_reason`` says so and the
sweep records its pending trials as lost instead of waiting for ever.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from urllib.parse import urlparse

INSTALL = "pip install 'fastcnn[dask]' (or: pip install 'dask[distributed]')"


def require():
    """The ``distributed`` module, or a ValueError that says what to install."""
    try:
        import distributed
    except ImportError:
        raise ValueError(f"sweep: --scheduler runs trials on Dask, which is not installed: {INSTALL}") from None
    return distributed


def check_address(scheduler: str) -> str:
    """``tcp://HOST:PORT`` (or tls://, ucx://, inproc://) or ``local``; anything else is a ValueError."""
    if scheduler == "local":
        return scheduler
    u = urlparse(scheduler)
    if u.scheme not in ("tcp", "tls", "ucx", "inproc") or not u.hostname or (u.scheme != "inproc" and not u.port):
        raise ValueError(f"sweep: --scheduler {scheduler!r} is not a Dask scheduler address: give "
                         "tcp://HOST:PORT (what `dask scheduler` prints, port 8786 by default) or 'local'")
    return scheduler


def worker_address():
    """The address of the Dask worker running this code, or None outside a Dask worker."""
    import sys

    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:
        return None


def host_of(address: str) -> str:
    return urlparse(address).hostname or address


class DaskPool:
    """A connected Client, its executor and the watch on its workers."""

    def __init__(self, client, lost_after: float):
        self.client = client
        self.executor = client.get_executor(pure=False)
        self.lost_after = lost_after
        self._seen = time.monotonic()

    def dashboard(self) -> str:
        """The dashboard's address, or what it needs (Dask serves it only with bokeh installed)."""
        import importlib.util

        if importlib.util.find_spec("bokeh") is None:
            return "needs bokeh (pip install 'dask[diagnostics]')"
        return self.client.dashboard_link

    def slots_per_host(self) -> dict:
        """{host: trials that run at once on that machine} (the sum of its workers' threads)."""
        slots: dict = {}
        for addr, n in self.client.nthreads().items():
            h = host_of(addr)
            slots[h] = slots.get(h, 0) + n
        return slots

    def lost_reason(self):
        """None while some worker is connected (or was, less than ``lost_after`` s ago); else why not."""
        try:
            n = len(self.client.nthreads())
        except Exception as e:  # the scheduler went away
            n, why = 0, f"lost contact with the scheduler ({type(e).__name__}: {e})"
        else:
            why = "no Dask worker connected to the scheduler"
        if n:
            self._seen = time.monotonic()
            return None
        if time.monotonic() - self._seen >= self.lost_after:
            return f"{why} for {self.lost_after:g} s"
        return None


@contextmanager
def dask_pool(scheduler: str, workers: int = 1, lost_after: float = 120.0, connect_timeout: float = 10.0):
    """A DaskPool on the scheduler at ``scheduler``, or on a new LocalCluster of ``workers``
    single-threaded worker processes when ``scheduler`` is "local"; closed on exit."""
    check_address(scheduler)
    distributed = require()
    cluster = None
    if scheduler == "local":
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           host="127.0.0.1")
    try:
        try:
            client = distributed.Client(cluster if cluster is not None else scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as e:
            raise ValueError(f"sweep: cannot reach the Dask scheduler at {scheduler} ({e}): start it with "
                             "`dask scheduler` on that machine and check the host and port") from None
        try:
            yield DaskPool(client, lost_after)
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
