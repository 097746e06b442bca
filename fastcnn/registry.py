"""The registry of convolution and pooling algorithms, and the automatic choice among them.

fastcnn.conv registers the convolutions in CONV, fastcnn.pool the poolings in POOL.

Every convolution algorithm is a pair of functions
    forward(x, w, b, stride, padding) -> (y, cache)
    backward(dy, cache, need_dx=True) -> (dx | None, dW, db | None)
and every pooling algorithm a pair
    forward(x, kernel, stride, padding, mode) -> (y, cache)      mode: "max" | "avg"
    backward(dy, cache) -> dx
with x (N, C, H, W) and pairs of ints for kernel, stride and padding.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from . import backend, scoped_settings, tuning

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
#: The fixed choice of 'auto' in deterministic mode: the first available of these (autotune ones only).
PREFERENCE = ("numba", "cuda", "im2col", "vectorised", "einsum", "naive")
_SETTING = {"conv": "conv_algo", "pool": "pool_algo"}


def set_deterministic(flag: bool) -> None:
    """Removed: deterministic mode is scoped now. Use ``with fastcnn.settings(deterministic=True):``."""
    raise RuntimeError("registry.set_deterministic changed process-wide state and is gone: use "
                       "`with fastcnn.settings(deterministic=True): ...`")


def deterministic() -> bool:
    """Deterministic mode: 'auto' takes a fixed choice instead of timing the candidates (whose
    winner, and so the rounding of every sum, can change from run to run, as with
    cudnn.benchmark). Same seed, same machine -> the same history, bit for bit.
    Set with ``fastcnn.settings(deterministic=True)``."""
    return bool(scoped_settings.get("deterministic"))


def register(table: dict, algo: Algo) -> Algo:
    table[algo.name] = algo
    return algo


@contextmanager
def registered(table: dict, algo: Algo):
    """A scope in which ``algo`` is in ``table`` (a user's own algorithm, for the benchmarks);
    removed when the scope ends. A name already taken is an error."""
    if algo.name in table:
        raise ValueError(f"an algorithm named {algo.name!r} is already registered: give yours another name")
    table[algo.name] = algo
    try:
        yield algo
    finally:
        table.pop(algo.name, None)


def force(kind: str, name: str | None):
    """A scope forcing one algorithm for every layer of ``kind`` ('conv' or 'pool'); None or
    'auto' restores the automatic choice inside it::

        with registry.force("conv", "im2col"): ...

    (the same as ``fastcnn.settings(conv_algo="im2col")``)."""
    if kind not in _SETTING:
        raise ValueError(f"kind must be 'conv' or 'pool', got {kind!r}")
    return scoped_settings.settings(**{_SETTING[kind]: name})


def forced(kind: str) -> str | None:
    """The forced name: from ``fastcnn.settings(conv_algo=...)`` (the --conv-algo flag) or the
    environment variable FASTCNN_CONV_ALGO / FASTCNN_POOL_ALGO."""
    name = scoped_settings.get(_SETTING[kind])
    table = CONV if kind == "conv" else POOL
    if name is not None and name not in table:
        raise ValueError(f"unknown {kind} algorithm {name!r} (from ${ENV_CONV if kind == 'conv' else ENV_POOL} "
                         f"or --{kind}-algo): choose auto or one of {', '.join(table)}")
    return name


def resolve(kind: str, requested: str, xp, key: tuple, trial: Callable) -> Algo:
    """The algorithm to use: the layer's own request, else the forced one, else the fastest.

    ``trial(algo)`` runs one forward+backward on the real input; 'auto' times each
    available candidate once per ``key`` (backend, shapes, dtype, geometry, threads) through
    ``fastcnn.tuning`` (compile run, then alternating medians of three), which keeps the winner
    per machine. Deterministic mode takes the first available of PREFERENCE, untimed.
    """
    table = CONV if kind == "conv" else POOL
    name = requested if requested != "auto" else forced(kind)
    if name is not None:
        algo = table[name]
        if not algo.available(xp):
            algo.check()  # raises with the reason when there is one
            raise ValueError(f"{kind} algorithm {name!r} does not run on backend {backend.name_of(xp)}")
        return algo
    fixed = next(n for n in PREFERENCE if n in table and table[n].autotune and table[n].available(xp))
    candidates = {a.name: (lambda a=a: trial(a)) for a in table.values() if a.autotune and a.available(xp)}
    if not candidates:
        return table[fixed]
    from .threads import numba_threads
    full_key = (backend.name_of(xp), numba_threads()) + tuple(key)
    return table[tuning.choose(kind + "-algo", full_key, candidates, fixed,
                               xp=xp)]


def _validator(kind):
    def check(name):
        table = CONV if kind == "conv" else POOL
        if name not in table:
            raise ValueError(f"unknown {kind} algorithm {name!r}: choose auto or one of {', '.join(table)}")
    return check


scoped_settings.VALIDATORS.update(conv_algo=_validator("conv"), pool_algo=_validator("pool"))


def clear_choices() -> None:
    """Forget the automatic choices of this process (they are re-timed, or read from the
    machine's tuning cache, on next use)."""
    tuning.clear()
