"""A strict, test-only stand-in for CuPy: NumPy underneath, CuPy's rules and costs on top.

Switched on only by ``FASTCNN_FAKE_CUPY=1`` (read by ``fastcnn.backend.get``, never
written): then ``backend.get("cupy")`` returns this module instead of importing CuPy,
so the whole GPU path — layers with ``xp = cupy``, the data set on the device,
evaluation, checkpoints, resume, predict, memory reporting — runs on a machine
without a GPU. With ``NUMBA_ENABLE_CUDASIM=1`` as well, the ``kernels/cuda`` kernels run
on its arrays through ``__cuda_array_interface__`` (the 'cuda' algorithms).

Strict the way CuPy is:

* device arrays are ``ndarray`` objects of this module that *wrap* a numpy array; they
  are not numpy arrays, and ``np.asarray(a)`` / ``np.array(a)`` raise ``TypeError``
  ("Implicit conversion to a NumPy array is not allowed", CuPy's words); numpy
  functions and ufuncs called on them raise ``TypeError`` too (CuPy would hand them
  to itself; fastcnn must call ``xp``, so here they are an error);
* a numpy array where a device array is expected (an operand, a function argument,
  the value of ``a[...] = v``) raises ``TypeError``, as CuPy does; the ways across
  are ``asarray`` (host -> device) and ``.get()`` / ``asnumpy`` (device -> host);
* reductions return 0-d device arrays, not numpy scalars; ``float()`` / ``int()`` of
  a one-element array is allowed (CuPy allows it: a synchronising copy);
* out-of-range integer-array indices wrap around (``a[idx]``, ``take_along_axis``), as CuPy's do
  where NumPy raises: a wrong label picks another class instead of failing;
* ``.data`` is a memory pointer (``.ptr``), as CuPy's ``MemoryPointer``; the array
  interface (version 3) names a stream (``1``, CUDA's legacy default stream, as CuPy does
  on its null stream);
* it offers only names that CuPy has in its oldest supported release, with only the keyword
  arguments CuPy accepts (``fastcnn/testing/cupy_manifest.json``, generated from the real
  package by ``scripts/cupy_manifest.py``; tests/gpu/test_cupy_manifest.py keeps both honest).
  The few names CuPy lacks are the stand-in's own, listed in ``STANDIN_ONLY``.

**Counting, as the device would see it** (``counters()``, ``reset_counters()``, ``counting()``):

* ``launches``: operations that launch device work on CuPy: every ufunc / operator (in place
  too), reduction, matmul / dot / tensordot / einsum (one GEMM, plus one copy per operand that
  cuBLAS cannot take as it is), copies (``copy``, ``astype``, ``ascontiguousarray`` or
  ``reshape`` / ``ravel`` that must copy), ``fill``, ``zeros`` / ``ones`` / ``full`` / ``arange``
  (a fill kernel; ``empty`` is 0), fancy indexing and assignment to a slice (a gather / scatter /
  copy kernel; 2k with k index arrays, flattened first), ``take_along_axis`` (an ``arange`` per other axis + a gather, as CuPy writes it),
  random draws, ``concatenate`` / ``stack``, ``where``, ``clip``; a numba-cuda kernel launched on
  stand-in arrays (``kernels/cuda/launch.sim_args`` reports it through ``count_launch``), and a
  custom kernel (``ElementwiseKernel``, ``ReductionKernel``, ``RawKernel``). Views (``reshape``
  without a copy, ``transpose``, basic slicing, ``.T``) cost 0. Multi-kernel CuPy routines
  (sorting, ``var``, ``allclose``) count the kernels CuPy's own code issues, approximately.
* ``syncs``: host synchronisations: ``.get()``, ``asnumpy``, ``float()`` / ``int()`` / ``bool()``
  / ``item()`` / ``tolist()`` / printing of a device array, ``Stream.synchronize``,
  ``cuda.Device().synchronize``, ``cuda.runtime.deviceSynchronize``, and the CuPy routines whose
  output size depends on the data (``nonzero``, one-argument ``where``, boolean-mask indexing).
  A numba-cuda older than 0.25 synchronises the array interface's stream of every array a
  kernel is handed; launches count those too when such a numba-cuda is installed.
* ``h2d`` / ``d2h`` (and ``_bytes``): transfers each way (``asarray`` of host data, a host index
  array uploaded by ``a[idx]``; ``.get()`` and friends).
* ``allocs``: new device arrays (every result that is not a view of an existing one).

Work is done when it is queued (NumPy), so ordering errors cannot show here: the counters are how
tests see what a GPU would wait for.

**Custom kernels**: ``ElementwiseKernel`` / ``ReductionKernel`` / ``RawKernel`` take CuPy's
arguments, but their CUDA C cannot run here. Calling one runs the NumPy *twin* registered for its
name with ``register_twin(name, fn)`` (a stand-in-only function) and counts one launch; a kernel
without a twin raises. The C body itself is verified only on a real GPU (``scripts/gpu_check.sh``
runs the gpu tests there, which compare the kernels against NumPy).

What it cannot show: real memory limits, kernel launch failures, asynchronous errors, CuPy's own
numerics (cuBLAS summation order), speed.
"""
from __future__ import annotations

