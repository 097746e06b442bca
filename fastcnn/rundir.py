"""The run directory, the one place that names and reads one back.

A run directory (written by fastcnn.train.Trainer) holds ``config.json`` (the run's record,
fastcnn.config.RunRecord), ``state.npz`` (the checkpoint: weights, optimizer, EMA, schedule,
loop position and history, everything a resumed run needs), ``model.npz`` (the weights to
use: the averaged ones with an EMA; ``best.npz`` with early stopping), ``history.json`` and
``metrics.json``. A checkpoint's files are written as one group (fastcnn.files.write_group)
with state.npz renamed last; model.npz carries the checkpoint's step (``__step__``) so that a
reader can tell a pair cut in the middle of its renames.

    model, name = load_weights("runs/lenet5-20260101-120000")   # or a bare model .npz
    model, cfg = load_model(run_dir, weights="best.npz")
    cfg, state, loop = load_checkpoint(run_dir)                 # what Trainer.resume needs
    with locked(run_dir): ...                                   # one process per run directory

Weights holding NaN or infinity are refused with an error naming the file and the tensor.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import backend, files, models
from .data.formats import load_data
from .data.mnist import BUNDLED

#: The files a run writes into its directory (``--overwrite`` removes them, and the temporary
#: files a killed writer left of them are removed when a run starts).
RUN_FILES = ("config.json", "state.npz", "model.npz", "best.npz", "history.json", "metrics.json",
             "eval_metrics.json", "eval_metrics.csv", "eval_metrics.md", "eval_confusion.csv",
             "test_metrics.json", "test_metrics.csv", "test_metrics.md", "test_confusion.csv", "report.html",
             "model_source.json", "model_source.py")
#: Any of these makes a directory hold a run.
RUN_MARKERS = ("config.json", "state.npz", "model.npz", "metrics.json", "history.json")


class RunDirError(ValueError):
    """A run directory (or a file in it) that cannot be used as asked."""


def default_run_dir(name: str) -> Path:
    """``runs/NAME-YYYYmmdd-HHMMSS`` (``-2``, ``-3``... when taken): where a run (or a sweep:
    NAME ``sweep``) goes by default (a user network /a/mynet.py:net gives NAME mynet-net)."""
    if models.user.is_spec(name):
        name = models.user.short_name(name).replace(".py:", "-")
    base = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def read_json(path, default=None):
    """The JSON document at ``path``, or ``default`` when there is no such file; a damaged file
    is an error naming it."""
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is damaged: not valid JSON ({e}); restore it or start a new run") from None
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror or e}") from None


def read_config(path) -> dict:
    """config.json at ``path`` as a dict; anything but a JSON object is an error naming the file."""
    cfg = read_json(path)
    if cfg is None:
        raise FileNotFoundError(f"no such file: {path}")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), str):
        raise RunDirError(f"{path} is damaged: expected a JSON object of settings with a \"model\" name "
                          f"(written by fastcnn train), got {_kind(cfg)}")
    return cfg


def _kind(v) -> str:
    return "an object without a model name" if isinstance(v, dict) else f"a JSON {type(v).__name__}"


def load_config(run_dir) -> dict:
    """The record (config.json) of a run directory that also holds model.npz."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no such run directory: {run_dir}")
    if not (run_dir / "config.json").is_file() or not (run_dir / "model.npz").is_file():
        raise FileNotFoundError(f"{run_dir} is not a fastcnn run directory: it needs config.json and model.npz "
                                "(written by fastcnn train)")
    return read_config(run_dir / "config.json")


def load_checkpoint(run_dir) -> tuple:
    """(config dict, state arrays of state.npz, the loop dict) of the run to resume in
    ``run_dir``; a damaged or incomplete file is an error naming it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"cannot resume from {run_dir}: no such run directory")
    for f in ("config.json", "state.npz"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"cannot resume from {run_dir}: {f} is missing (is it a fastcnn run directory?)")
    cfg = read_config(run_dir / "config.json")
    models.user.verify(run_dir, cfg.get("model"))  # a user network's file unchanged since the run
    path = run_dir / "state.npz"
    st = files.load_npz(path)
    if "loop" not in st:
        raise RunDirError(f"{path} is not a training checkpoint: it has no 'loop' entry (the loop position); "
                          "it cannot be resumed")
    try:
        loop = json.loads(str(st["loop"]))
    except ValueError as e:
        raise RunDirError(f"{path}: its 'loop' entry is damaged ({e})") from None
    if not isinstance(loop, dict) or not isinstance(loop.get("state"), dict) \
            or not isinstance(loop.get("history", []), list):
        raise RunDirError(f"{path}: its 'loop' entry is not a loop position (expected an object with "
                          "\"state\" and \"history\")")
    check_finite(st, path)
    return cfg, st, loop


def first_non_finite(state: dict):
    """The name of the first floating-point tensor of ``state`` holding NaN or infinity, else None.
    The schedule's numbers (``schedule.*``: ReduceLROnPlateau's best starts at -inf) are not tensors."""
    for k, v in state.items():
        if not k.startswith("schedule.") and isinstance(v, np.ndarray) and v.dtype.kind in "fc" \
                and not np.isfinite(v).all():
            return k
    return None


def check_finite(state: dict, path) -> None:
    """Raise RunDirError naming ``path`` and the first tensor of ``state`` that holds NaN or
    infinity (first_non_finite): a diverged run's weights are not a model."""
    k = first_non_finite(state)
    if k is not None:
        what = "NaN" if np.isnan(state[k]).any() else "infinity"
        raise RunDirError(f"{path}: tensor {k!r} holds {what}: these weights diverged and cannot be used "
                          "(train again with a lower learning rate, --lr)")


