"""Run a serial Numba kernel on Numba's thread pool, split into shares that threads take in turn.

A *share kernel* ``fn(t, nt, *args)`` does share t of a job split nt ways (for example the
samples ``span(t, nt, n)``). ``Shares(fn)(nt, *args)`` runs fn(0, nt, *args) … fn(nt − 1, nt,
*args) on Numba's threads, the same pool a ``prange`` loop uses, and returns when all are
done. ``shares(n)`` is the nt for n independent items: ``SPLIT`` shares per thread (at most n).

Who runs which share: worker w of the T = min(nt, Numba threads) workers starts with share w
and then takes the next share not yet taken (an atomic counter), until none is left. A fixed
split (share t on thread t) makes every step wait for its slowest thread: with one busy process
beside it on the 2-core machine, a thread the OS has descheduled held half of every kernel's
work, and training kept 39 % of its throughput. With SPLIT shares a thread, the thread that runs
takes over the shares of the one that does not. The results do not depend on which thread runs a
share (each share writes its own outputs and its own partial sums, added up in share order).

Why not a ``prange`` loop in each kernel: Numba compiles a parallel kernel's loop body twice
(as the parallel region's own function, then again inside the kernel that links it in), and
the body of a convolution kernel — unrolled and vectorised inner loops — is most of its
compile time. Here the body is compiled once, as an ordinary cached serial function, and called
through its address. One ``prange`` launcher (``_launch``) runs every share: its arguments are
all int64 — the addresses, and an ``ArgsPointer`` to the share's arguments, packed in the frame
of ``_enter`` — so it is compiled once (a parallel region costs ≈ 0.5–1 s to compile, where it
had been compiled once per argument-tuple type). Per argument types there are two small plain
functions: ``_enter`` (packs the arguments, calls the launcher) and ``_trampoline`` (unpacks
them, calls the share). A cold ``fastcnn train`` compiles in ≈ 7.5 s instead of ≈ 18 s
(benchmarks/README.md, "First run"); a call costs ≈ 1–2 µs more than a ``prange`` kernel's,
and the results are bit for bit the same.

All threads or one, timed per kernel and shape (``Pace``): a parallel region is worth its
threads only when they run. GNU OpenMP's workers spin between regions; with one busy process
beside a run on the 2-core machine that spinning took the CPU the work needed, and training kept
31–42 % of its throughput with any split, where the same loop on one thread kept 67 % (20,700
samples/s against 31,000 alone on two; benchmarks/README.md, session 7). So each (kernel, shape)
keeps the seconds a call takes on all of Numba's threads and on one (one region on one thread,
so the pool sleeps), runs the faster, and tries the other now and then (``PROBE``): alone it stays
parallel (the one-thread probes cost ≈ 1/PROBE of their extra time), beside a busy process it
moves to one thread within a few dozen steps, and back when the machine is free again. Either
way every share runs, in order on one thread or taken in turn on several: the results are the
same bit for bit.

Safety: the share is called with the argument types it was compiled for — each tuple of
argument types (``_key``, the type fingerprint Numba's dispatchers use: dtype, rank, layout,
writeability of every array, type of every scalar) gets its own compiled share, ``_enter`` and
``_trampoline``, all three specialised on the same tuple type; the packed arguments live in
``_enter``'s frame until the launcher returns, and their references stay the caller's.

Numba internals this relies on (stable for years, but not public API): the CPU calling
convention (``context.call_conv``: a function's machine signature depends only on its argument
types, so an ArgsPointer, modelled as an int64, passes as one), a compile result's
``fndesc.llvm_func_name`` and ``library.get_pointer_to_function``, and
``numba._dispatcher.compute_fingerprint`` (with a pure-Python fallback). tests/conv/test_launch.py is the first to fail if a release changes them.
"""
from __future__ import annotations

import time

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, typeof, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from .options import PRANGE_ONLY


class ArgsPointer(types.Type):
    """The address (int64) of a tuple of arguments of type ``args`` in the caller's frame: an
    int64 to LLVM, so every compiled function taking one has the same machine signature,
    whatever the arguments. It lets one parallel launcher, compiled once, run every share."""

    def __init__(self, args):
        self.args = args
        super().__init__(name=f"ArgsPointer({args})")

    @property
    def key(self):
        return self.args


