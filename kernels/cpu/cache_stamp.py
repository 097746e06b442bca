"""Numba's on-disk cache of these kernels, invalidated when ANY of their source files changes.

Numba keys a function's cache on its own source file only (a hash of it). The kernels here
inline functions from other files of this folder (``conv.py`` compiles ``unroll.py``'s copies
and ``pool.py``'s pooling into its shares), so an edit of ``unroll.py`` alone left ``conv.py``'s
cached shares running the old code — found in session 7, when a fixed ``unroll_rows`` still
gave the old (wrong) results from the cache. ``install()`` puts three cache locators in front of
Numba's own, for the functions defined in this folder only: the same places on disk as Numba's
(``NUMBA_CACHE_DIR``, ``__pycache__``, or the user-wide cache folder of a read-only install), with
a stamp that hashes every ``.py`` file here. Other code's caching is untouched. Numba internal
this relies on: ``CacheImpl._locator_classes`` and the locators' ``get_source_stamp``
(tests/conv/test_cache_stamp.py fails first if they change).
"""
from __future__ import annotations

import functools
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def _sources(folder: str) -> tuple:
    """(name, mtime, size) of every .py file in ``folder``: what the stamp is memoised on."""
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            st = os.stat(os.path.join(folder, name))
            out.append((name, st.st_mtime_ns, st.st_size))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _digest(folder: str, sources: tuple) -> bytes:
    h = hashlib.sha256()
    for name, _, _ in sources:
        h.update(name.encode())
        with open(os.path.join(folder, name), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.digest()


def stamp(folder: str = HERE) -> bytes:
    """The SHA-256 over the names and contents of the .py files in ``folder`` (this one)."""
    return _digest(folder, _sources(folder))


def _ours(py_file) -> bool:
    try:
        return os.path.dirname(os.path.abspath(py_file)) == HERE
    except (TypeError, ValueError):
        return False


def _locator(base):
    class Locator(base):
        """``base`` for this folder's functions, stamped with every source file here."""

        def get_source_stamp(self):
            return stamp()

        @classmethod
        def from_function(cls, py_func, py_file):
            return super().from_function(py_func, py_file) if _ours(py_file) else None

    Locator.__name__ = Locator.__qualname__ = f"Kernels{base.__name__}"
    return Locator


def install() -> None:
    """Put the folder-stamped locators first in Numba's list (once)."""
    try:
        from numba.core import caching
        impl = caching.CacheImpl
        bases = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)
    except (ImportError, AttributeError):  # pragma: no cover - a Numba without them: its own stamps
        return
    if any(getattr(c, "_fastcnn_kernels", False) for c in impl._locator_classes):
        return
    ours = [_locator(b) for b in bases]
    for c in ours:
        c._fastcnn_kernels = True
    impl._locator_classes = ours + list(impl._locator_classes)
