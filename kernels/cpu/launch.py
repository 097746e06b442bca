"""Run a serial Numba kernel on Numba's thread pool, one share per thread.

A *share kernel* ``fn(t, *args)`` does thread t's part of a job (for example the groups of
samples t, t + nt, …). ``Shares(fn)(nt, *args)`` runs fn(0, *args) … fn(nt − 1, *args) at once
on Numba's threads, the same pool a ``prange`` loop uses, and returns when all are done.

Why not a ``prange`` loop in each kernel: Numba compiles a parallel kernel's loop body twice
(as the parallel region's own function, then again inside the kernel that links it in), and
the body of a convolution kernel — unrolled and vectorised inner loops — is most of its
compile time. Here the body is compiled once, as an ordinary cached serial function; one small
``prange`` launcher, compiled once per argument-tuple type (≈ 0.4 s cold, cached after), calls
it through its address, so nothing is compiled twice. A cold ``fastcnn train`` compiles its
direct convolution kernels in about half the time (benchmarks/README.md, "First run"); the
call costs the same ≈ 2 µs as a ``prange`` kernel's and the results are bit for bit the same.

Safety: the share is called with the argument types it was compiled for — each tuple of
argument types (``_key``: dtype, rank and layout of every array, type of every scalar) gets
its own compiled share, and the launcher is specialised on the same tuple type.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, typeof, types
from numba.extending import intrinsic

from .options import PRANGE_ONLY


@intrinsic
def _call(typingctx, addr, t, args):
    """Call the compiled share at ``addr`` (a Numba-ABI function pointer, as int64) with
    (t, *args); an exception it raises is propagated as the caller's."""
    share_args = (types.int64, *args.types)

    def codegen(context, builder, signature, llargs):
        address, tv, tup = llargs
        values = [tv] + [builder.extract_value(tup, i) for i in range(len(args.types))]
        fnty = context.call_conv.get_function_type(types.void, share_args).as_pointer()
        fn = builder.inttoptr(address, fnty)
        status, _ = context.call_conv.call_function(builder, fn, types.void, share_args, values)
        with builder.if_then(status.is_error, likely=False):
            context.call_conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.void(types.int64, types.int64, args), codegen


@njit(parallel=PRANGE_ONLY, cache=True, nogil=True)
def _launch(addr, nt, args):
    for t in prange(nt):
        _call(addr, np.int64(t), args)


def _slow_key(args) -> tuple:
    """What decides the compiled types of ``args``: Numba types an array by dtype, rank,
    layout, writeability and alignment, a scalar by its Python type (≈ 6 µs for 17 args)."""
    return tuple((a.dtype.str, a.ndim, a.flags.c_contiguous, a.flags.f_contiguous, a.flags.writeable,
                  a.flags.aligned) if isinstance(a, np.ndarray) else type(a) for a in args)


try:  # the fingerprint Numba's own dispatchers key their type cache on (≈ 0.3 µs for 17 args)
    from numba._dispatcher import compute_fingerprint as _key
except ImportError:  # pragma: no cover - a Numba without it
    _key = _slow_key


class Shares:
    """``Shares(fn)(nt, *args)``: fn(t, *args) for t = 0 … nt − 1 on Numba's threads.

    ``fn`` is a serial ``numba.njit`` function (cache=True, nogil=True) returning nothing; it
    writes its results into arrays among ``args``. It is compiled lazily, for the argument
    types it is first called with, and looked up by ``_key`` after that.
    """

    def __init__(self, fn):
        self.fn = fn
        self._addresses: dict[tuple, int] = {}

    def __call__(self, nt: int, *args) -> None:
        key = _key(args)
        address = self._addresses.get(key)
        if address is None:
            address = self._addresses[key] = self._compile(args)
        _launch(address, nt, args)

    def _compile(self, args) -> int:
        sig = (types.int64, *(typeof(a) for a in args))
        self.fn.compile(sig)
        cres = self.fn.overloads[sig]
        return cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
