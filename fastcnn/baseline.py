"""Baselines: k-nearest neighbours on raw pixels, with batched distances on ``xp``.

    knn = KNN(k=3).fit(x_train, y_train, xp=np)   # uint8 (N, H, W) or float (N, D)
    pred = knn.predict(x_test)                    # numpy int64 (M,)

Squared Euclidean distances of a batch of B queries to all N training points come
from one GEMM: ‖q − t‖² = ‖q‖² − 2 q·t + ‖t‖² (B × N floats per batch, so the
memory stays bounded). The k nearest are voted; a tie goes to the class whose
members are nearer (each neighbour's vote is 1 plus a small bonus for its rank).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from . import backend
from .config import TrainConfig
from .data.formats import load_data, subset
from .rundir import default_run_dir
from .train import Trainer


def _flat(x, xp, dtype):
    x = backend.to_device(np.asarray(x) if backend.array_module(x) is np else x, xp)
    x = x.reshape(len(x), -1).astype(dtype)
    return x / dtype.type(255.0) if x.size and float(x.max()) > 1.0 else x


class KNN:
    """k-nearest-neighbour classifier (squared Euclidean distance)."""

    def __init__(self, k: int = 3, batch_size: int = 500, dtype=np.float32):
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer ≥ 1, got {k!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        self.k, self.batch_size, self.dtype = int(k), int(batch_size), np.dtype(dtype)

    def fit(self, x, y, xp=np) -> "KNN":
        xp = backend.get(xp) if isinstance(xp, str) else xp
        if len(x) != len(y):
            raise ValueError(f"{len(x)} training images but {len(y)} labels")
        if len(x) < self.k:
            raise ValueError(f"k = {self.k} needs at least {self.k} training images, got {len(x)}")
        self.xp = xp
        self.x = _flat(x, xp, self.dtype)
        self.sq = (self.x * self.x).sum(axis=1)
        self.y = backend.to_device(np.asarray(backend.as_numpy(y), np.int64), xp)
        self.num_classes = int(backend.as_numpy(self.y).max()) + 1
        return self

    def predict(self, x) -> np.ndarray:
        xp, k = self.xp, self.k
        q_all = _flat(x, xp, self.dtype)
        out = []
        bonus = xp.asarray((np.arange(k, 0, -1) / (k + 1) * 1e-3).astype(np.float64))
        for s in range(0, len(q_all), self.batch_size):
            q = q_all[s:s + self.batch_size]
            d = (q * q).sum(axis=1)[:, None] - 2 * (q @ self.x.T) + self.sq[None, :]
            near = xp.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else xp.argsort(d, axis=1)[:, :k]
            dn = xp.take_along_axis(d, near, axis=1)
            near = xp.take_along_axis(near, xp.argsort(dn, axis=1), axis=1)  # nearest first
            labels = self.y[near]  # (B, k)
            onehot = labels[:, :, None] == xp.arange(self.num_classes)[None, None, :]  # (B, k, C)
            votes = (onehot * (1.0 + bonus)[None, :, None]).sum(axis=1)
            out.append(backend.as_numpy(votes.argmax(axis=1)))
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def knn_baseline(x_train, y_train, x_test, y_test, k: int = 3, xp=np, batch_size: int = 500) -> dict:
    """Fit and score a KNN: accuracy, predictions, and the seconds it took."""
    t0 = time.perf_counter()
    knn = KNN(k, batch_size).fit(x_train, y_train, xp)
    pred = knn.predict(x_test)
    backend.synchronize(knn.xp)
    secs = time.perf_counter() - t0
    acc = float((pred == np.asarray(backend.as_numpy(y_test))).mean()) if len(pred) else float("nan")
    return {"accuracy": acc, "seconds": secs, "k": k, "n_train": len(x_train), "n_test": len(x_test),
            "predictions": pred}


def baseline_data(data_dir=None, classes=None, train_limit: int | None = None, test_limit: int | None = None,
                  seed: int = 0):
    """The data set a baseline is scored on: ``data_dir`` (fastcnn.data.formats.load_data) restricted
    to ``classes``, at most ``train_limit`` training images (a random subset) and the first
    ``test_limit`` test images."""
    ds = load_data(data_dir, classes=classes)
    if train_limit:
        ds = subset(ds, limit=train_limit, seed=seed)
    if test_limit:
        ds = dataclasses.replace(ds, x_test=ds.x_test[:test_limit], y_test=ds.y_test[:test_limit])
    return ds


def mlp_baseline(ds, backend_name: str = "numpy", epochs: int | None = None, seed: int = 0, out=None) -> dict:
    """Train the ``mlp`` preset with its recipe on ``ds``; its metrics, with ``out``: the run directory
    (default runs/baseline-mlp-TIME)."""
    cfg = TrainConfig(model="mlp", backend=backend_name, epochs=epochs, seed=seed,
                      out=str(out or default_run_dir("baseline-mlp")), progress=False)
    return {**Trainer(cfg, data=ds).fit(), "out": cfg.out}
