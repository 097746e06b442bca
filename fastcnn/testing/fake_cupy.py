"""A strict, test-only stand-in for CuPy: NumPy underneath, CuPy's rules on top.

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
  a one-element array is allowed (CuPy allows it: a synchronising copy).

It offers exactly the surface fastcnn uses (``FUNCTIONS``, ``METHODS``, ``cuda``,
``cupyx``, ``lib.stride_tricks``, the memory pool), nothing more: a missing name is an
``AttributeError`` that says to add it here if CuPy has it.

What it cannot show: real memory limits, kernel launch failures, asynchronous
errors, CuPy's own numerics (cuBLAS summation order) — ``scripts/gpu_check.sh`` runs
the same path on a real GPU for those.
"""
from __future__ import annotations

import weakref
from types import SimpleNamespace

import numpy as np

#: Shown once per process by ``fastcnn.backend`` when the stand-in is used.
BANNER = ("fastcnn: FASTCNN_FAKE_CUPY=1: backend 'cupy' is fastcnn.testing.fake_cupy, a NumPy stand-in "
          "for CuPy; no GPU is used in this run")

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
            "a NumPy array explicitly.")

# dtypes and constants: CuPy re-exports numpy's
float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, intp = np.int8, np.int16, np.int32, np.int64, np.intp
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
bool_, dtype, inf, nan, newaxis = np.bool_, np.dtype, np.inf, np.nan, np.newaxis


# --- the memory pool: live bytes of the arrays this module allocated -----------------------------
class MemoryPool:
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

    def free_all_blocks(self) -> None:
        self._total = self._used


_pool = MemoryPool()


def get_default_memory_pool() -> MemoryPool:
    return _pool


#: Device -> host transfers so far (.get(), asnumpy, float(), int(), bool(), item(), printing):
#: each one a synchronisation on a real GPU. Tests compare it between runs of different lengths.
transfers = 0


def _transfer():
    global transfers
    transfers += 1


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
    """An index: device arrays unwrapped; numpy arrays and lists allowed (CuPy uploads them)."""
    if isinstance(idx, ndarray):
        return idx._a
    if isinstance(idx, tuple):
        return tuple(_index(i) for i in idx)
    return idx


def _binop(name, reflected=False):
    op = getattr(np.ndarray, name)

    def f(self, other):
        if not isinstance(other, (ndarray, int, float, complex, bool, np.generic)):
            if isinstance(other, np.ndarray):
                raise _unsupported(other)
            return NotImplemented
        o = other._a if isinstance(other, ndarray) else other
        return _wrap(op(self._a, o))

    f.__name__ = name
    return f


def _inplace(name):
    op = getattr(np.ndarray, name)

    def f(self, other):
        op(self._a, _dev(other))
        return self

    f.__name__ = name
    return f


def _method(name):
    def f(self, *args, **kw):
        return _wrap(getattr(self._a, name)(*_dev(args), **{k: _dev(v) for k, v in kw.items()}))

    f.__name__ = name
    return f


#: ndarray methods fastcnn calls (CuPy has each, with numpy's meaning).
METHODS = ("reshape", "transpose", "sum", "mean", "max", "min", "argmax", "argmin", "any", "all",
           "copy", "ravel", "squeeze", "clip", "var", "std", "prod", "cumsum", "dot", "view",
           "swapaxes", "nonzero", "round")


class ndarray:  # noqa: N801  (CuPy's name)
    """A device array: a numpy array that will not be used as one by accident."""

    __slots__ = ("_a", "__weakref__")
    __array_ufunc__ = None  # numpy operators defer to ours; numpy ufuncs on it raise TypeError
    __array_priority__ = 100

    def __init__(self, *args, **kw):
        raise TypeError("fake_cupy.ndarray is not constructed directly: use cupy.empty / zeros / asarray")

    # -- leaving the device: only explicitly --------------------------------------------------
    def __array__(self, *args, **kw):
        raise TypeError(IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was called on a device array (fake_cupy): "
                        f"call the backend's xp.{func.__name__}, or move it to the host with .get()")

    def get(self, stream=None, order="C", out=None):
        """A numpy copy of the array (device -> host)."""
        _transfer()
        return np.array(self._a, order=order, copy=True)

    def tolist(self):
        _transfer()
        return self._a.tolist()

    def item(self):
        _transfer()
        return self._a.item()

    def __float__(self):
        _transfer()
        return float(self._a)

    def __int__(self):
        _transfer()
        return int(self._a)

    def __bool__(self):
        _transfer()
        return bool(self._a)

    def __format__(self, spec):
        _transfer()
        return format(self._a if self._a.ndim else self._a.item(), spec)

    def __repr__(self):
        return repr(self._a).replace("array(", "fake_cupy.array(", 1)

    def __str__(self):
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
    def __cuda_array_interface__(self) -> dict:
        """Version 3 of the CUDA Array Interface; the pointer is host memory (simulator only)."""
        a = self._a
        return {"shape": a.shape, "typestr": a.dtype.str, "version": 3,
                "data": (a.__array_interface__["data"][0] if a.size else 0, not a.flags.writeable),
                "strides": None if a.flags.c_contiguous else a.strides, "stream": None}

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __getitem__(self, idx):
        return _wrap(self._a[_index(idx)])

    def __setitem__(self, idx, value):
        self._a[_index(idx)] = _dev(value)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return _wrap(self._a.astype(dtype, order=order, copy=copy))

    def fill(self, value):
        self._a.fill(value)

    __hash__ = None

    def __neg__(self):
        return _wrap(-self._a)

    def __pos__(self):
        return _wrap(+self._a)

    def __abs__(self):
        return _wrap(abs(self._a))

    def __invert__(self):
        return _wrap(~self._a)


