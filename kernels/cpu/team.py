"""A small team of Python threads that runs the shares of one kernel call side by side.

``run(nt, fn, args)`` calls ``fn(*args, t, nt)`` for t = 0 … nt−1: share 0 on the calling
thread, the others on worker threads, and returns when all have finished (an exception in
any share is raised in the caller). ``fn`` is a Numba kernel compiled with ``nogil=True``,
so the shares run in parallel on as many cores.

Why not ``prange``: a parallel Numba kernel compiles two to three times slower than the
same code serial (the parfor passes and the outlined gufunc: LeNet-5's fused forward and
backward took ≈ 8.6 s + 12.5 s on a cold cache, serial ≈ 5 s each) and a first run pays it.
Splitting the work is the kernel's own business anyway (thread t owns groups t, t + nt, …).

The workers start on first use, wait on a lock between calls (no spinning), are daemon
threads (they never keep the interpreter alive), and are shared by the whole process. A call
made while another thread's call holds the team runs its shares one after the other on its
own thread: correct, never blocked, just not parallel.
"""
from __future__ import annotations

import threading


class _Worker:
    """One thread that runs ``fn(*args, t, nt)`` each time it is started."""

    def __init__(self):
        self._go = threading.Lock()
        self._done = threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._job = None
        self._error = None
        threading.Thread(target=self._loop, name="fastcnn-kernel", daemon=True).start()

    def _loop(self):
        while True:
            self._go.acquire()
            fn, args = self._job
            self._job = None
            try:
                fn(*args)
            except BaseException as e:  # handed to the caller by wait()
                self._error = e
            self._done.release()

    def start(self, fn, args):
        self._job = (fn, args)
        self._go.release()

    def wait(self):
        self._done.acquire()
        e, self._error = self._error, None
        if e is not None:
            raise e


_workers: list = []
_busy = threading.Lock()


def run(nt: int, fn, args: tuple) -> None:
    """``fn(*args, t, nt)`` for every t in range(nt), in parallel; returns when all are done."""
    if nt <= 1 or not _busy.acquire(blocking=False):
        for t in range(max(nt, 1)):
            fn(*args, t, max(nt, 1))
        return
    try:
        while len(_workers) < nt - 1:
            _workers.append(_Worker())
        team = _workers[:nt - 1]
        for t, w in enumerate(team, start=1):
            w.start(fn, args + (t, nt))
        error = None
        try:
            fn(*args, 0, nt)
        except BaseException as e:
            error = e
        for w in team:  # always collect every share before returning or raising
            try:
                w.wait()
            except BaseException as e:
                error = error or e
        if error is not None:
            raise error
    finally:
        _busy.release()