import builtins
import contextlib
import functools
import os
import weakref
from types import SimpleNamespace

import numpy as np

#: Shown once per process by ``fastcnn.backend`` when the stand-in is used.
BANNER = ("fastcnn: FASTCNN_FAKE_CUPY=1: backend 'cupy' is fastcnn.testing.fake_cupy, a NumPy stand-in "
          "for CuPy; no GPU is used in this run")

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
            "a NumPy array explicitly.")

#: Names of this module that real CuPy does not have: the stand-in's own machinery.
STANDIN_ONLY = ("BANNER", "IMPLICIT", "STANDIN_ONLY", "COUNTERS", "counters", "reset_counters", "counting",
                "count_launch", "register_twin", "FUNCTIONS", "METHODS",
                "cupyx")  # CuPy's cupyx is a package of its own: backend.scatter_add finds the stand-in's here

# dtypes and constants: CuPy re-exports numpy's
float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, intp = np.int8, np.int16, np.int32, np.int64, np.intp
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
bool_, dtype, inf, nan, newaxis = np.bool_, np.dtype, np.inf, np.nan, np.newaxis


# --- what the device would see: counters --------------------------------------------------------
#: The counters' names, in the order tables show them.
COUNTERS = ("launches", "syncs", "h2d", "d2h", "h2d_bytes", "d2h_bytes", "allocs")
_counts = dict.fromkeys(COUNTERS, 0)


def counters() -> dict:
    """A snapshot of the counters since the process started (or ``reset_counters()``)."""
    return dict(_counts)


def reset_counters() -> None:
    """Set every counter to zero."""
    for k in _counts:
        _counts[k] = 0


@contextlib.contextmanager
def counting():
    """``with counting() as c:`` — on exit ``c`` (a dict) holds what the block did, per counter."""
    start = counters()
    c = dict.fromkeys(COUNTERS, 0)
    try:
        yield c
    finally:
        now = counters()
        c.update({k: now[k] - start[k] for k in COUNTERS})


def _launch(n: int = 1) -> None:
    _counts["launches"] += n


def _sync() -> None:
    _counts["syncs"] += 1


def _d2h(nbytes: int, sync: bool = True) -> None:
    """A device -> host copy: a transfer and (when blocking) a synchronisation."""
    _counts["syncs"] += int(sync)
    _counts["d2h"] += 1
    _counts["d2h_bytes"] += int(nbytes)


def _h2d(nbytes: int) -> None:
    _counts["h2d"] += 1
    _counts["h2d_bytes"] += int(nbytes)


def _numba_syncs_on_interface() -> bool:
    """numba-cuda before 0.25 synchronises the ``__cuda_array_interface__`` stream of every
    array handed to a kernel (unless NUMBA_CUDA_ARRAY_INTERFACE_SYNC=0)."""
    if os.environ.get("NUMBA_CUDA_ARRAY_INTERFACE_SYNC", "1") == "0":
        return False
    return _old_numba_cuda()


@functools.lru_cache(maxsize=1)
def _old_numba_cuda() -> bool:
    try:
        from importlib.metadata import version

        major, minor = (int(p) for p in version("numba-cuda").split(".")[:2])
    except Exception:  # not installed, or an odd version string: the installed one is recent
        return False
    return (major, minor) < (0, 25)


def count_launch(n: int = 1, arrays=()) -> None:
    """Record ``n`` kernel launches made outside this module (numba-cuda kernels on stand-in
    arrays: ``kernels/cuda/launch.sim_args`` calls it once per launch, handing the stand-in arrays
    it was given, whose interface stream an old numba-cuda would synchronise)."""
    _launch(n)
    if arrays and _numba_syncs_on_interface():
        _counts["syncs"] += builtins.sum(1 for a in arrays if isinstance(a, ndarray))