@register_model(ArgsPointer)
class _ArgsPointerModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.IntType(64))


@intrinsic
def _pack(typingctx, args):
    """The arguments stored in this frame (a stack slot): -> their ArgsPointer. Valid while the
    function that packed them runs; the references stay the caller's."""
    def codegen(context, builder, signature, llargs):
        slot = cgutils.alloca_once(builder, context.get_value_type(args))
        builder.store(llargs[0], slot)
        return builder.ptrtoint(slot, ir.IntType(64))

    return ArgsPointer(args)(args), codegen


@intrinsic
def _unpack(typingctx, pointer):
    """The arguments an ArgsPointer points to, as a new reference (the caller decrefs it)."""
    if not isinstance(pointer, ArgsPointer):
        return None

    def codegen(context, builder, signature, llargs):
        ty = context.get_value_type(pointer.args)
        value = builder.load(builder.inttoptr(llargs[0], ty.as_pointer()))
        context.nrt.incref(builder, pointer.args, value)
        return value

    return pointer.args(pointer), codegen


def _call_at(context, builder, address, restype, argtypes, values):
    """Call the compiled Numba function at ``address`` (an int64 value) -> (raised: i1, result)."""
    fnty = context.call_conv.get_function_type(restype, argtypes).as_pointer()
    status, out = context.call_conv.call_function(builder, builder.inttoptr(address, fnty), restype, argtypes,
                                                  values)
    return status.is_error, out


@intrinsic
def _call_share(typingctx, addr, t, nt, args):
    """share(t, nt, *args) at address ``addr``; returns 1 if it raised, else 0. (A parallel region
    cannot propagate an exception: the launcher counts them and Shares re-raises them.)"""
    argtypes = (types.int64, types.int64, *args.types)

    def codegen(context, builder, signature, llargs):
        address, tv, ntv, tup = llargs
        values = [tv, ntv] + [builder.extract_value(tup, i) for i in range(len(args.types))]
        raised, _ = _call_at(context, builder, address, types.void, argtypes, values)
        return builder.zext(raised, context.get_value_type(types.int64))

    return types.int64(types.int64, types.int64, types.int64, args), codegen


def _int_call(arity, last=types.int64):
    """An intrinsic calling a compiled function f(arity int64 arguments, ``last``) -> int64 at an
    address, returning 1 if it raised, else f's result."""
    argtypes = (types.int64,) * arity + (last,)

    def codegen(context, builder, signature, llargs):
        raised, out = _call_at(context, builder, llargs[0], types.int64, argtypes, list(llargs[1:]))
        return builder.select(raised, context.get_constant(types.int64, 1), out)

    return types.int64(types.int64, *argtypes), codegen


@intrinsic
def _call_trampoline(typingctx, addr, share, t, nt, pointer):
    """trampoline(share, t, nt, pointer) at address ``addr`` (see _trampoline)."""
    return _int_call(3)


@intrinsic
def _call_launcher(typingctx, addr, trampoline, share, nt, nw, pointer, counter):
    """launcher(trampoline, share, nt, nw, pointer, counter) at address ``addr`` (see _launch)."""
    return _int_call(5, types.int64[::1])


@njit(cache=True, nogil=True)
def _trampoline(share, t, nt, pointer):
    """Share t of nt of the share at address ``share``, its arguments unpacked from ``pointer``
    (an ArgsPointer): compiled once per argument types, a plain function, and called by address
    from the one parallel launcher; returns 1 if the share raised, else 0."""
    return _call_share(share, t, nt, _unpack(pointer))


@intrinsic
def _take(typingctx, counter):
    """The value of ``counter[0]`` (int64), incremented atomically: the next share to run."""
    def codegen(context, builder, signature, llargs):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, llargs[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [context.get_constant(types.intp, 0)])
        return builder.atomic_rmw("add", ptr, context.get_constant(types.int64, 1), "monotonic")

    return types.int64(counter), codegen


