"""Hyperparameter sweeps: grid or random search, trials in worker processes.

    space = {"lr": [0.1, 0.01], "hidden": [500, 1000], "weight_decay": [1e-3, 1e-4]}
    rows = run_sweep(space, out="runs/sweep", model="mlp", epochs=1, fraction=0.1, workers=2)

Each trial trains in its own run directory ``OUT/trial-NNN`` (config.json,
history.json, metrics.json, model.npz) on ``fraction`` of the training set with
``val_fraction`` of that held out for validation. The table of all trials,
sorted by validation accuracy (best first), is written to ``OUT/sweep.csv``,
``OUT/sweep.md`` and ``OUT/sweep.json``.

Worker processes are started with "spawn" (no fork after Numba or BLAS threads
exist); each uses ``threads`` CPU threads (default: cores // workers).
"""
from __future__ import annotations

import csv
import io as _io
import itertools
import json
import math
import os
import time
from pathlib import Path

#: The parameters a sweep can vary, with the type of their values.
PARAMS = {"lr": float, "batch_size": int, "hidden": int, "weight_decay": float, "optimizer": str,
          "epochs": int}
OPTION = {k: "--" + k.replace("_", "-") for k in PARAMS}


def parse_values(name: str, text) -> list:
    """``"0.1,0.01"`` -> [0.1, 0.01] for parameter ``name``; errors name the option."""
    opt = OPTION.get(name, name)
    if name not in PARAMS:
        raise ValueError(f"sweep: unknown parameter {name!r}: choose from {', '.join(PARAMS)}")
    items = text if isinstance(text, (list, tuple)) else [s.strip() for s in str(text).split(",")]
    items = [s for s in items if s != ""]
    if not items:
        raise ValueError(f"sweep: {opt} gives no values: list them separated by commas, e.g. {opt} 0.1,0.01")
    out = []
    for s in items:
        try:
            v = PARAMS[name](s)
        except (TypeError, ValueError):
            raise ValueError(f"sweep: {opt}: {s!r} is not {'an integer' if PARAMS[name] is int else 'a number'}") from None
        if PARAMS[name] is not str and not (v > 0 or (name == "weight_decay" and v == 0)):
            raise ValueError(f"sweep: {opt}: {s!r} must be > 0")
        if v not in out:
            out.append(v)
    return out


def check_space(space: dict) -> dict:
    """Parsed, validated space {param: [values]}; an empty space is an error."""
    space = {k: parse_values(k, v) for k, v in space.items() if v is not None}
    if not space:
        raise ValueError("sweep: the search space is empty: give values for at least one of "
                         + ", ".join(OPTION.values()) + " (e.g. --lr 0.1,0.01,0.001)")
    return space


def trials(space: dict, mode: str = "grid", n: int | None = None, seed: int = 0) -> list:
    """The trial settings: every combination (grid), or ``n`` distinct random ones (random)."""
    space = check_space(space)
    keys = list(space)
    combos = [dict(zip(keys, vals)) for vals in itertools.product(*(space[k] for k in keys))]
    if mode == "grid":
        return combos if n is None else combos[:n]
    if mode != "random":
        raise ValueError(f"sweep: --mode must be grid or random, got {mode!r}")
    if n is None or n < 1:
        raise ValueError("sweep: random search needs --trials N (N ≥ 1)")
    import random

    rng = random.Random(seed)
    return rng.sample(combos, min(n, len(combos)))