# --- the memory pool: live bytes of the arrays this module allocated -----------------------------
class _MemoryPool:
    """``used_bytes()``: bytes held by live device arrays; ``total_bytes()``: the most ever held
    (a pool that caches every freed block, as CuPy's does until ``free_all_blocks()``)."""

    def __init__(self):
        self._live: dict = {}
        self._used = 0
        self._total = 0

    def _track(self, base: np.ndarray) -> None:
        key = id(base)
        if key in self._live:
            return
        _counts["allocs"] += 1
        self._live[key] = base.nbytes
        self._used += base.nbytes
        self._total = max(self._total, self._used)
        weakref.finalize(base, self._release, key)

    def _release(self, key) -> None:
        self._used -= self._live.pop(key, 0)

    def used_bytes(self) -> int:
        return self._used

    def total_bytes(self) -> int:
        return self._total

    def free_bytes(self) -> int:
        return self._total - self._used

    def free_all_blocks(self, stream=None) -> None:
        self._total = self._used


_pool = _MemoryPool()


def get_default_memory_pool() -> _MemoryPool:
    return _pool


# --- the array -----------------------------------------------------------------------------------
def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _wrap(a):
    """A device array for a numpy result (numpy scalars become 0-d arrays, as in CuPy)."""
    if isinstance(a, np.generic):
        a = np.asarray(a)
    if isinstance(a, np.ndarray):
        out = object.__new__(ndarray)
        out._a = a
        _pool._track(_root(a))
        return out
    if isinstance(a, tuple):
        return tuple(_wrap(v) for v in a)
    if isinstance(a, list):
        return [_wrap(v) for v in a]
    return a


def _unsupported(v):
    return TypeError(f"Unsupported type {type(v)} (fake_cupy, as CuPy: a host array must be moved "
                     "to the device with cupy.asarray first)")


def _dev(v):
    """The numpy array behind a device-array argument; numpy arrays are refused, as CuPy does."""
    if isinstance(v, ndarray):
        return v._a
    if isinstance(v, np.ndarray):
        raise _unsupported(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_dev(x) for x in v)
    return v


def _index(idx):
    """An index: device arrays unwrapped; host arrays and lists allowed (CuPy uploads them: h2d)."""
    if isinstance(idx, ndarray):
        return idx._a
    if isinstance(idx, tuple):
        return tuple(_index(i) for i in idx)
    if isinstance(idx, np.ndarray):
        _h2d(idx.nbytes)
    elif isinstance(idx, list):
        _h2d(np.asarray(idx).nbytes)
    return idx


def _wrapped(idx, shape):
    """Integer-array indices taken modulo their axis, as CuPy does (it wraps out-of-bounds indices
    around where NumPy raises: a wrong label silently picks another class on a GPU)."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    if any(p is None or p is Ellipsis for p in parts) or len(parts) > len(shape):
        return idx
    out, axis = [], 0
    for p in parts:
        if isinstance(p, np.ndarray) and p.dtype.kind in "iu" and shape[axis]:
            p = p % shape[axis]
        out.append(p)
        axis += p.ndim if isinstance(p, np.ndarray) and p.dtype == np.bool_ else 1
    return tuple(out) if isinstance(idx, tuple) else out[0]


def _is_basic(idx) -> bool:
    """Basic indexing (ints, slices, None, Ellipsis): the result is a view."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts)


def _fancy_cost(idx) -> int:
    """Kernels CuPy issues for an index: one copy / gather / scatter, and with k > 1 integer index
    arrays first a multiply per array and an add per pair to flatten them (k + (k - 1) + 1 = 2k)."""
    parts = idx if isinstance(idx, tuple) else (idx,)
    k = builtins.sum(1 for p in parts if isinstance(p, (np.ndarray, list)) and np.asarray(p).dtype.kind in "iu")
    return 1 if k <= 1 else 2 * k


def _has_mask(idx) -> bool:
    parts = idx if isinstance(idx, tuple) else (idx,)
    return any(isinstance(p, np.ndarray) and p.dtype == np.bool_ for p in parts)


def _is_view_of(result, *sources) -> bool:
    """True when ``result`` (a numpy array) shares its root buffer with one of ``sources``."""
    if not isinstance(result, np.ndarray):
        return False
    r = _root(result)
    return any(isinstance(s, np.ndarray) and _root(s) is r for s in sources)


