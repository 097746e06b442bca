"""Numba CPU kernels: direct and im2col convolution, pooling, layouts.

Every kernel is compiled on first use for the dtypes it meets (lazily: a run compiles only
what it calls) and cached next to its source (``__pycache__``), so later runs load it.
``uncached()`` tells which kernels have no cache yet, so a caller can say what the first run
is compiling. The parallel ones run their shares on a small team of threads (team.py; as
many as ``numba.get_num_threads()``). fastcnn calls these kernels inside
``fastcnn.threads.compute()`` (BLAS on one thread, so OpenBLAS's workers never spin against
the kernels' threads).
"""
from __future__ import annotations

import os


def uncached() -> list:
    """Names of the CPU kernels that have no on-disk cache yet (they compile on first call).
    [] when Numba's cache layout is not what this expects (a private API)."""
    from . import conv, im2col, pool

    out = []
    for mod in (conv, im2col, pool):
        for name, obj in vars(mod).items():
            cache = getattr(obj, "_cache", None)
            try:
                index = cache._cache_file._index_path
            except AttributeError:
                continue
            if not os.path.exists(index):
                out.append(f"{mod.__name__.rsplit('.', 1)[-1]}.{name}")
    return out
