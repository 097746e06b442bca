"""The pieces every layer is made of: Parameter, Layer, and the shape error."""
from __future__ import annotations

import numpy as np

from .. import backend


class ShapeError(ValueError):
    """Shapes that do not chain, reported with the layer that cannot take them."""


class Parameter:
    """A learnable array and its gradient (same shape, same dtype, same device).

    ``data`` is updated by an optimizer; ``grad`` is filled by the owning layer's
    ``backward`` (overwritten, not accumulated) and cleared by ``zero_grad``.
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data, name: str = ""):
        self.data = data
        self.grad = backend.array_module(data).zeros_like(data)
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self) -> int:
        return int(self.data.size)

    def __repr__(self) -> str:
        return f"Parameter({self.name}, shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Layer:
    """Base class: ``forward(x) -> y``, ``backward(dy) -> dx``.

    Subclasses list their parameters in ``param_names`` (e.g. ``("weight", "bias")``)
    and any non-learned state that a checkpoint must keep in ``buffer_names``.
    ``training`` switches train/eval behaviour (dropout, batch-norm).
    ``needs_input_grad`` is cleared by Sequential for the first layer, whose dx
    nobody reads, so it can skip that work.
    """

    param_names: tuple = ()
    buffer_names: tuple = ()
    #: "he" / "xavier" for layers with weights; Sequential resolves "auto".
    init: object = None

    def __init__(self):
        self.training = True
        self.needs_input_grad = True
        self.name = type(self).__name__

    # --- the two passes -------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def check_dtype(self, x) -> None:
        """Raise TypeError unless ``x`` and every parameter (data and grad) share one dtype:
        a float64 input through a float32 layer, or ``.data`` replaced by an array of another
        dtype, would otherwise give silently rounded gradients. fastcnn never casts silently."""
        for p in self.parameters():
            if p.data.dtype != x.dtype:
                raise TypeError(f"{self.name}: the input is {x.dtype} but its {p.name or 'parameter'} is "
                                f"{p.data.dtype}; cast the input (x.astype(...)) or the layer/model "
                                f"(.to(xp, dtype)) so that they match")
            if p.grad.dtype != p.data.dtype or p.grad.shape != p.data.shape:
                raise TypeError(f"{self.name}: its {p.name or 'parameter'} is {p.data.dtype} {tuple(p.data.shape)} "
                                f"but its gradient buffer is {p.grad.dtype} {tuple(p.grad.shape)} (was .data "
                                f"replaced?); change a layer's dtype with .to(xp, dtype), which recreates both")

    # --- shapes ---------------------------------------------------------------
    def output_shape(self, in_shape: tuple) -> tuple:
        """Per-sample output shape for a per-sample input shape (no batch axis).

        Raises ShapeError naming this layer when it cannot take ``in_shape``.
        """
        return tuple(in_shape)

    # --- parameters and state -------------------------------------------------
    def parameters(self) -> list:
        return [getattr(self, n) for n in self.param_names if getattr(self, n) is not None]

    def buffers(self) -> dict:
        return {n: getattr(self, n) for n in self.buffer_names}

    def reset_parameters(self, rng: np.random.Generator, scheme: str) -> None:
        """Draw new weights with ``scheme`` ("he" or "xavier"); no-op without weights."""

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, xp, dtype=None):
        """Move parameters and buffers to ``xp`` (a module or a backend name), optionally casting."""
        if isinstance(xp, str):
            xp = backend.get(xp)
        for p in self.parameters():
            d = backend.to_device(p.data, xp)
            p.data = d.astype(dtype) if dtype is not None else d
            p.grad = xp.zeros_like(p.data)
        for n in self.buffer_names:
            d = backend.to_device(getattr(self, n), xp)
            setattr(self, n, d.astype(dtype) if dtype is not None else d)
        self.clear_cache()
        return self

    def clear_cache(self) -> None:
        """Forget what forward kept for backward (after moving or casting)."""

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def check_grad(layer, dy, cache, out) -> None:
    """Raise unless ``dy`` fits the output of ``layer``'s last forward (``out`` = (shape, dtype)):
    a layer whose backward runs a kernel must never hand it a gradient of another shape."""
    if cache is None or out is None:
        raise RuntimeError(f"{layer.name}: backward needs a forward first (nothing is cached)")
    shape, dtype = out
    if tuple(getattr(dy, "shape", ())) != shape or getattr(dy, "dtype", None) != dtype:
        raise ShapeError(f"{layer.name}: backward expects dy like the forward's output, {shape} {dtype}, got "
                         f"{tuple(getattr(dy, 'shape', ()))} {getattr(dy, 'dtype', type(dy).__name__)}")


def pair(v, what: str) -> tuple:
    """An int or a pair of ints as a pair; anything else is a clear error."""
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, (int, np.integer)) for i in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{what} must be an int or a pair of ints, got {v!r}")


def fan_init(rng: np.random.Generator, shape: tuple, fan_in: int, fan_out: int, scheme, dtype=np.float32):
    """Weights for ``scheme``: He normal N(0, 2/fan_in), Xavier uniform U(±sqrt(6/(fan_in+fan_out))),
    or, for a float, N(0, scheme²)."""
    if scheme == "he":
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif scheme == "xavier":
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-lim, lim, size=shape)
    elif isinstance(scheme, (int, float)) and not isinstance(scheme, bool):
        w = rng.standard_normal(shape) * float(scheme)
    else:
        raise ValueError(f"unknown init {scheme!r}: use 'he', 'xavier', 'auto' or a standard deviation")
    return w.astype(dtype)