def _binop(name):
    op = getattr(np.ndarray, name)

    def f(self, other):
        if not isinstance(other, (ndarray, int, float, complex, bool, np.generic)):
            if isinstance(other, np.ndarray):
                raise _unsupported(other)
            return NotImplemented
        o = other._a if isinstance(other, ndarray) else other
        if name in ("__matmul__", "__rmatmul__"):
            _launch(1 + _gemm_copies(self._a, o))
        else:
            _launch()
        return _wrap(op(self._a, o))

    f.__name__ = name
    return f


def _inplace(name):
    op = getattr(np.ndarray, name)

    def f(self, other):
        _launch()
        op(self._a, _dev(other))
        return self

    f.__name__ = name
    return f


def _needs_copy(a) -> bool:
    """cuBLAS takes a C- or F-ordered operand as it is; anything else CuPy copies first."""
    return isinstance(a, np.ndarray) and a.ndim >= 2 and not (a.flags.c_contiguous or a.flags.f_contiguous)


def _gemm_copies(*operands) -> int:
    return builtins.sum(_needs_copy(a) for a in operands)


#: Launches of a method, when not one: a number, or "view" (0 when the result is a view of the array).
_METHOD_COST = {"reshape": "view", "transpose": "view", "ravel": "view", "squeeze": "view", "view": "view",
                "swapaxes": "view", "var": 2, "std": 3, "nonzero": 2}


def _method(name):
    cost = _METHOD_COST.get(name, 1)

    def f(self, *args, **kw):
        _check_kw(f"ndarray.{name}", kw)
        r = getattr(self._a, name)(*_dev(args), **{k: _dev(v) for k, v in kw.items()})
        if cost == "view":
            _launch(0 if _is_view_of(r, self._a) else 1)
        else:
            _launch(cost)
        if name == "nonzero":  # the output's size depends on the data: CuPy copies the count back
            _d2h(8)
        if name == "dot":
            _launch(_gemm_copies(self._a, *_dev(args)[:1]))
        return _wrap(r)

    f.__name__ = name
    return f


#: ndarray methods fastcnn calls (CuPy has each, with numpy's meaning).
METHODS = ("reshape", "transpose", "sum", "mean", "max", "min", "argmax", "argmin", "any", "all",
           "copy", "ravel", "squeeze", "clip", "var", "std", "prod", "cumsum", "dot", "view",
           "swapaxes", "nonzero", "round")


class _MemoryPointer:
    """What ``ndarray.data`` is in CuPy: ``MemoryPointer(mem, offset)``, a pointer into device memory
    (here: a host address); ``.ptr`` is the address, ``.mem`` the allocation it points into."""

    __slots__ = ("ptr", "device_id", "mem")

    def __init__(self, mem, offset):
        self.mem = mem
        self.ptr = (mem.__array_interface__["data"][0] if mem.size else 0) + int(offset)
        self.device_id = 0


