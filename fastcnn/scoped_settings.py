"""fastcnn's settings, changed only inside a scope that puts them back (like Chainer's
``using_config`` or tinygrad's ``Context``)::

    with fastcnn.settings(threads=2, conv_algo="im2col", deterministic=True):
        ...  # everything fastcnn computes here uses these

| name          | default | meaning |
|---------------|---------|---------|
| threads       | None    | CPU threads for Numba's kernels and BLAS (None: Numba's default, all cores) |
| conv_algo     | None    | force one convolution algorithm for every Conv2D ("auto"/None: choose) |
| pool_algo     | None    | the same for pooling |
| deterministic | False   | no timing-based choices: the same seed gives the same history, bit for bit |
| tuning_cache  | True    | keep timing-based choices in a file per machine (False: off; a path: that folder) |

The values live in a context variable, so a thread (a Dask worker running two trials, say)
sees its own scope. On exit everything is restored, also when the block raises: Numba's
thread count, the BLAS thread limit, the forced algorithms and the deterministic flag.
``FASTCNN_CONV_ALGO`` / ``FASTCNN_POOL_ALGO`` are read (never written) as the default of
``conv_algo`` / ``pool_algo``.
"""
from __future__ import annotations

import contextvars
import os
from contextlib import contextmanager

DEFAULTS = {"threads": None, "conv_algo": None, "pool_algo": None, "deterministic": False,
            "tuning_cache": True}
ENV = {"conv_algo": "FASTCNN_CONV_ALGO", "pool_algo": "FASTCNN_POOL_ALGO"}

#: name -> function raising ValueError for a bad value; filled by the modules that own the
#: values (fastcnn.registry checks algorithm names), so this module imports none of them.
VALIDATORS: dict = {}

_current: contextvars.ContextVar[dict] = contextvars.ContextVar("fastcnn_settings", default=DEFAULTS)


def get(name: str):
    """The value of setting ``name`` in force here (a scope's value, else the default)."""
    value = _current.get()[name]
    if value is None and name in ENV:
        env = os.environ.get(ENV[name])
        value = env if env and env != "auto" else None
    return value


def current() -> dict:
    """A copy of every setting in force here."""
    return {k: get(k) for k in DEFAULTS}


def _check(changes: dict) -> dict:
    unknown = set(changes) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown fastcnn setting(s) {sorted(unknown)}: known ones are {sorted(DEFAULTS)}")
    out = dict(changes)
    n = out.get("threads")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be a positive integer or None, got {n!r}")
    for name in ("conv_algo", "pool_algo"):
        if out.get(name) == "auto":
            out[name] = None
        elif out.get(name) is not None and name in VALIDATORS:
            VALIDATORS[name](out[name])
    if "deterministic" in out:
        out["deterministic"] = bool(out["deterministic"])
    return out


@contextmanager
def settings(**changes):
    """Change fastcnn's settings inside a ``with`` block; see the module's table. Unknown names
    or bad values are a ValueError before anything changes."""
    changes = _check(changes)
    token = _current.set({**_current.get(), **changes})
    restore = []
    try:
        n = changes.get("threads")
        if n is not None:
            restore.append(_apply_threads(n))
        yield current()
    finally:
        for undo in reversed(restore):
            undo()
        _current.reset(token)


def _apply_threads(n: int):
    """Numba's thread count (per calling thread) and the BLAS limit (process-wide), with an undo."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    limits = threadpool_limits(limits=n, user_api="blas")

    def undo():
        limits.restore_original_limits()
        numba.set_num_threads(before)
    return undo