def _run_trial(job: dict) -> dict:
    """One trial (in a worker process): train and return its row of the table."""
    from . import models
    from .config import TrainConfig
    from .data.formats import load_data, select_classes, subset
    from .train import Trainer

    params, base = job["params"], job["base"]
    row = {"trial": job["trial"], **params}
    t0 = time.perf_counter()
    try:
        data = load_data(base.get("data_dir"))
        if base.get("classes"):
            data = select_classes(data, base["classes"])
        data = subset(data, base.get("fraction", 1.0), seed=base.get("seed", 0))
        cfg = {k: v for k, v in base.items() if k not in ("fraction",)}
        cfg.update({k: v for k, v in params.items() if k != "hidden"})
        cfg.update(out=job["out"], progress=False)
        model = None
        if "hidden" in params:
            import inspect

            builder = models.PRESETS[cfg.get("model", models.DEFAULT)][0]
            if "hidden" not in inspect.signature(builder).parameters:
                raise ValueError(f"preset {cfg.get('model', models.DEFAULT)!r} has no hidden size to sweep "
                                 "(presets with one: mlp, report-c, report-e-mlp, report-e-cnn)")
            model = models.build(cfg.get("model", models.DEFAULT), seed=cfg.get("seed", 0), hidden=params["hidden"])
        m = Trainer(TrainConfig(**cfg), model=model, data=data).fit()
        row.update(val_accuracy=m.get("val_accuracy"), test_accuracy=m.get("test_accuracy"),
                   train_seconds=round(m["train_seconds"], 2), epochs_done=round(m["epochs"], 3),
                   status=m["status"])
    except Exception as e:  # a failed trial is a row, not the end of the sweep
        row.update(val_accuracy=None, test_accuracy=None, train_seconds=None, epochs_done=None,
                   status=f"error: {type(e).__name__}: {e}")
    row["wall_seconds"] = round(time.perf_counter() - t0, 2)
    row["run_dir"] = job["out"]
    return row


def _key(row):
    v = row.get("val_accuracy")
    return -(v if isinstance(v, (int, float)) and not math.isnan(v) else -1.0)


def run_sweep(space: dict, out, mode: str = "grid", trials_n: int | None = None, workers: int = 1,
              fraction: float = 1.0, val_fraction: float = 0.1, seed: int = 0, threads: int | None = None,
              on_result=None, **train_settings) -> list:
    """Run the trials (``workers`` processes; 1 runs them here) and write the tables; returns the rows,
    best validation accuracy first. ``train_settings``: other TrainConfig fields (model, epochs, ...)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"sweep: --fraction must be in (0, 1], got {fraction}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"sweep: --val-fraction must be in (0, 1) (trials are ranked by validation "
                         f"accuracy), got {val_fraction}")
    if workers < 1:
        raise ValueError(f"sweep: --workers must be ≥ 1, got {workers}")
    settings = trials(space, mode, trials_n, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    base = {k: v for k, v in train_settings.items() if v is not None}
    base.update(fraction=fraction, val_fraction=val_fraction, seed=seed, threads=threads)
    from .config import TrainConfig

    probe = {k: v for k, v in base.items() if k != "fraction"}
    TrainConfig(**probe).resolved()  # bad fixed settings fail before any worker starts
    jobs = [{"trial": i, "params": p, "base": base, "out": str(out / f"trial-{i:03d}")}
            for i, p in enumerate(settings)]
    rows = []
    if workers == 1:
        for j in jobs:
            rows.append(_run_trial(j))
            if on_result:
                on_result(rows[-1])
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(_run_trial, j) for j in jobs]
            for f in as_completed(futs):
                rows.append(f.result())
                if on_result:
                    on_result(rows[-1])
    rows.sort(key=lambda r: (_key(r), r["trial"]))
    write_tables(rows, out, list(settings[0]) if settings else [])
    return rows


COLUMNS = ["val_accuracy", "test_accuracy", "train_seconds", "epochs_done", "status", "run_dir"]


def _fmt(v, col=""):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}" if col.endswith("accuracy") else f"{v:g}"
    return str(v)


def write_tables(rows: list, out, params: list) -> list:
    """sweep.csv, sweep.md and sweep.json in ``out``; returns their paths."""
    out = Path(out)
    cols = ["rank", "trial", *params, *COLUMNS]
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for rank, r in enumerate(rows, 1):
        w.writerow([rank if c == "rank" else ("" if r.get(c) is None else r.get(c)) for c in cols])
    (out / "sweep.csv").write_text(buf.getvalue())
    md = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for rank, r in enumerate(rows, 1):
        md.append("| " + " | ".join(str(rank) if c == "rank" else _fmt(r.get(c), c).replace("|", "/") for c in cols) + " |")
    (out / "sweep.md").write_text("\n".join(md) + "\n")
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    return [out / "sweep.csv", out / "sweep.md", out / "sweep.json"]