class ndarray:  # noqa: N801  (CuPy's name)
    """A device array: a numpy array that will not be used as one by accident."""

    __slots__ = ("_a", "__weakref__")
    __array_ufunc__ = None  # numpy operators defer to ours; numpy ufuncs on it raise TypeError
    __array_priority__ = 100

    def __init__(self, *args, **kw):
        raise TypeError("fake_cupy.ndarray is not constructed directly: use cupy.empty / zeros / asarray")

    # -- leaving the device: only explicitly, each time a synchronising copy ------------------
    def __array__(self, *args, **kw):
        raise TypeError(IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was called on a device array (fake_cupy): "
                        f"call the backend's xp.{func.__name__}, or move it to the host with .get()")

    def get(self, stream=None, order="C", out=None, blocking=True):
        """A numpy copy of the array (device -> host); ``blocking=False`` does not
        wait for the device, as in CuPy."""
        _d2h(self._a.nbytes, sync=blocking)
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def tolist(self):
        _d2h(self._a.nbytes)
        return self._a.tolist()

    def item(self):
        _d2h(self._a.itemsize)
        return self._a.item()

    def __float__(self):
        _d2h(self._a.itemsize)
        return float(self._a)

    def __int__(self):
        _d2h(self._a.itemsize)
        return int(self._a)

    def __bool__(self):
        _d2h(self._a.itemsize)
        return bool(self._a)

    def __format__(self, spec):
        _d2h(self._a.nbytes)
        return format(self._a if self._a.ndim else self._a.item(), spec)

    def __repr__(self):
        _d2h(self._a.nbytes)
        return repr(self._a).replace("array(", "fake_cupy.array(", 1)

    def __str__(self):
        _d2h(self._a.nbytes)
        return str(self._a)

    # -- what it is ----------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: _wrap(self._a.T))

    @property
    def data(self) -> _MemoryPointer:
        """The memory pointer (CuPy's ``MemoryPointer``): ``.ptr`` is the first element's address."""
        a, root = self._a, _root(self._a)
        if not a.size:
            return _MemoryPointer(root, 0)
        return _MemoryPointer(root, a.__array_interface__["data"][0] - root.__array_interface__["data"][0])

    @property
    def __cuda_array_interface__(self) -> dict:
        """Version 3 of the CUDA Array Interface, as CuPy writes it on its null stream (stream 1:
        ``cudaStreamLegacy``; version 3 forbids 0). The pointer is host memory (simulator only)."""
        a = self._a
        return {"shape": a.shape, "typestr": a.dtype.str, "descr": a.dtype.descr, "version": 3,
                "data": (a.__array_interface__["data"][0] if a.size else 0, False),
                "strides": None if a.flags.c_contiguous else a.strides, "stream": _stream.ptr or 1}

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __getitem__(self, idx):
        i = _wrapped(_index(idx), self._a.shape)
        r = self._a[i]
        if not _is_basic(i):
            _launch(_fancy_cost(i))  # a gather kernel (after flattening several index arrays)
            if _has_mask(i):  # the size of the result is read back first
                _launch(2)
                _d2h(8)
        return _wrap(r)

    def __setitem__(self, idx, value):
        i = _wrapped(_index(idx), self._a.shape)
        _launch(_fancy_cost(i))  # a copy / fill / scatter kernel
        self._a[i] = _dev(value)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and self._a.dtype == np.dtype(dtype):
            return self
        _launch()
        return _wrap(self._a.astype(dtype, order=order, copy=True))

    def fill(self, value):
        _launch()
        self._a.fill(value)

    __hash__ = None

    def __neg__(self):
        _launch()
        return _wrap(-self._a)

    def __pos__(self):
        _launch()
        return _wrap(+self._a)

    def __abs__(self):
        _launch()
        return _wrap(abs(self._a))

    def __invert__(self):
        _launch()
        return _wrap(~self._a)


for _n in METHODS:
    setattr(ndarray, _n, _method(_n))
for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(ndarray, f"__{_n}__", _binop(f"__{_n}__"))
    setattr(ndarray, f"__r{_n}__", _binop(f"__r{_n}__"))
    if _n != "matmul":  # CuPy 13 has no in-place matmul (a @= b)
        setattr(ndarray, f"__i{_n}__", _inplace(f"__i{_n}__"))
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_n}__", _binop(f"__{_n}__"))
del _n


# --- keyword arguments: only CuPy's ----------------------------------------------------------------
_manifest_kw: dict | None = None


def _check_kw(qualname: str, kw: dict) -> None:
    """Refuse a keyword argument that real CuPy's ``qualname`` does not accept (the manifest)."""
    global _manifest_kw
    if not kw:
        return
    if _manifest_kw is None:
        _manifest_kw = _load_manifest_keywords()
    allowed = _manifest_kw.get(qualname)
    if allowed is None:
        return
    bad = sorted(set(kw) - set(allowed))
    if bad:
        raise TypeError(f"cupy.{qualname}() got unexpected keyword argument(s) {', '.join(bad)} "
                        f"(fake_cupy, as CuPy accepts only {', '.join(allowed) or 'none'})")


def _load_manifest_keywords() -> dict:
    """{qualified name: its keyword names} from cupy_manifest.json (empty when not there)."""
    import json
    from pathlib import Path

    p = Path(__file__).with_name("cupy_manifest.json")
    if not p.is_file():
        return {}
    return {k: v for k, v in json.loads(p.read_text()).get("keywords", {}).items() if v is not None}