for _n in METHODS:
    setattr(ndarray, _n, _method(_n))
for _n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(ndarray, f"__{_n}__", _binop(f"__{_n}__"))
    setattr(ndarray, f"__r{_n}__", _binop(f"__r{_n}__"))
    setattr(ndarray, f"__i{_n}__", _inplace(f"__i{_n}__"))
for _n in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_n}__", _binop(f"__{_n}__"))
del _n


# --- crossing between host and device ------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    """Host (or device) data -> a device array (no copy when already on the device with that dtype)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    return _wrap(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return _wrap(np.array(a._a, dtype=dtype, copy=copy, order=order))
    return _wrap(np.array(a, dtype=dtype, order=order, copy=True))


def asnumpy(a, stream=None, order="C", out=None):
    """A numpy array for a device (or host) array."""
    if isinstance(a, ndarray):
        return a.get(order=order)
    return np.asarray(a, order=order)


def _function(name):
    fn = getattr(np, name)

    def f(*args, **kw):
        return _wrap(fn(*_dev(args), **{k: _dev(v) for k, v in kw.items()}))

    f.__name__ = name
    f.__doc__ = f"numpy.{name} on device arrays (fake_cupy)."
    return f


#: numpy functions fastcnn calls through ``xp`` (CuPy has each one).
FUNCTIONS = ("empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like", "full_like",
             "arange", "concatenate", "stack", "matmul", "tensordot", "einsum", "dot", "multiply",
             "add", "subtract", "divide", "sqrt", "exp", "log", "abs", "maximum", "minimum", "where",
             "take_along_axis", "put_along_axis", "argsort", "argpartition", "argmax", "ascontiguousarray",
             "clip", "sum", "mean", "isfinite", "isnan", "allclose", "array_equal", "pad", "square",
             "log1p", "expm1", "tanh", "sign")
for _n in FUNCTIONS:
    globals()[_n] = _function(_n)
del _n


#: type information, the same objects as NumPy's (as in CuPy): host values, no device array.
finfo, iinfo = np.finfo, np.iinfo


def __getattr__(name):
    raise AttributeError(f"fake_cupy has no {name!r}: fastcnn never used it before; if CuPy has it, "
                         "add it to fastcnn/testing/fake_cupy.py (FUNCTIONS or METHODS)")


# --- random: cupy.random.default_rng draws on the device -----------------------------------------
class _Generator:
    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64):
        return _wrap(self._rng.random(size, dtype=dtype))

    def standard_normal(self, size=None, dtype=np.float64):
        return _wrap(self._rng.standard_normal(size, dtype=dtype))

    def uniform(self, low=0.0, high=1.0, size=None):
        return _wrap(self._rng.uniform(low, high, size))

    def integers(self, low, high=None, size=None, dtype=np.int64):
        return _wrap(self._rng.integers(low, high, size, dtype=dtype))


random = SimpleNamespace(default_rng=_Generator)


# --- cuda: one fake device, one stream ------------------------------------------------------------
class Stream:
    """The current stream: work is done when it is queued, so synchronising is a no-op."""
    ptr = 0

    def synchronize(self) -> None:
        pass


_stream = Stream()


def _device_count() -> int:
    return 1


def _device_properties(i: int) -> dict:
    if i != 0:
        raise RuntimeError(f"fake_cupy has one device (0), not {i}")
    return {"name": b"fake_cupy (NumPy, no GPU)", "totalGlobalMem": 0}


cuda = SimpleNamespace(
    runtime=SimpleNamespace(getDeviceCount=_device_count, getDeviceProperties=_device_properties),
    get_current_stream=lambda: _stream,
    Stream=Stream,
)


def _as_strided(x, shape=None, strides=None):
    return _wrap(np.lib.stride_tricks.as_strided(_dev(x), shape=shape, strides=strides))


lib = SimpleNamespace(stride_tricks=SimpleNamespace(as_strided=_as_strided))


def _scatter_add(a, indices, values):
    """``a[indices] += values`` with repeated indices accumulated (cupyx.scatter_add)."""
    np.add.at(_dev(a), _index(indices), _dev(values) if isinstance(values, (ndarray, np.ndarray)) else values)


#: What fastcnn imports as ``cupyx`` (see ``backend.scatter_add``).
cupyx = SimpleNamespace(scatter_add=_scatter_add)
