"""The run directory, the one place that names and reads one back.

A run directory (written by fastcnn.train.Trainer) holds ``config.json`` (the resolved
TrainConfig), ``model.npz`` (weights; ``best.npz`` with early stopping), ``state.npz``
(optimizer, schedule and loop position), ``history.json`` and ``metrics.json``.

    model, name = load_weights("runs/lenet5-20260101-120000")   # or a bare model .npz
    model, cfg = load_model(run_dir, weights="best.npz")
    cfg, state = load_checkpoint(run_dir)                       # what Trainer.resume needs
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import backend, files, models
from .data.formats import load_data


def default_run_dir(name: str) -> Path:
    """``runs/NAME-YYYYmmdd-HHMMSS``: where a run (or a sweep: NAME ``sweep``) goes by default
    (a user network /a/mynet.py:net gives NAME mynet-net)."""
    if models.user.is_spec(name):
        name = models.user.short_name(name).replace(".py:", "-")
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def read_json(path, default=None):
    """The JSON document at ``path``, or ``default`` when there is no such file."""
    path = Path(path)
    if not path.is_file():
        return default
    return json.loads(path.read_text())


def load_config(run_dir) -> dict:
    """The resolved configuration (config.json) of a run directory that also holds model.npz."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no such run directory: {run_dir}")
    cfg = read_json(run_dir / "config.json")
    if cfg is None or not (run_dir / "model.npz").is_file():
        raise FileNotFoundError(f"{run_dir} is not a fastcnn run directory: it needs config.json and model.npz "
                                "(written by fastcnn train)")
    return cfg


def load_checkpoint(run_dir) -> tuple:
    """(config dict, state arrays of state.npz) of the run to resume in ``run_dir``."""
    run_dir = Path(run_dir)
    for f in ("config.json", "model.npz", "state.npz"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"cannot resume from {run_dir}: {f} is missing (is it a fastcnn run directory?)")
    cfg = json.loads((run_dir / "config.json").read_text())
    models.user.verify(run_dir, cfg.get("model"))  # a user network's file unchanged since the run
    return cfg, files.load_npz(run_dir / "state.npz")


def load_model(run_dir, backend="numpy", weights="model.npz"):
    """The trained model of ``run_dir`` (``weights``: model.npz or best.npz) and its config."""
    cfg = load_config(run_dir)
    models.user.verify(run_dir, cfg["model"])  # a user network's file unchanged since the run
    model = models.build(cfg["model"])
    model.load(Path(run_dir) / weights)
    return model.to(_backend(backend)), cfg


def load_weights(weights, model: str | None = None, backend="numpy"):
    """(model, preset name) of ``weights``: a run directory (its model.npz and config.json's
    preset) or a model .npz (preset ``model``, else guessed from the arrays' shapes)."""
    path = Path(weights)
    name = model
    if path.is_dir():
        if name is None:
            name = (read_json(path / "config.json", {}) or {}).get("model")
            models.user.verify(path, name)  # a user network's file unchanged since the run
        path = path / "model.npz"
    state = files.load_npz(path)
    if name is None:
        name = models.guess(state)
    net = models.build(name)
    net.load_state_dict(state)
    return net.to(_backend(backend)), name


def run_metrics(weights) -> dict:
    """metrics.json of a run directory ({} for a bare .npz or a run without one)."""
    path = Path(weights)
    return (read_json(path / "metrics.json", {}) or {}) if path.is_dir() else {}


def run_config(weights) -> dict:
    """config.json of a run directory ({} for a bare .npz or a run without one)."""
    path = Path(weights)
    return (read_json(path / "config.json", {}) or {}) if path.is_dir() else {}


def load_data_of(cfg: dict, data_dir=None):
    """The data set a run was trained on (its data_dir, or ``data_dir``), restricted to its classes."""
    return load_data(data_dir if data_dir is not None else cfg.get("data_dir"), classes=cfg.get("classes"))


def _backend(name):
    return backend.get(name)