# --- crossing between host and device ------------------------------------------------------------
def asarray(a, dtype=None, order=None, *, blocking=False):
    """Host (or device) data -> a device array (no copy when already on the device with that dtype)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    r = np.array(a, dtype=dtype, order=order or "K", copy=True)
    _h2d(r.nbytes)
    return _wrap(r)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        r = np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        _launch(0 if _is_view_of(r, obj._a) else 1)
        return _wrap(r)
    r = np.array(obj, dtype=dtype, order=order, copy=True, ndmin=ndmin)
    _h2d(r.nbytes)
    return _wrap(r)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """A numpy array for a device (or host) array."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    return np.asarray(a, order=order)


def _tensordot_copies(a, b, axes=2) -> int:
    """Operands that CuPy's tensordot must copy: those whose transposed 2-D form is not a view."""
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return 0
    if isinstance(axes, int):
        ax_a, ax_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        ax_a, ax_b = ([x] if isinstance(x, int) else list(x) for x in axes)
    ax_a = [x % a.ndim for x in ax_a]
    ax_b = [x % b.ndim for x in ax_b]
    ta = a.transpose([i for i in range(a.ndim) if i not in ax_a] + ax_a)
    tb = b.transpose(ax_b + [i for i in range(b.ndim) if i not in ax_b])
    k = int(np.prod([a.shape[i] for i in ax_a]))
    return builtins.sum(_reshape_copies(t, shape) for t, shape in ((ta, (-1, k)), (tb, (k, -1))))


def _reshape_copies(t: np.ndarray, shape) -> int:
    """1 when ``t`` as a 2-D matrix of ``shape`` is not a plain (C or F) view: CuPy copies it."""
    v = t.view()
    try:
        v.shape = shape  # numpy refuses when a reshape would have to copy
    except AttributeError:
        return 1
    return int(_needs_copy(v))


#: Launches of a function, when not one: a number, "view" (0 when the result is a view of an
#: argument), or a function of the numpy arguments.
_FUNCTION_COST = {
    "empty": 0, "empty_like": 0, "ascontiguousarray": "view",
    "matmul": lambda a, b, *r, **k: 1 + _gemm_copies(a, b),
    "dot": lambda a, b, *r, **k: 1 + _gemm_copies(a, b),
    "tensordot": lambda a, b, axes=2: 1 + _tensordot_copies(a, b, axes),
    "einsum": lambda *ops, **k: 1 + _gemm_copies(*[o for o in ops if isinstance(o, np.ndarray)]),
    "argsort": 2, "argpartition": 2, "allclose": 2, "array_equal": 2, "pad": 2,
}


def _function(name):
    fn = getattr(np, name)
    cost = _FUNCTION_COST.get(name, 1)

    def f(*args, **kw):
        _check_kw(name, kw)
        nargs, nkw = _dev(args), {k: _dev(v) for k, v in kw.items()}
        r = fn(*nargs, **nkw)
        if cost == "view":
            _launch(0 if _is_view_of(r, *nargs) else 1)
        elif callable(cost):
            _launch(cost(*nargs, **nkw))
        else:
            _launch(cost)
        if name == "where" and len(args) == 1:  # nonzero: the size is read back
            _d2h(8)
        return _wrap(r)

    f.__name__ = name
    f.__doc__ = f"numpy.{name} on device arrays (fake_cupy)."
    return f


#: numpy functions fastcnn calls through ``xp`` (CuPy has each one).
FUNCTIONS = ("empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like", "full_like",
             "arange", "concatenate", "stack", "matmul", "tensordot", "einsum", "dot", "multiply",
             "add", "subtract", "divide", "sqrt", "exp", "log", "abs", "maximum", "minimum", "where",
             "argsort", "argpartition", "argmax", "ascontiguousarray",
             "clip", "sum", "mean", "isfinite", "isnan", "allclose", "array_equal", "pad", "square",
             "log1p", "expm1", "tanh", "sign")
for _n in FUNCTIONS:
    globals()[_n] = _function(_n)
del _n


def take_along_axis(a, indices, axis):
    """As CuPy writes it: an ``arange`` per other axis, then one fancy-indexing gather, whose
    out-of-range indices wrap around (NumPy raises)."""
    aa, ia = _dev(a), _dev(indices)
    if isinstance(aa, np.ndarray) and isinstance(ia, np.ndarray) and axis is not None and aa.shape[axis]:
        ia = ia % aa.shape[axis]
    r = np.take_along_axis(aa, ia, axis)
    _launch(max(1, aa.ndim))
    return _wrap(r)


#: type information, the same objects as NumPy's (as in CuPy): host values, no device array.
finfo, iinfo = np.finfo, np.iinfo