@njit(parallel=PRANGE_ONLY, cache=True, nogil=True)
def _launch(trampoline, share, nt, nw, pointer, counter):
    """Shares 0 … nt − 1 on nw workers: worker w runs share w, then the shares it takes from
    ``counter`` (which starts at nw), each through ``trampoline`` (its address) with the
    arguments at ``pointer``; returns how many raised. All arguments are int64 (and one int64
    array): one compiled launcher for every share and argument type."""
    failed = 0
    for w in prange(nw):
        t = np.int64(w)
        while t < nt:
            failed += _call_trampoline(trampoline, share, t, nt, pointer)
            t = _take(counter)
    return failed


@njit(cache=True, nogil=True)
def _enter(launcher, trampoline, share, nt, nw, counter, args):
    """Pack ``args`` in this frame and run the launcher at address ``launcher`` on them
    (compiled once per argument types: a plain function; the launcher's region is not)."""
    return _call_launcher(launcher, trampoline, share, nt, nw, _as_int(_pack(args)), counter)


@intrinsic
def _as_int(typingctx, pointer):
    """An ArgsPointer as the int64 it is."""
    if not isinstance(pointer, ArgsPointer):
        return None

    def codegen(context, builder, signature, llargs):
        return llargs[0]

    return types.int64(pointer), codegen


@njit(inline="always")
def span(t, nt, n):
    """Share t of range(n) split nt ways: (lo, hi), contiguous, sizes differing by at most one."""
    return t * n // nt, (t + 1) * n // nt


#: Shares per thread for a job of many items (``shares``): enough that a running thread can take
#: over from a descheduled one, few enough that a share keeps its groups of samples long.
SPLIT = 4


def threads(n: int) -> int:
    """Threads for n independent items: Numba's thread count, at most n, at least 1."""
    return max(1, min(numba.get_num_threads(), n))


def shares(n: int) -> int:
    """Shares for n independent items: SPLIT per thread, at most n, at least 1."""
    return max(1, min(SPLIT * numba.get_num_threads(), n))


def _slow_key(args) -> tuple:
    """What decides the compiled types of ``args``: Numba types an array by dtype, rank,
    layout, writeability and alignment, a scalar by its Python type (≈ 6 µs for 17 args)."""
    return tuple((a.dtype.str, a.ndim, a.flags.c_contiguous, a.flags.f_contiguous, a.flags.writeable,
                  a.flags.aligned) if isinstance(a, np.ndarray) else type(a) for a in args)


try:  # the fingerprint Numba's own dispatchers key their type cache on (≈ 0.3 µs for 17 args)
    from numba._dispatcher import compute_fingerprint as _key
except ImportError:  # pragma: no cover - a Numba without it
    _key = _slow_key


#: How often a kernel (per shape) runs the way that is not the faster one, to notice a change: the
#: first probe after PROBE calls; a probe that confirms the choice doubles the interval (up to
#: PROBE_MAX calls), a probe that changes it resets it. Alone, the one-thread probes then cost
#: ≈ (its extra time) / PROBE_MAX; beside a busy process a parallel probe wakes the pool once.
PROBE, PROBE_MAX = 16, 128
#: False: always all threads (what fastcnn did before; benchmarks/under_load.py compares both).
ADAPT = True
WARM = 15  # calls on all threads before the first one-thread probe (a probe costs about one call: amortised)
_SMOOTH = 0.25  # weight of a new time in the running average of the way that runs


class Pace:
    """Seconds per call of one kernel on one shape, on all threads and on one, and which to run
    next (``one_thread``): the faster, except for a probe of the other now and then (see PROBE).
    ``record`` keeps a running average of the way that runs and the last probe's time of the
    other, so one probe is enough to switch (a wrong switch is undone by the running average on
    the next calls)."""

    __slots__ = ("calls", "seconds", "one", "interval", "next_probe")

    def __init__(self):
        self.calls = 0
        self.seconds = [float("inf"), float("inf")]  # [all threads, one thread]
        self.one = False  # the way that runs (the faster so far)
        self.interval = PROBE
        self.next_probe = WARM + 1

    def one_thread(self) -> bool:
        self.calls += 1
        if self.calls < self.next_probe:
            return self.one
        return not self.one

    def record(self, one: bool, seconds: float) -> None:
        if one != self.one:  # a probe
            self.seconds[one] = seconds
            faster = self.seconds[1] < self.seconds[0]
            if faster != self.one:
                self.one, self.interval = faster, PROBE
            else:
                self.interval = min(2 * self.interval, PROBE_MAX)
            self.next_probe = self.calls + self.interval
            return
        old = self.seconds[one]
        self.seconds[one] = seconds if old == float("inf") else old + _SMOOTH * (seconds - old)
        if self.seconds[one] > self.seconds[not one]:  # the other is faster now: run it
            self.one, self.interval = not one, PROBE
            self.next_probe = self.calls + self.interval


