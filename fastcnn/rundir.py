"""A run directory read back: its resolved configuration, its model and its data."""
from __future__ import annotations

import json
from pathlib import Path


def read_json(path, default=None):
    path = Path(path)
    if not path.is_file():
        return default
    return json.loads(path.read_text())


def load_config(run_dir) -> dict:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no such run directory: {run_dir}")
    cfg = read_json(run_dir / "config.json")
    if cfg is None or not (run_dir / "model.npz").is_file():
        raise FileNotFoundError(f"{run_dir} is not a fastcnn run directory: it needs config.json and model.npz "
                                "(written by fastcnn train)")
    return cfg


def load_model(run_dir, backend="numpy", weights="model.npz"):
    """The trained model of ``run_dir`` (``weights``: model.npz or best.npz) and its config."""
    from . import models
    from .backend import get

    cfg = load_config(run_dir)
    model = models.build(cfg["model"])
    model.load(Path(run_dir) / weights)
    return model.to(get(backend)), cfg


def load_data_of(cfg: dict, data_dir=None):
    """The data set a run was trained on (its data_dir, or ``data_dir``), restricted to its classes."""
    from .data.formats import load_data, select_classes

    ds = load_data(data_dir if data_dir is not None else cfg.get("data_dir"))
    if cfg.get("classes"):
        ds = select_classes(ds, cfg["classes"])
    return ds