def __getattr__(name):
    raise AttributeError(f"fake_cupy has no {name!r}: fastcnn never used it before; if CuPy (oldest supported "
                         "release: fastcnn/testing/cupy_manifest.json) has it, add it to fastcnn/testing/fake_cupy.py")


# --- custom kernels: CuPy's classes, NumPy twins ------------------------------------------------------
_twins: dict = {}


def register_twin(name: str, fn) -> None:
    """Register the NumPy twin of the custom kernel called ``name`` (stand-in only; CuPy has no such
    function). ``ElementwiseKernel``: ``fn(*inputs, *outputs)`` gets numpy arrays (scalars as numpy
    scalars of their declared type) and must fill the outputs in place. ``ReductionKernel``:
    ``fn(*inputs, axis=, keepdims=)`` returns the numpy result. ``RawKernel``: ``fn(grid, block, args)``
    with device arrays in ``args`` replaced by numpy arrays, which it fills in place."""
    _twins[name] = fn


def _twin(kind: str, name: str):
    fn = _twins.get(name)
    if fn is None:
        raise NotImplementedError(
            f"fake_cupy cannot run the CUDA C of {kind} {name!r}: register its NumPy twin with "
            f"fake_cupy.register_twin({name!r}, fn) (the C body is verified on a GPU by scripts/gpu_check.sh)")
    return fn


def _parse_params(params: str) -> list:
    """'float32 x, raw T y' -> [(is_raw, type, name), ...]."""
    out = []
    for p in (p.strip() for p in params.split(",")):
        if not p:
            continue
        words = p.split()
        raw = words[0] == "raw"
        words = words[1:] if raw else words
        if len(words) != 2:
            raise ValueError(f"cannot parse the kernel parameter {p!r}: write it as 'type name' or 'raw type name'")
        out.append((raw, words[0], words[1]))
    return out


def _resolve(ctype: str, types: dict):
    if ctype in types:
        return types[ctype]
    try:
        return np.dtype(ctype)
    except TypeError:
        raise TypeError(f"the kernel's type {ctype!r} is neither a dtype nor bound by an input") from None


class ElementwiseKernel:
    """CuPy's ``ElementwiseKernel(in_params, out_params, operation, name='kernel', ...)``; calling it
    runs the NumPy twin registered for ``name`` and counts one launch."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, **kwargs):
        bad = set(kwargs) - {"options", "loop_prep", "after_loop"}
        if bad:
            raise TypeError(f"ElementwiseKernel() got unexpected keyword argument(s) {', '.join(sorted(bad))}")
        self.in_params, self.out_params = _parse_params(in_params), _parse_params(out_params)
        self.operation, self.name, self.preamble = operation, name, preamble
        self.no_return, self.return_tuple = no_return, return_tuple
        self.nin, self.nout = len(self.in_params), len(self.out_params)
        self.nargs = self.nin + self.nout

    def __call__(self, *args, size=None, block_size=None):
        fn = _twin("ElementwiseKernel", self.name)
        if len(args) not in (self.nin, self.nargs):
            raise TypeError(f"{self.name}: wrong number of arguments: {len(args)} (expects {self.nin} or {self.nargs})")
        types, ins = {}, []
        for (raw, ctype, pname), v in zip(self.in_params, args):
            if isinstance(v, np.ndarray):
                raise _unsupported(v)
            if isinstance(v, ndarray):
                if len(ctype) == 1 and ctype not in types:
                    types[ctype] = v.dtype
                ins.append(v._a)
            else:
                ins.append(v)
        ins = [np.asarray(v, _resolve(c, types))[()] if not isinstance(v, np.ndarray) else v
               for (_, c, _), v in zip(self.in_params, ins)]
        shape = np.broadcast_shapes(*[v.shape for (raw, _, _), v in zip(self.in_params, ins)
                                      if isinstance(v, np.ndarray) and not raw]) if size is None else (size,)
        outs = []
        for i, (raw, ctype, pname) in enumerate(self.out_params):
            if len(args) == self.nargs:
                v = args[self.nin + i]
                if not isinstance(v, ndarray):
                    raise _unsupported(v) if isinstance(v, np.ndarray) else TypeError(f"{self.name}: output {pname} must be a device array")
                outs.append(v)
            else:
                outs.append(_wrap(np.empty(shape, _resolve(ctype, types))))
        _launch()
        fn(*ins, *[o._a for o in outs])
        if self.no_return:
            return None
        return tuple(outs) if (self.return_tuple or len(outs) > 1) else outs[0]


class ReductionKernel:
    """CuPy's ``ReductionKernel``; calling it runs the NumPy twin registered for ``name``
    (``fn(*inputs, axis=, keepdims=)`` returns the result) and counts one launch."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce_kernel", reduce_type=None, reduce_dims=True, preamble="", options=()):
        self.in_params, self.out_params = _parse_params(in_params), _parse_params(out_params)
        self.name = name
        self.nin = len(self.in_params)

    def __call__(self, *args, out=None, axis=None, keepdims=False, stream=None):
        fn = _twin("ReductionKernel", self.name)
        ins = [_dev(a) for a in args[:self.nin]]
        _launch()
        r = np.asarray(fn(*ins, axis=axis, keepdims=keepdims))
        if out is not None:
            out._a[...] = r
            return out
        return _wrap(r)