class Shares:
    """``Shares(fn)(nt, *args)``: fn(t, nt, *args) for t = 0 … nt − 1 on Numba's threads.

    ``fn`` is a serial ``numba.njit`` function (cache=True, nogil=True) returning nothing; it
    writes its results into arrays among ``args``. It is compiled lazily, for the argument
    types it is first called with, and looked up by ``_key`` after that. With the JIT off
    (``NUMBA_DISABLE_JIT=1``, to debug a kernel in Python) the shares run one after another.
    """

    def __init__(self, fn):
        self.fn = fn
        self._jit = hasattr(fn, "overloads")  # else a plain function (NUMBA_DISABLE_JIT=1)
        self._addresses: dict[bytes | tuple, tuple[int, int]] = {}  # type key -> (share, trampoline)
        self._paces: dict[tuple, Pace] = {}  # (compiled share, shape of the first argument) -> its Pace

    def __call__(self, nt: int, *args) -> None:
        if not self._jit:  # in turn, here
            for t in range(nt):
                self.fn(t, nt, *args)
            return
        key = _key(args)
        addresses = self._addresses.get(key)
        if addresses is None:
            addresses = self._addresses[key] = self._compile(args)
        address, trampoline = addresses
        threads = numba.get_num_threads()
        pace, one = None, False
        if ADAPT and threads > 1 and nt > 1:
            where = (address, getattr(args[0], "shape", None))
            pace = self._paces.get(where)
            if pace is None:
                pace = self._paces[where] = Pace()
            one = pace.one_thread()
        nw = 1 if one else min(nt, threads)
        if one:  # the same region on one thread: every share in order, no worker woken
            numba.set_num_threads(1)
        try:
            t0 = time.perf_counter()
            failed = _enter(_launcher(), trampoline, address, nt, nw, np.full(1, nw, dtype=np.int64), args)
        finally:
            if one:
                numba.set_num_threads(threads)
        if pace is not None:
            pace.record(one, time.perf_counter() - t0)
        if failed:
            self._reraise(nt, args)

    def over(self, n: int, *args) -> None:
        """n independent items in shares(n) shares."""
        self(shares(n), *args)

    def _reraise(self, nt, args) -> None:
        """A share raised on a worker thread: run the shares again here, through the dispatcher,
        so that the exception reaches the caller with its type and message (the outputs are
        left as the failed run wrote them)."""
        for t in range(nt):
            self.fn(t, nt, *args)
        raise RuntimeError(f"{self.fn.__name__} failed on a worker thread but not when run again")

    def _compile(self, args) -> tuple[int, int]:
        """The addresses of the share and of its trampoline compiled for these argument types."""
        arg_types = tuple(typeof(a) for a in args)
        share = _address(self.fn, (types.int64, types.int64, *arg_types))
        return share, _address(_trampoline, (types.int64,) * 3 + (ArgsPointer(types.Tuple(arg_types)),))


def _address(dispatcher, sig) -> int:
    """The machine address of ``dispatcher`` compiled for ``sig`` (loaded from its cache if there)."""
    dispatcher.compile(sig)
    cres = dispatcher.overloads[tuple(sig)]
    return cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)


_LAUNCHER: list[int] = []


def _launcher() -> int:
    """The address of the one compiled launcher (compiled, or loaded, on first use)."""
    if not _LAUNCHER:
        _LAUNCHER.append(_address(_launch, (types.int64,) * 5 + (types.int64[::1],)))
    return _LAUNCHER[0]
