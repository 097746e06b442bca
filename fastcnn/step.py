"""One training step — the one function the Trainer, `fastcnn bench train` and the benchmarks run.

    logits = model.forward(xb)                 (N, K)
    loss   = loss_fn.forward(logits, yb)       scalar, on the model's device
    model.backward(loss_fn.backward())         every layer overwrites its parameters' .grad
    optimizer.step()                           parameters updated in place

A Sequential runs its own forward and backward inside ``threads.compute()`` on the CPU, so
the step is the same four lines a user writes.
"""
from __future__ import annotations


def train_step(model, loss_fn, optimizer, xb, yb):
    """Run one step on the batch ``xb`` (N, ...) with labels ``yb`` (N,); returns (loss, logits),
    device arrays, not synchronised (reading the loss as a float waits for the device)."""
    logits = model.forward(xb)
    loss = loss_fn.forward(logits, yb)
    model.backward(loss_fn.backward())
    optimizer.step()
    return loss, logits