class RawKernel:
    """CuPy's ``RawKernel(code, name, ...)``; ``kernel(grid, block, args)`` runs the NumPy twin
    registered for ``name`` (``fn(grid, block, args)``, device arrays as numpy) and counts one launch."""

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False, *,
                 enable_cooperative_groups=False, jitify=False):
        self.code, self.name = code, name

    def __call__(self, grid, block, args, *, shared_mem=0):
        fn = _twin("RawKernel", self.name)
        _launch()
        fn(grid, block, tuple(_dev(a) for a in args))


# --- random: cupy.random.default_rng draws on the device -----------------------------------------
class _Generator:
    """CuPy's ``cupy.random.Generator`` (the methods fastcnn uses, with CuPy's keywords);
    NumPy's bit generator underneath, so the numbers differ from CuPy's (XORWOW)."""

    def __init__(self, bit_generator):
        self._rng = np.random.default_rng(bit_generator)

    def _out(self, r, out):
        _launch()
        if out is None:
            return _wrap(r)
        out._a[...] = r
        return out

    def random(self, size=None, dtype=np.float64, out=None):
        return self._out(self._rng.random(size, dtype=dtype), out)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return self._out(self._rng.standard_normal(size, dtype=dtype), out)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return self._out(self._rng.uniform(low, high, size).astype(dtype, copy=False), None)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return self._out(self._rng.integers(low, high, size, dtype=dtype, endpoint=endpoint), None)


def _default_rng(seed=None):
    return _Generator(seed)


random = SimpleNamespace(default_rng=_default_rng, Generator=_Generator)


# --- cuda: one fake device, one stream ------------------------------------------------------------
class _Stream:
    """A stream; work is done when it is queued, so synchronising only counts."""

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.ptr = 0 if null else id(self)

    def synchronize(self) -> None:
        _sync()


_stream = _Stream(null=True)


class _Device:
    """``cupy.cuda.Device(device=None)``: the one device, 0."""

    def __init__(self, device=None):
        if device not in (None, 0):
            raise RuntimeError(f"fake_cupy has one device (0), not {device}")
        self.id = 0

    def synchronize(self) -> None:
        _sync()


def _device_count() -> int:
    return 1


def _device_properties(device: int) -> dict:
    if device != 0:
        raise RuntimeError(f"fake_cupy has one device (0), not {device}")
    return {"name": b"fake_cupy (NumPy, no GPU)", "totalGlobalMem": 0}


cuda = SimpleNamespace(
    runtime=SimpleNamespace(getDeviceCount=_device_count, getDeviceProperties=_device_properties,
                            deviceSynchronize=_sync),
    get_current_stream=lambda device_id=-1: _stream,
    Stream=_Stream,
    Device=_Device,
    MemoryPointer=_MemoryPointer,
    MemoryPool=_MemoryPool,
)


def _as_strided(x, shape=None, strides=None):
    return _wrap(np.lib.stride_tricks.as_strided(_dev(x), shape=shape, strides=strides))


lib = SimpleNamespace(stride_tricks=SimpleNamespace(as_strided=_as_strided))


def _scatter_add(a, slices, value):
    """``a[slices] += value`` with repeated indices accumulated (cupyx.scatter_add): one launch."""
    _launch()
    np.add.at(_dev(a), _index(slices), _dev(value) if isinstance(value, (ndarray, np.ndarray)) else value)


#: What fastcnn imports as ``cupyx`` (see ``backend.scatter_add``).
cupyx = SimpleNamespace(scatter_add=_scatter_add)
