"""The registry of convolution and pooling algorithms, and the automatic choice among them.

Every convolution algorithm is a pair of functions
    forward(x, w, b, stride, padding) -> (y, cache)
    backward(dy, cache, need_dx=True) -> (dx | None, dW, db | None)
and every pooling algorithm a pair
    forward(x, kernel, stride, padding, mode) -> (y, cache)      mode: "max" | "avg"
    backward(dy, cache) -> dx
with x (N, C, H, W) and pairs of ints for kernel, stride and padding.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

from .. import backend

ENV_CONV = "FASTCNN_CONV_ALGO"
ENV_POOL = "FASTCNN_POOL_ALGO"


@dataclass(frozen=True)
class Algo:
    """One implementation: its name, its two passes, and the backends it runs on."""

    name: str
    forward: Callable
    backward: Callable
    backends: tuple = ("numpy",)
    #: Tried by the automatic choice (naive is the reference, never a contender).
    autotune: bool = True
    #: Raises an error saying why it cannot run here, or returns None.
    check: Callable = field(default=lambda: None)

    def available(self, xp) -> bool:
        if backend.name_of(xp) not in self.backends:
            return False
        try:
            self.check()
        except Exception:
            return False
        return True


CONV: dict[str, Algo] = {}
POOL: dict[str, Algo] = {}
_forced = {"conv": None, "pool": None}
_choices: dict = {}
_deterministic = False
#: The fixed choice of 'auto' in deterministic mode: the first available of these (autotune ones only).
PREFERENCE = ("numba", "cuda", "im2col", "vectorised", "einsum", "naive")


def set_deterministic(flag: bool) -> None:
    """Deterministic mode: 'auto' takes a fixed choice instead of timing the candidates (whose
    winner, and so the rounding of every sum, can change from run to run, as with
    cudnn.benchmark). Same seed, same machine -> the same history, bit for bit."""
    global _deterministic
    _deterministic = bool(flag)


def deterministic() -> bool:
    return _deterministic


def register(table: dict, algo: Algo) -> Algo:
    table[algo.name] = algo
    return algo


def force(kind: str, name: str | None) -> str | None:
    """Force one algorithm for every layer of ``kind`` ('conv' or 'pool'); None or 'auto' restores
    the automatic choice. Returns the previously forced name, so a caller can restore it."""
    table = CONV if kind == "conv" else POOL
    if name not in (None, "auto") and name not in table:
        raise ValueError(f"unknown {kind} algorithm {name!r}: choose auto or one of {', '.join(table)}")
    previous = _forced[kind]
    _forced[kind] = None if name == "auto" else name
    return previous


def forced(kind: str) -> str | None:
    """The forced name: set by ``force`` (the --conv-algo flag) or the environment variable."""
    env = os.environ.get(ENV_CONV if kind == "conv" else ENV_POOL)
    name = _forced[kind] or (env if env and env != "auto" else None)
    if name is not None and name not in (CONV if kind == "conv" else POOL):
        raise ValueError(f"unknown {kind} algorithm {name!r} (from ${ENV_CONV if kind == 'conv' else ENV_POOL} "
                         f"or --{kind}-algo): choose auto or one of {', '.join(CONV if kind == 'conv' else POOL)}")
    return name


def resolve(kind: str, requested: str, xp, key: tuple, trial: Callable) -> Algo:
    """The algorithm to use: the layer's own request, else the forced one, else the fastest.

    ``trial(algo)`` runs one forward+backward on the real input; 'auto' times each
    available candidate once per ``key`` (backend, shapes, dtype, geometry) — a warm-up
    run (Numba compilation included) and the median of three — and remembers the winner.
    """
    table = CONV if kind == "conv" else POOL
    name = requested if requested != "auto" else forced(kind)
    if name is not None:
        algo = table[name]
        if not algo.available(xp):
            algo.check()  # raises with the reason when there is one
            raise ValueError(f"{kind} algorithm {name!r} does not run on backend {backend.name_of(xp)}")
        return algo
    if _deterministic:
        return next(table[n] for n in PREFERENCE if n in table and table[n].autotune and table[n].available(xp))
    full_key = (kind, backend.name_of(xp)) + key
    if full_key not in _choices:
        best, best_t = None, float("inf")
        for algo in table.values():
            if not (algo.autotune and algo.available(xp)):
                continue
            trial(algo)
            times = []
            for _ in range(3):
                backend.synchronize(xp)
                t0 = time.perf_counter()
                trial(algo)
                backend.synchronize(xp)
                times.append(time.perf_counter() - t0)
            t = statistics.median(times)
            if t < best_t:
                best, best_t = algo, t
        _choices[full_key] = best
    return _choices[full_key]


def clear_choices() -> None:
    """Forget the automatic choices (they are re-timed on next use)."""
    _choices.clear()
