"""What every CUDA launcher shares: the grid, the stream, the typed scalars.

A launcher takes device arrays — anything with ``__cuda_array_interface__`` (CuPy
arrays, Numba device arrays) — and launches one thread per output element in
blocks of ``THREADS``. With CuPy arrays the kernel runs on CuPy's current stream,
so it is ordered with the CuPy work around it and nobody has to synchronise.
Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, chosen when numba.cuda is
first imported) there are no real streams: the default stream is used.
"""
from __future__ import annotations

import ctypes
import math
import sys

import numpy as np
from numba import cuda

from ..shapes import out_size  # noqa: F401  (the launchers' output sizes)

#: Threads per block (a multiple of the 32-thread warp).
THREADS = 256


@cuda.jit(device=True)
def unravel(t, d1, d2, d3):
    """The (a, b, c, d) index of flat position t in a C-ordered array of shape (·, d1, d2, d3)."""
    return t // (d3 * d2 * d1), (t // (d3 * d2)) % d1, (t // d3) % d2, t % d3


def simulated() -> bool:
    """True when numba.cuda is Numba's CUDA simulator (kernels run as Python on the host)."""
    return "simulator" in getattr(cuda.jit, "__module__", "")


def size(a) -> int:
    """Number of elements of any array-like with a ``shape``."""
    return math.prod(a.shape)


def grid(n: int) -> tuple:
    """(blocks, threads) covering ``n`` threads, at least one block.

    The simulator runs every thread of a block as a Python thread, so there the
    block is shrunk to the work (rounded up to a warp) to keep tests quick.
    """
    threads = THREADS if not simulated() else min(THREADS, max(32, -(-n // 32) * 32))
    return max(1, -(-n // threads)), threads


def stream_for(*arrays):
    """The stream to launch on: CuPy's current stream when any array is a CuPy array, else 0.

    CuPy's legacy null stream has pointer 0, which Numba would read as "its own default
    stream"; it is named explicitly (CU_STREAM_LEGACY) so the meaning is the same either way.
    """
    if simulated():
        return 0
    for a in arrays:
        if type(a).__module__.split(".")[0] == "cupy":
            import cupy

            ptr = cupy.cuda.get_current_stream().ptr
            return cuda.external_stream(ptr) if ptr else cuda.legacy_default_stream()
    return 0


def sim_args(arrays) -> tuple:
    """Under the simulator, arrays that are neither numpy nor Numba arrays but expose
    ``__cuda_array_interface__`` (fastcnn's fake_cupy) as numpy views of the memory it points to:
    the simulator does not read the interface itself, and its "device" memory is host memory.
    Call it exactly once per launch, in the launch expression: it also reports the launch to the
    stand-in's counters."""
    if not simulated():
        return tuple(_unsynced(a) for a in arrays)
    foreign = [a for a in arrays if hasattr(a, "__cuda_array_interface__") and not hasattr(a, "copy_to_host")
               and not isinstance(a, np.ndarray)]
    _report_launch(foreign)
    return tuple(_cai_view(a) if any(a is f for f in foreign) else a for a in arrays)


def _unsynced(a):
    """A CuPy array as a Numba device array, without the host synchronisation numba-cuda (before 0.25)
    makes on the stream named in ``__cuda_array_interface__``: the kernel is launched on CuPy's current
    stream (``stream_for``), so it is ordered after the work that made the array without waiting."""
    if type(a).__module__.split(".")[0] != "cupy":
        return a
    return cuda.from_cuda_array_interface(a.__cuda_array_interface__, owner=a, sync=False)


def _report_launch(arrays) -> None:
    """Tell the module of stand-in arrays that a kernel is launched on them, when it counts launches
    (fastcnn's fake_cupy has ``count_launch``; kernels/ imports nothing from fastcnn, so it is found
    through the arrays' own module). Every launcher calls ``sim_args`` once per launch."""
    if not arrays:
        return
    mod = sys.modules.get(type(arrays[0]).__module__)
    count = getattr(mod, "count_launch", None)
    if count is not None:
        count(1, arrays=tuple(arrays))


def _cai_view(a):
    """A numpy view of the host memory that ``a.__cuda_array_interface__`` (version 3) describes."""
    cai = a.__cuda_array_interface__
    shape, dtype = tuple(cai["shape"]), np.dtype(cai["typestr"])
    strides = cai.get("strides") or tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) * dtype.itemsize
                                          for i in range(len(shape)))
    ptr = cai["data"][0]
    if math.prod(shape) == 0:
        return np.empty(shape, dtype)
    if min(strides) < 0:
        raise ValueError("negative strides in __cuda_array_interface__ are not supported by the simulator bridge")
    span = sum((n - 1) * s for n, s in zip(shape, strides)) + dtype.itemsize
    buf = (ctypes.c_byte * span).from_address(ptr)
    return np.ndarray(shape, dtype, buffer=buf, strides=strides)


def scalar(a, value):
    """``value`` as a scalar of ``a``'s dtype, so a kernel accumulates in that precision."""
    return a.dtype.type(value)


def expect_shape(name: str, a, shape: tuple) -> None:
    """A clear error when a launcher is handed an array of the wrong shape."""
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(a.shape)}")
