"""An exponential moving average (EMA) of a model's weights, for evaluation and checkpoints.

    ema = EMA(model, decay=0.999)
    ...  optimizer.step(); ema.update()     # after every training step
    with ema.applied():                     # the averaged weights in place of the live ones
        evaluate(model, ...)                # (and model.save(...))

After the t-th update (t = 1, 2, ...) every parameter and floating-point buffer
(batch-norm running statistics) w has a shadow

    s_t = d_t · s_{t-1} + (1 − d_t) · w_t,    s_0 = w_0 (the weights at construction),
    d_t = min(decay, (1 + t) / (10 + t))      with warm-up (TensorFlow's num_updates rule),
    d_t = decay                               without it.

The warm-up keeps the early average from being dominated by the random initial weights
in short runs (a one-epoch schedule has a few hundred steps). Shadows live on the
model's device, in its dtype, and are updated in place with the array module of the
weights (NumPy or CuPy). ``applied()`` copies the shadows into the parameters' own
arrays (so fused layers sharing the Parameter objects see them too) and copies the
live weights back when the block ends, even on an error.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from . import backend, gpu_kernels
from .nn import flat as flat_params


class EMA:
    """A shadow copy of ``model``'s parameters and float buffers, averaged by ``update()``.

    decay: in (0, 1), e.g. 0.999 (≈ the last 1,000 steps); warmup: use d_t above.
    """

    def __init__(self, model, decay: float, warmup: bool = True):
        decay = float(decay)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), e.g. 0.999; got {decay}")
        self.model, self.decay, self.warmup = model, decay, bool(warmup)
        self.updates = 0
        self._flat = self._flat_shadow()
        if self._flat is None:
            self.shadow = [a.copy() for a in self._arrays()]

    def _flat_shadow(self):
        """On the GPU, when the model's weights and buffers are one flat buffer (fastcnn.nn.flat):
        one flat shadow, ``self.shadow`` being its views, so ``update()`` is one kernel."""
        flat = flat_params.for_model(self.model) if hasattr(self.model, "layers") else None
        if flat is None or [id(a) for a in flat.arrays()] != [id(a) for a in self._arrays()]:
            return None
        data = flat.data.copy()
        self.shadow, o = [], 0
        for a in flat.arrays():
            self.shadow.append(data[o:o + a.size].reshape(a.shape))
            o += a.size
        return flat, data

    def compile_kernels(self) -> None:
        """Compile the GPU update kernel now (on one-element scratch arrays; nothing changes)."""
        if self._flat is not None:
            xp = backend.array_module(self._flat[1])
            one = xp.zeros(1, self._flat[1].dtype)
            gpu_kernels.kernel(xp, "ema")(one, 0.5, xp.zeros(1, one.dtype))

    def _arrays(self) -> list:
        """The live arrays averaged: every parameter's data, then every floating-point buffer."""
        out = [p.data for p in self.model.parameters()]
        for layer in self.model.layers:
            out += [b for b in layer.buffers().values() if np.dtype(b.dtype).kind == "f"]
        return out

    def current_decay(self) -> float:
        """d_t for the next update (t = updates + 1)."""
        t = self.updates + 1
        return min(self.decay, (1.0 + t) / (10.0 + t)) if self.warmup else self.decay

    def update(self) -> None:
        """s ← s − (1 − d)(s − w) for every shadow s of live array w (in place, no new arrays)."""
        d = self.current_decay()
        if self._flat is not None and self._flat[0].valid():
            flat, data = self._flat
            gpu_kernels.kernel(backend.array_module(data), "ema")(flat.data, 1.0 - d, data)
            self.updates += 1
            return
        for s, w in zip(self.shadow, self._arrays()):
            s -= s.dtype.type(1.0 - d) * (s - w)
        self.updates += 1

    def copy_to(self, arrays) -> None:
        for s, w in zip(self.shadow, arrays):
            w[...] = s

    @contextmanager
    def applied(self):
        """The block sees the averaged weights in the model; the live ones come back after it."""
        live = self._arrays()
        saved = [w.copy() for w in live]
        self.copy_to(live)
        try:
            yield self.model
        finally:
            for w, v in zip(live, saved):
                w[...] = v

    # --- checkpoints -----------------------------------------------------------------
    def state_dict(self, prefix: str = "ema.") -> dict:
        """Host arrays: the shadows, the live weights (a checkpoint's model.npz holds the
        averaged ones) and the update count."""
        st = {f"{prefix}shadow.{i}": backend.as_numpy(s) for i, s in enumerate(self.shadow)}
        st.update({f"{prefix}live.{i}": backend.as_numpy(w) for i, w in enumerate(self._arrays())})
        st[f"{prefix}updates"] = np.asarray(self.updates, np.int64)
        return st

    def load_state_dict(self, state: dict, prefix: str = "ema.") -> None:
        """Restore the shadows and put the live weights back into the model."""
        live = self._arrays()
        if f"{prefix}updates" not in state or f"{prefix}shadow.{len(live) - 1}" not in state:
            raise ValueError("the checkpoint holds no EMA state for this model (was it trained with --ema?)")
        for i, (s, w) in enumerate(zip(self.shadow, live)):
            xp = backend.array_module(w)
            s[...] = backend.to_device(np.asarray(state[f"{prefix}shadow.{i}"], s.dtype), xp)
            w[...] = backend.to_device(np.asarray(state[f"{prefix}live.{i}"], w.dtype), xp)
        self.updates = int(state[f"{prefix}updates"])

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, warmup={self.warmup}, updates={self.updates})"
