"""One training step — the one function the Trainer, `fastcnn bench train` and the benchmarks run.

    logits = model.forward(xb)                 (N, K)
    loss   = loss_fn.forward(logits, yb)       scalar, on the model's device
    model.backward(loss_fn.backward())         every layer overwrites its parameters' .grad
    optimizer.step()                           parameters updated in place

On the CPU backend the whole step runs inside ``threads.compute()`` (BLAS on one thread,
Numba's kernels on all), entered once.
"""
from __future__ import annotations

import numpy as np

from . import threads


def train_step(model, loss_fn, optimizer, xb, yb):
    """Run one step on the batch ``xb`` (N, ...) with labels ``yb`` (N,); returns (loss, logits),
    device arrays, not synchronised (reading the loss as a float waits for the device)."""
    if type(xb) is np.ndarray:
        with threads.compute():
            return _step(model, loss_fn, optimizer, xb, yb)
    return _step(model, loss_fn, optimizer, xb, yb)


def _step(model, loss_fn, optimizer, xb, yb):
    logits = model.forward(xb)
    loss = loss_fn.forward(logits, yb)
    model.backward(loss_fn.backward())
    optimizer.step()
    return loss, logits
