"""Central-difference gradient checks (the helper every layer test uses, as in Chainer).

For a layer f and a fixed random upstream gradient g, the scalar L = Σ f(x) · g has
∂L/∂x = backward(g). Each checked entry θ is compared with (L(θ + ε) − L(θ − ε)) / 2ε.
Run in float64: in float32 the difference quotient itself is too noisy to judge.
"""
from __future__ import annotations

import numpy as np


def numerical_grad(fn, a: np.ndarray, eps: float = 1e-6, indices=None) -> np.ndarray:
    """∂fn/∂a by central differences at ``indices`` (all entries when None); fn() -> float."""
    grad = np.zeros_like(a)
    flat = a.reshape(-1)
    idx = range(flat.size) if indices is None else indices
    for i in idx:
        old = flat[i]
        flat[i] = old + eps
        hi = fn()
        flat[i] = old - eps
        lo = fn()
        flat[i] = old
        grad.reshape(-1)[i] = (hi - lo) / (2 * eps)
    return grad


def rel_error(a, b) -> float:
    """max |a − b| / max(1, max |b|): relative for large values, absolute near zero."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b))))) if a.size else 0.0


def check_layer(layer, x: np.ndarray, seed: int = 0, eps: float = 1e-6, max_entries: int = 200) -> dict:
    """Relative error of dx and of every parameter gradient of ``layer`` at input ``x``.

    ``x`` and the layer's parameters must be float64. At most ``max_entries`` randomly
    chosen entries of each array are checked by finite differences.
    Returns {"x": err, "weight": err, ...}.
    """
    rng = np.random.default_rng(seed)
    if x.dtype != np.float64:
        raise TypeError("gradient checks run in float64: cast the input and the layer first")
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    layer.needs_input_grad = True
    dx = layer.backward(g)
    analytic = {"x": dx}
    analytic.update({p.name or str(i): p.grad.copy() for i, p in enumerate(layer.parameters())})
    targets = {"x": x}
    targets.update({p.name or str(i): p.data for i, p in enumerate(layer.parameters())})

    def loss():
        return float(np.sum(layer.forward(x) * g))

    errors = {}
    for name, arr in targets.items():
        n = arr.size
        idx = None if n <= max_entries else rng.choice(n, max_entries, replace=False)
        num = numerical_grad(loss, arr, eps, idx)
        sel = slice(None) if idx is None else idx
        errors[name] = rel_error(analytic[name].reshape(-1)[sel], num.reshape(-1)[sel])
    return errors
