"""One contiguous buffer per model for its weights (and one for their gradients), on the GPU.

    flat = flatten(model)      # after model.to(cupy): every Parameter's .data / .grad becomes a view
    flat.data                  # (P + B,) the parameters, then the float buffers (batch-norm statistics)
    flat.grad                  # (P,) the gradients, in the parameters' order
    flat.params                # (P,) = flat.data[:P]

An optimizer step or an EMA update over the whole model is then ONE kernel over one array
(fastcnn.optim, fastcnn.ema), instead of a dozen per parameter. Layers keep working on their
arrays as before: the views are written in place, never rebound. ``find(params)`` returns the
flat buffer that holds exactly these parameters (in this order) while they are still its views;
``model.to(...)`` rebinds them, after which ``find`` returns None and callers fall back.
Only for GPU arrays: on the CPU the per-parameter code is kept (its Numba kernels are as fast).
"""
from __future__ import annotations

import weakref

import numpy as np

from .. import backend

#: id of the first parameter -> weak reference to its FlatParameters (the model holds the object)
_registry: dict = {}


class FlatParameters:
    """The flat buffers of ``params`` (and of ``buffers``: (layer, name) pairs of float arrays)."""

    def __init__(self, params, buffers=()):
        self.param_list = list(params)
        self.buffer_slots = list(buffers)
        first = self.param_list[0].data
        xp, dtype = backend.array_module(first), first.dtype
        arrays = [p.data for p in self.param_list] + [getattr(l, n) for l, n in self.buffer_slots]
        sizes = [int(a.size) for a in arrays]
        self.n_params = sum(sizes[:len(self.param_list)])
        self.data = xp.empty(sum(sizes), dtype=dtype)
        self.grad = xp.zeros(self.n_params, dtype=dtype)
        self.params = self.data[:self.n_params]
        views, o = [], 0
        for a, n in zip(arrays, sizes):
            v = self.data[o:o + n].reshape(a.shape)
            v[...] = a
            views.append((v, o, n))
            o += n
        for p, (v, o, n) in zip(self.param_list, views):
            p.data, p.grad = v, self.grad[o:o + n].reshape(v.shape)
        for (layer, name), (v, _, _) in zip(self.buffer_slots, views[len(self.param_list):]):
            setattr(layer, name, v)
        self._data_views = [v for v, _, _ in views]
        self._grad_views = [p.grad for p in self.param_list]

    def valid(self) -> bool:
        """Whether every parameter and buffer is still a view of these buffers (nobody rebound them)."""
        arrays = [p.data for p in self.param_list] + [getattr(l, n) for l, n in self.buffer_slots]
        return (all(a is v for a, v in zip(arrays, self._data_views))
                and all(p.grad is g for p, g in zip(self.param_list, self._grad_views)))

    def holds(self, params) -> bool:
        params = list(params)
        return len(params) == len(self.param_list) and all(a is b for a, b in zip(params, self.param_list))

    def arrays(self) -> list:
        """The live arrays, parameters then buffers (the views), in the buffer's order."""
        return list(self._data_views)


def flatten(model) -> FlatParameters | None:
    """Put ``model``'s parameters and floating-point buffers into one flat buffer (GPU arrays only;
    None on the CPU or for a model without parameters). Done by ``Sequential.to`` for GPU backends."""
    params = model.parameters()
    if not params or isinstance(params[0].data, np.ndarray):
        return None
    dtype = params[0].data.dtype
    if any(p.data.dtype != dtype for p in params):
        return None
    buffers = [(l, n) for l in model.layers for n in l.buffer_names
               if np.dtype(getattr(l, n).dtype) == dtype]
    flat = FlatParameters(params, buffers)
    model._flat = flat  # the model owns it; the registry only points to it
    _registry[id(params[0])] = weakref.ref(flat)
    return flat


def find(params) -> FlatParameters | None:
    """The flat buffer holding exactly ``params`` (in order) as live views, or None."""
    params = list(params)
    if not params:
        return None
    ref = _registry.get(id(params[0]))
    flat = ref() if ref is not None else None
    if flat is None or not flat.holds(params) or not flat.valid():
        return None
    return flat


def for_model(model) -> FlatParameters | None:
    """The model's flat buffer when it is current (parameters and buffers still its views)."""
    return find(model.parameters())