def _load_checked(path) -> dict:
    state = files.load_npz(path)
    check_finite(state, path)
    return state


def check_pair(run_dir, weights: str = "model.npz") -> None:
    """model.npz and state.npz of ``run_dir`` must be of one checkpoint (the same ``__step__``):
    a run killed between their renames is an error that says how to repair it."""
    run_dir = Path(run_dir)
    if weights != "model.npz" or not (run_dir / "state.npz").is_file():
        return
    try:
        with np.load(run_dir / "model.npz", allow_pickle=False) as z:
            m = int(z["__step__"]) if "__step__" in z.files else None
        with np.load(run_dir / "state.npz", allow_pickle=False) as z:
            s = int(z["__step__"]) if "__step__" in z.files else None
    except Exception:
        return  # the loaders name the damaged file
    if m is not None and s is not None and m != s:
        raise RunDirError(f"{run_dir}: model.npz (step {m}) and state.npz (step {s}) are not of one checkpoint: "
                          f"the run was stopped while saving; `fastcnn train --resume {run_dir}` restores it")


def load_model(run_dir, backend="numpy", weights="model.npz"):
    """The trained model of ``run_dir`` (``weights``: model.npz or best.npz) and its config."""
    cfg = load_config(run_dir)
    models.user.verify(run_dir, cfg["model"])  # a user network's file unchanged since the run
    check_pair(run_dir, weights)
    model = models.build(cfg["model"])
    model.load_state_dict(_load_checked(Path(run_dir) / weights))
    return model.to(_backend(backend)), cfg


def load_weights(weights, model: str | None = None, backend="numpy"):
    """(model, preset name) of ``weights``: a run directory (its model.npz and config.json's
    preset) or a model .npz (preset ``model``, else guessed from the arrays' shapes)."""
    path = Path(weights)
    name = model
    if path.is_dir():
        if name is None:
            name = read_config(path / "config.json")["model"] if (path / "config.json").is_file() else None
            models.user.verify(path, name)  # a user network's file unchanged since the run
        check_pair(path)
        path = path / "model.npz"
    state = _load_checked(path)
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
    return read_config(path / "config.json") if path.is_dir() and (path / "config.json").is_file() else {}


def data_location(cfg: dict):
    """Where a run's data is (for load_data): its absolute data_dir; the bundled MNIST when the
    record says so (whatever $FASTCNN_DATA says now); None (load_data's default) otherwise."""
    if cfg.get("data_dir") is not None:
        return cfg["data_dir"]
    return BUNDLED if cfg.get("data_source") == "bundled" else None


def load_data_of(cfg: dict, data_dir=None):
    """The data set a run was trained on (its data source, or ``data_dir``), restricted to its classes.
    (A run trained on arrays handed to the Trainer without a data_dir, e.g. a sweep's trial on the
    default data, gets load_data's default.)"""
    return load_data(data_dir if data_dir is not None else data_location(cfg), classes=cfg.get("classes"))


# --- claiming a directory ------------------------------------------------------------
def holds_run(run_dir) -> list:
    """The files that make ``run_dir`` hold a run (empty: it does not)."""
    run_dir = Path(run_dir)
    return [f for f in RUN_MARKERS if (run_dir / f).exists()]


def clear_run(run_dir) -> None:
    """Remove a run's files from ``run_dir`` (--overwrite): RUN_FILES and report/'s pictures;
    other files are left alone."""
    run_dir = Path(run_dir)
    for f in RUN_FILES:
        p = run_dir / f
        if p.is_file() or p.is_symlink():
            p.unlink()
    pics = run_dir / "report"
    if pics.is_dir():
        for p in pics.glob("*.png"):
            p.unlink()
        try:
            pics.rmdir()
        except OSError:
            pass  # something else lives there


def remove_temporaries(run_dir) -> list:
    """Remove the temporary files a killed run left (``.state.npz.*.tmp`` ...)."""
    return files.remove_temporaries(run_dir, RUN_FILES)


@contextmanager
def locked(run_dir):
    """Hold ``run_dir`` for this process (an exclusive ``flock`` on the directory itself, released
    by the system when the process dies, even by kill -9): a second process gets RunDirError."""
    run_dir = Path(run_dir)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no protection, as before
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunDirError(f"{run_dir} is in use by another fastcnn process (a training writing to it): "
                              "wait for it to end, or choose another --out") from None
        yield
    finally:
        os.close(fd)


def _backend(name):
    return backend.get(name)
