"""Argument checks at the entry of every CPU kernel: shapes, dtypes and window geometry.

Numba does no bounds checking, so a kernel given arrays whose shapes disagree (a weight matrix
built for 1 input channel and an input with 3, a gradient of another batch size) would read and
write memory it does not own. The layers check what users pass and name themselves
(fastcnn.nn); these checks are the second line: each kernel's Python entry point verifies that
its arrays are the ranks, sizes and dtypes it was written for before any compiled code runs.
A failure is a ValueError naming the kernel, the argument, what it expects and what it got.
They cost a few tuple comparisons per call (no scan of the data).
"""
from __future__ import annotations

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def fail(kernel: str, what: str):
    raise ValueError(f"kernel {kernel}: {what} (the kernel was called with arrays that do not fit together; "
                     "a layer's own checks should have caught this)")


_INTS = (int, np.integer)


def array(kernel: str, name: str, a, ndim: int, dtype=None) -> None:
    """``a`` is a numpy array of rank ``ndim`` (and of ``dtype``: float32/float64 when "float")."""
    if type(a) is not np.ndarray or a.ndim != ndim:
        if type(a) is not np.ndarray:
            fail(kernel, f"{name} must be a numpy array, got {type(a).__name__}")
        fail(kernel, f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if dtype == "float":
        if a.dtype not in FLOATS:
            fail(kernel, f"{name} must be float32 or float64, got {a.dtype}")
    elif dtype is not None and a.dtype != dtype:
        fail(kernel, f"{name} must be {np.dtype(dtype)}, got {a.dtype}")


def same_dtype(kernel: str, **named) -> None:
    """Every array in ``named`` has the dtype of the first."""
    (n0, a0), *rest = named.items()
    for n, a in rest:
        if a.dtype != a0.dtype:
            fail(kernel, f"{n} is {a.dtype} but {n0} is {a0.dtype}")


def shape(kernel: str, name: str, a, expected: tuple) -> None:
    """``a.shape == expected``."""
    if a.shape != tuple(expected):
        fail(kernel, f"{name} must have shape {tuple(expected)}, got {tuple(a.shape)}")


def positive(kernel: str, **ints) -> None:
    """Every value is an integer ≥ 1."""
    for n, v in ints.items():
        if not isinstance(v, _INTS) or isinstance(v, bool) or v < 1:
            fail(kernel, f"{n} must be an integer ≥ 1, got {v!r}")


def window(kernel: str, axis: str, size: int, k: int, s: int, out: int) -> None:
    """``out`` = ⌊(size − k) / s⌋ + 1 ≥ 1 windows of ``k`` with stride ``s`` over ``size`` (padded) values."""
    if (isinstance(k, _INTS) and isinstance(s, _INTS) and isinstance(out, _INTS) and k >= 1 and s >= 1
            and size >= k and out == (size - k) // s + 1):
        return
    positive(kernel, **{f"k{axis}": k, f"s{axis}": s})
    fail(kernel, f"{out!r} outputs along {axis} do not fit a window of {k} with stride {s} over {size} values "
                 f"(expected {(size - k) // s + 1 if size >= k else 'none: the window is larger than the input'})")


def indices(kernel: str, name: str, a, size: int, lowest: int = 0) -> None:
    """Every entry of the int array ``a`` is in [lowest, size): the positions a backward pass
    writes to (a max-pool's argmax; −1, "no gradient", where ``lowest`` is −1). One scan of an
    int32 array, a few µs: an index from another geometry would write outside the output."""
    if a.size and (int(a.min()) < lowest or int(a.max()) >= size):
        fail(kernel, f"{name} holds positions outside [{lowest}, {size}) (min {int(a.min())}, max {int(a.max())}): "
                     "it belongs to another input size")
