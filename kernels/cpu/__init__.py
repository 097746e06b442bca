"""Numba CPU kernels: direct and im2col convolution, pooling, layouts.

Every kernel is compiled on first use for the dtypes it meets (lazily: a run compiles only
what it calls) and cached next to its source (``__pycache__``), so later runs load it; the cache
is stamped with every source file of this folder (``cache_stamp.py``), since kernels inline
each other's functions.
``on_first_compile(callback)`` lets a caller say so when a run does compile. Numba indexes
without bounds checks, so each kernel's Python entry point checks its arguments first
(``checks.py``: ranks, shapes, dtypes, window geometry; a ValueError naming the kernel). The parallel
kernels are serial *share* functions (one thread's part) run on Numba's thread pool by
``launch.Shares``, which compiles each body once (a ``prange`` body is compiled twice) and runs each
kernel on all threads or on one, whichever its timing says is faster (``launch.Pace``). fastcnn calls
these kernels inside ``fastcnn.threads.compute()`` (BLAS on one thread, so OpenBLAS's
workers never spin against Numba's).
"""
from __future__ import annotations

import contextlib

from . import cache_stamp

cache_stamp.install()  # before any kernel module defines its functions: see cache_stamp.py


@contextlib.contextmanager
def on_first_compile(callback):
    """Within the block, call ``callback(name)`` once, when Numba starts compiling a function
    (a kernel without a cache for these types yet), with that function's name; nothing when
    every kernel the block calls loads from the cache. Uses Numba's event API
    (numba.core.event); where that is missing the block runs without the callback."""
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - an older or newer Numba without the event API
        yield
        return
    seen = []

    class Listener(event.Listener):
        def on_start(self, ev):
            if not seen:
                seen.append(True)
                callback(getattr(ev.data.get("dispatcher"), "__name__", "?"))

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", Listener()):
        yield
