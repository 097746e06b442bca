"""Timing-based choices (which convolution algorithm, which Numba variant), made once per
machine and kept in one cache, as cudnn.benchmark does per process — but kept on disk, so the
second run on a machine makes the same choices without timing anything (and is reproducible).

A choice is keyed by what decides it: the kind of choice, the shapes, the dtype, the geometry,
the thread counts. The file is JSON::

    {"version": 1, "machine": {...fingerprint...}, "choices": {"<key>": "<name>", ...}}

in ``$FASTCNN_CACHE_DIR`` or else ``$XDG_CACHE_HOME/fastcnn`` or ``~/.cache/fastcnn``
(``tuning.json``), written atomically. ``fastcnn.settings(tuning_cache=False)`` or
``FASTCNN_TUNING_CACHE=off`` keeps choices in memory only; ``tuning_cache="some/dir"`` moves
the file. A file from another machine (CPU, core count, Numba/NumPy/fastcnn version) is
ignored and rewritten; an unreadable one is a warning, then rebuilt — never a crash.
Deterministic mode (``settings(deterministic=True)``) makes no timing-based choice at all.
"""
from __future__ import annotations

import json
import os
import platform
import threading
import warnings
from pathlib import Path

from . import scoped_settings, timing

VERSION = 1
FILENAME = "tuning.json"
ENV_DIR = "FASTCNN_CACHE_DIR"
ENV_SWITCH = "FASTCNN_TUNING_CACHE"

_memory: dict = {}  # (kind, *key) -> name, this process
_loaded: dict = {}  # cache path -> choices read from it
_lock = threading.Lock()


def key_string(kind: str, key: tuple) -> str:
    return kind + ":" + repr(tuple(key))


def machine() -> dict:
    """What makes a timing valid: the CPU, its core count and the versions of what computes."""
    import numba
    import numpy

    from . import __version__

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(), "numba": numba.__version__,
            "numpy": numpy.__version__, "fastcnn": __version__}


def cache_path() -> Path | None:
    """The cache file in force, or None when the cache is off."""
    setting = scoped_settings.get("tuning_cache")
    if setting is False or os.environ.get(ENV_SWITCH, "").lower() in ("0", "off", "false", "no"):
        return None
    if isinstance(setting, (str, os.PathLike)):
        return Path(setting) / FILENAME
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]) / FILENAME
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fastcnn" / FILENAME


def _read(path: Path) -> dict:
    """The choices in ``path`` if it was written on this machine; {} otherwise."""
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("choices"), dict):
            raise ValueError("not a fastcnn tuning cache")
    except (OSError, ValueError) as e:
        warnings.warn(f"fastcnn: the tuning cache {path} is unreadable ({e}); it will be rebuilt", stacklevel=4)
        return {}
    if doc.get("version") != VERSION or doc.get("machine") != machine():
        return {}  # another machine or version: time again, then overwrite
    return {str(k): str(v) for k, v in doc["choices"].items()}


def _write(path: Path, choices: dict) -> None:
    from .files import save_json

    try:
        save_json(path, {"version": VERSION, "machine": machine(), "choices": choices})
    except OSError as e:
        warnings.warn(f"fastcnn: cannot write the tuning cache {path} ({e}); choices stay in memory",
                      stacklevel=4)


def lookup(kind: str, key: tuple) -> str | None:
    """A choice made before, in this process or (with the cache on) on this machine."""
    mk = (kind,) + tuple(key)
    name = _memory.get(mk)
    if name is not None:
        return name
    path = cache_path()
    if path is None:
        return None
    with _lock:
        if path not in _loaded:
            _loaded[path] = _read(path)
        name = _loaded[path].get(key_string(kind, key))
    if name is not None:
        _memory[mk] = name
    return name


def record(kind: str, key: tuple, name: str) -> None:
    """Remember a choice in this process and, with the cache on, in the file (atomically)."""
    k = key_string(kind, key)
    _memory[(kind,) + tuple(key)] = name
    path = cache_path()
    if path is None:
        return
    with _lock:
        choices = _read(path)  # what other processes wrote meanwhile
        choices[k] = name
        _loaded[path] = choices
        _write(path, choices)


def choose(kind: str, key: tuple, trials: dict, fixed: str, xp=None) -> str:
    """The name of the fastest of ``trials`` (name -> callable running the work once) for ``key``.

    Deterministic mode returns ``fixed`` without timing. Otherwise a choice made before is
    reused; else each trial runs once (compilation, first allocations), then three times under
    the clock, alternating so that a slow spell of a shared machine hits every candidate; the
    best median wins and is recorded. Clock readings wait for ``xp``'s device (fastcnn.timing).
    """
    if scoped_settings.get("deterministic"):
        return fixed
    name = lookup(kind, key)
    if name is not None and name in trials:
        return name
    if len(trials) == 1:
        return next(iter(trials))
    for run in trials.values():
        run()
    times: dict = {n: [] for n in trials}
    for r in range(3):
        for n in (list(trials) if r % 2 == 0 else list(trials)[::-1]):
            times[n].append(timing.seconds(trials[n], xp=xp)[1])
    best = min(trials, key=lambda n: timing.median(times[n]))
    record(kind, key, best)
    return best


def clear(persisted: bool = False) -> None:
    """Forget every choice of this process (and, with ``persisted``, delete the cache file)."""
    _memory.clear()
    _loaded.clear()
    if persisted:
        path = cache_path()
        if path is not None and path.exists():
            path.unlink()
