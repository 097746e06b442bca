"""Optimizers: SGD (momentum, Nesterov), Adam and AdamW, with weight decay.

Names and formulas follow ``torch.optim``. With ``g`` the gradient, ``w`` the
weight, ``lr`` the learning rate, ``wd`` the weight decay and ``t`` the step:

    SGD     g = grad + wd·w;  v = μ·v + g;  u = g + μ·v (nesterov) or v;  w -= lr·u
            (μ = 0: w -= lr·g)
    Adam    g = grad + wd·w                      (L2 added to the gradient)
            m = β1·m + (1-β1)·g;   v = β2·v + (1-β2)·g²
            w -= lr/(1-β1ᵗ) · m / (sqrt(v)/sqrt(1-β2ᵗ) + eps)
    AdamW   w -= lr·wd·w  (decoupled), then the Adam update with g = grad

Every update is written in place into ``p.data`` (the arrays are shared with the
layers, so ``p.data`` is never rebound), with the module of the array
(numpy or cupy), in the parameter's dtype: scalars are cast to it, so float32
stays float32. State buffers (``v``; ``m``, ``v``) are allocated once per
parameter on the first step; one scratch array per dtype, as long as the
largest parameter, is shared by all parameters, so a step makes no temporaries.
Gradients are read, never modified.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from . import backend, gpu_kernels
from .nn import flat as flat_params


def _check_lr(lr):
    if not isinstance(lr, (int, float, np.integer, np.floating)) or not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"learning rate must be a finite number > 0, got {lr!r}")


def _check_unit(value, what):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value!r}")


def _check_wd(wd):
    if not wd >= 0 or not math.isfinite(wd):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {wd!r}")


class Optimizer:
    """Base class: holds parameters, ``lr`` (set by schedules), the step count and state.

    Subclasses name their per-parameter buffers in ``state_names`` and implement
    ``_update(i, p, f)``, where ``f`` casts a Python scalar to the parameter's dtype.
    """

    state_names: tuple = ()

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list: pass model.parameters()")
        _check_lr(lr)
        self.lr = float(lr)
        self.steps = 0
        self.state = {n: [None] * len(self.params) for n in self.state_names}
        self._work = {}

    # --- the public interface -------------------------------------------------
    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        if self._flat_step():
            return
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self._update(i, p, p.data.dtype.type)

    def compile_kernels(self) -> None:
        """Compile the GPU update kernel now (on a one-element scratch buffer; nothing changes) and
        allocate the flat state, so that neither happens inside a timed step. A no-op on the CPU."""
        flat = self._flat_buffer()
        if flat is not None:
            self._flat_state(flat)
            xp = backend.array_module(flat.data)
            one = [xp.zeros(1, flat.data.dtype) for _ in range(4)]
            self._flat_kernel(xp, *one, self.steps + 1)

    # --- the GPU path: one kernel over the flat parameter buffer (fastcnn.nn.flat) -----
    def _flat_buffer(self):
        """The flat buffer holding these parameters as views (GPU arrays only), else None."""
        if isinstance(self.params[0].data, np.ndarray):
            return None
        return flat_params.find(self.params)

    def _flat_state(self, flat):
        """One flat buffer per state name, the per-parameter entries of ``self.state`` being its views
        (rebuilt, keeping their values, after load_state_dict or a move)."""
        cached = getattr(self, "_flat_cache", None)
        if cached is not None and cached[0] is flat and all(
                self.state[n][i] is v for n, views in cached[2].items() for i, v in enumerate(views)):
            return cached[1]
        xp = backend.array_module(flat.data)
        bufs, views = {}, {}
        for n in self.state_names:
            buf = xp.zeros(flat.n_params, flat.data.dtype)
            vs, o = [], 0
            for i, p in enumerate(self.params):
                k = p.data.size
                v = buf[o:o + k].reshape(p.data.shape)
                old = self.state[n][i]
                if old is not None and backend.array_module(old) is xp and old.dtype == v.dtype:
                    v[...] = old  # on the device already (load_state_dict): no round trip
                elif old is not None:
                    v[...] = backend.to_device(backend.as_numpy(old).astype(v.dtype), xp)
                self.state[n][i] = v
                vs.append(v)
                o += k
            bufs[n], views[n] = buf, vs
        self._flat_cache = (flat, bufs, views)
        return bufs

    def _flat_step(self) -> bool:
        """On the GPU, with the parameters in one flat buffer: the whole step as one kernel."""
        flat = self._flat_buffer()
        if flat is None:
            return False
        self.steps += 1
        bufs = self._flat_state(flat)
        xp = backend.array_module(flat.data)
        self._flat_kernel(xp, flat.grad, flat.params, *[bufs[n] for n in self.state_names], self.steps)
        return True

    def _flat_kernel(self, xp, g, w, *state_and_t):
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for p in self.params:
            if p.grad is not None:
                p.grad.fill(0)

    def state_dict(self) -> dict:
        """Flat dict for ``np.savez`` (no pickle): ``step``, ``lr`` and ``<buffer>.<index>`` host arrays."""
        out = {"step": int(self.steps), "lr": float(self.lr)}
        for name, bufs in self.state.items():
            for i, b in enumerate(bufs):
                if b is not None:
                    out[f"{name}.{i}"] = backend.as_numpy(b).copy()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (values may be 0-d arrays, as ``np.load`` gives them).

        Buffers are moved to each parameter's device and dtype. Unknown keys,
        indices past the parameter list and shape mismatches are ValueErrors.
        """
        for key in ("step", "lr"):
            if key not in state:
                raise ValueError(f"optimizer state has no {key!r} entry")
        bufs = {n: [None] * len(self.params) for n in self.state_names}
        for key, value in state.items():
            if key in ("step", "lr"):
                continue
            name, _, idx = key.partition(".")
            if name not in bufs or not idx.isdigit() or int(idx) >= len(self.params):
                raise ValueError(
                    f"unexpected optimizer state entry {key!r} for {type(self).__name__} with "
                    f"{len(self.params)} parameters (expected step, lr and "
                    f"{', '.join(n + '.<i>' for n in self.state_names) or 'no buffers'})")
            p = self.params[int(idx)]
            value = np.asarray(value)
            if value.shape != tuple(p.data.shape):
                raise ValueError(f"optimizer state {key!r} has shape {value.shape}, "
                                 f"parameter {int(idx)} has shape {tuple(p.data.shape)}")
            xp = backend.array_module(p.data)
            bufs[name][int(idx)] = backend.to_device(value.astype(p.data.dtype), xp)
        lr = float(np.asarray(state["lr"]))
        if not (lr >= 0 and math.isfinite(lr)):  # 0 is allowed: a schedule may have driven it there
            raise ValueError(f"optimizer state has lr={lr!r}; it must be a finite number >= 0")
        self.steps = int(np.asarray(state["step"]))
        self.lr = lr
        self.state = bufs

    # --- helpers for subclasses -----------------------------------------------
    def _update(self, i, p, f) -> None:
        raise NotImplementedError

    def _buf(self, name, i, p):
        """State buffer ``name`` of parameter ``i``: zeros on first use, and moved
        with the parameter if the model was moved (``model.to``) since."""
        b = self.state[name][i]
        xp = backend.array_module(p.data)
        if b is None:
            b = xp.zeros_like(p.data)
        elif backend.array_module(b) is not xp or b.dtype != p.data.dtype:
            b = backend.to_device(backend.as_numpy(b).astype(p.data.dtype), xp)
        self.state[name][i] = b
        return b

    def _scratch(self, p, k=0):
        """Scratch array ``k`` shaped like ``p.data``: a view into one flat buffer per
        (device, dtype, k), long enough for the largest parameter; its content is garbage."""
        xp = backend.array_module(p.data)
        key = (backend.name_of(xp), p.data.dtype.str, k)
        w = self._work.get(key)
        if w is None or w.size < p.data.size:
            n = max(q.data.size for q in self.params)
            w = self._work[key] = xp.empty(n, dtype=p.data.dtype)
        return w[: p.data.size].reshape(p.data.shape)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self._hyper().items())
        return f"{type(self).__name__}({len(self.params)} params, {hp})"

    def _hyper(self) -> dict:
        return {"lr": self.lr}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    ``g = grad + wd·w;  v = μ·v + g;  w -= lr·(g + μ·v if nesterov else v)``;
    with ``momentum=0``: ``w -= lr·g``. The first step's ``v`` is ``g`` (v starts at 0).
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        _check_unit(momentum, "momentum")
        _check_wd(weight_decay)
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0 (e.g. momentum=0.9)")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)
        self.state_names = ("v",) if momentum else ()
        super().__init__(params, lr)

    def _update(self, i, p, f):
        w, g = p.data, p.grad
        xp = backend.array_module(w)
        s = self._scratch(p)
        if self.weight_decay:
            xp.multiply(w, f(self.weight_decay), out=s)         # s = wd·w
            s += g                                              # g = grad + wd·w
            g = s
        if self.momentum:
            v = self._buf("v", i, p)
            v *= f(self.momentum)
            v += g                                              # v = μ·v + g
            if self.nesterov:                                   # w -= lr·g + lr·μ·v
                xp.multiply(g, f(self.lr), out=s)
                w -= s
                g, lr = v, self.lr * self.momentum
            else:
                g, lr = v, self.lr
        else:
            lr = self.lr
        xp.multiply(g, f(lr), out=s)
        w -= s

    def _flat_kernel(self, xp, g, w, *rest):
        v = rest[0] if self.momentum else xp.empty(1, w.dtype)  # raw: not read without momentum
        mode = 0 if not self.momentum else (2 if self.nesterov else 1)
        gpu_kernels.kernel(xp, "sgd")(g, self.lr, self.lr * self.momentum, self.momentum, self.weight_decay,
                                      mode, w, v)

    def _hyper(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` is L2 added to the gradient (torch.optim.Adam).

    ``g = grad + wd·w;  m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;``
    ``w -= lr/(1-β1ᵗ) · m / (sqrt(v)/sqrt(1-β2ᵗ) + eps)``
    """

    state_names = ("m", "v")
    decoupled = False
    #: on the CPU, update with one Numba loop per parameter (same results, bit for bit)
    cpu_kernel = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_unit(betas[0], "betas[0] (beta1)")
        _check_unit(betas[1], "betas[1] (beta2)")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        _check_wd(weight_decay)
        self.betas, self.eps, self.weight_decay = (float(betas[0]), float(betas[1])), float(eps), float(weight_decay)
        super().__init__(params, lr)
        self._flat = {}  # parameter index -> (w, m, v and their flat views), for step()

    def _update(self, i, p, f):
        w, g = p.data, p.grad
        xp = backend.array_module(w)
        b1, b2 = self.betas
        s = self._scratch(p, 0)
        if self.weight_decay and self.decoupled:
            w *= f(1.0 - self.lr * self.weight_decay)           # w -= lr·wd·w
        elif self.weight_decay:
            gs = self._scratch(p, 1)
            xp.multiply(w, f(self.weight_decay), out=gs)
            gs += g                                             # g = grad + wd·w
            g = gs
        m, v = self._buf("m", i, p), self._buf("v", i, p)
        m *= f(b1)
        xp.multiply(g, f(1.0 - b1), out=s)
        m += s                                                  # m = β1·m + (1-β1)·g
        v *= f(b2)
        xp.multiply(g, g, out=s)
        s *= f(1.0 - b2)
        v += s                                                  # v = β2·v + (1-β2)·g²
        t = self.steps
        xp.sqrt(v, out=s)
        s *= f(1.0 / math.sqrt(1.0 - b2 ** t))
        s += f(self.eps)                                        # s = sqrt(v̂) + eps
        xp.divide(m, s, out=s)
        s *= f(self.lr / (1.0 - b1 ** t))                       # s = lr·m̂ / (sqrt(v̂) + eps)
        w -= s

    def step(self) -> None:
        """Update every parameter that has a gradient, in place; on the CPU with one Numba loop
        per parameter (fastcnn.kernels.cpu.optim), bit for bit the array path's result, with
        the step's scalars computed once per dtype and each parameter's flat views kept."""
        if self._flat_step():
            return
        if not self.cpu_kernel:
            return super().step()
        from .kernels.cpu.optim import DECOUPLED, L2, NONE, adam_update

        self.steps += 1
        mode = (DECOUPLED if self.decoupled else L2) if self.weight_decay else NONE
        consts = {}
        flats = self._flat
        for i, p in enumerate(self.params):
            g, w = p.grad, p.data
            if g is None:
                continue
            if type(w) is not np.ndarray or not (w.flags.c_contiguous and g.flags.c_contiguous):
                self._update(i, p, w.dtype.type)
                continue
            s = consts.get(w.dtype)
            if s is None:
                s = consts[w.dtype] = self._constants(w.dtype)
            f = flats.get(i)
            if f is None or f[0] is not w or f[1] is not self.state["m"][i] or f[2] is not self.state["v"][i]:
                m, v = self._buf("m", i, p), self._buf("v", i, p)
                f = flats[i] = (w, m, v, w.reshape(-1), m.reshape(-1), v.reshape(-1))
            adam_update(f[3], g.reshape(-1), f[4], f[5], s, mode)

    def _flat_kernel(self, xp, g, w, m, v, t):
        from .kernels.cpu.optim import DECOUPLED, L2, NONE

        b1, b2 = self.betas
        mode = (DECOUPLED if self.decoupled else L2) if self.weight_decay else NONE
        gpu_kernels.kernel(xp, "adam")(g, b1, 1.0 - b1, b2, 1.0 - b2, self.lr / (1.0 - b1 ** t),
                                       1.0 / math.sqrt(1.0 - b2 ** t), self.eps, self.weight_decay,
                                       1.0 - self.lr * self.weight_decay, mode, w, m, v)

    def _constants(self, dtype):
        """The scalars of adam_update for this step, in ``dtype`` (cast one by one, as the array path does)."""
        b1, b2 = self.betas
        t = self.steps
        return np.array([b1, 1.0 - b1, b2, 1.0 - b2, self.lr / (1.0 - b1 ** t), 1.0 / math.sqrt(1.0 - b2 ** t),
                         self.eps, self.weight_decay, 1.0 - self.lr * self.weight_decay], dtype=dtype)

    def _hyper(self):
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW):
    ``w -= lr·wd·w`` first, then the Adam update with ``g = grad`` (no L2 term)."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


#: name -> factory ``(params, lr, **kw) -> Optimizer``; keyword arguments override the presets.
OPTIMIZERS = {
    "sgd": SGD,
    "momentum": functools.partial(SGD, momentum=0.9),
    "nesterov": functools.partial(SGD, momentum=0.9, nesterov=True),
    "adam": Adam,
    "adamw": AdamW,
}


def make(name: str, params, lr: float, weight_decay=None, **kw) -> Optimizer:
    """Build optimizer ``name`` (a key of OPTIMIZERS).

    ``weight_decay=None`` keeps the optimizer's own default (0, or 1e-2 for AdamW);
    other keyword arguments (momentum, betas, eps, ...) go to the constructor.
    """
    key = str(name).lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    if weight_decay is not None:
        kw["weight_decay"] = weight_decay
    return OPTIMIZERS[key](params, lr, **kw)
