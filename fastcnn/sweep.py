"""Hyperparameter sweeps: grid or random search, trials on any concurrent.futures executor.

    space = {"lr": [0.1, 0.01], "hidden": [500, 1000], "weight_decay": [1e-3, 1e-4]}
    rows = run_sweep(space, out="runs/sweep", model="mlp", epochs=1, fraction=0.1, workers=2)
    rows = run_sweep(space, out="runs/sweep", model="mlp", scheduler="tcp://host:8786")  # Dask
    rows = resume_sweep("runs/sweep")  # the trials that did not finish

Each trial trains on ``fraction`` of the training set with ``val_fraction`` of that held
out for validation, in a temporary directory wherever it runs, and returns its row and its
files (config.json, history.json, metrics.json, model.npz, ...); this process alone writes
them to ``OUT/trial-NNN`` and the table of all trials, sorted by validation accuracy (best
first), to ``OUT/sweep.csv``, ``OUT/sweep.md`` and ``OUT/sweep.json`` (atomically, after
every trial). The table says which worker ran each trial and its wall-clock seconds.

Local worker processes are started with "spawn" (no fork after Numba or BLAS threads
exist); each trial uses ``threads`` CPU threads (default: cores // workers), set around
its own work and restored after it. Dask clusters: sweep_dask.py.
"""
from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import math
import os
import time
from contextlib import contextmanager
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
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"sweep: --trials must be an integer ≥ 1 (the number of trials to run), got {n!r}")
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


@contextmanager
def _threads_scope(n: int):
    """Numba and BLAS use ``n`` threads inside the block (``fastcnn.settings(threads=n)``); the
    counts in force before are restored. Numba's count is per calling thread and BLAS's is per
    process, so one trial at a time per worker process (``dask worker --nthreads 1``) keeps
    trials from sharing BLAS's setting."""
    from .scoped_settings import settings

    with settings(threads=n):
        yield n


def _trial_threads(job: dict, worker) -> int:
    """The job's threads, else this machine's cores shared by the trials that run on it at once."""
    from .sweep_dask import host_of

    if job.get("threads"):
        return job["threads"]
    slots = job.get("slots", {}).get(host_of(worker), 1) if worker else 1
    return max(1, (os.cpu_count() or 1) // max(1, slots))


def _run_trial(job: dict) -> dict:
    """One trial (in a worker process or on a Dask worker): train in a temporary directory and
    return the trial's row of the table, with the run directory's files under "files" as
    {name: bytes} (the client writes them: workers need no shared filesystem)."""
    import tempfile

    from . import models
    from .config import TrainConfig
    from .data.formats import load_data, subset
    from .sweep_dask import worker_address
    from .train import Trainer

    params, base = job["params"], job["base"]
    worker = worker_address()
    row = {"trial": job["trial"], **params}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fastcnn-trial-") as tmp, _threads_scope(_trial_threads(job, worker)) as n:
        try:
            data = load_data(base.get("data_dir"), classes=base.get("classes"))
            data = subset(data, base.get("fraction", 1.0), seed=base.get("seed", 0))
            cfg = {k: v for k, v in base.items() if k not in ("fraction",)}
            cfg.update({k: v for k, v in params.items() if k != "hidden"})
            cfg.update(out=tmp, progress=False, threads=n)
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
        files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}
    row.update(worker=worker or f"local pid {os.getpid()}", wall_seconds=round(time.perf_counter() - t0, 2),
               files=files)
    return row


def _lost_row(job: dict, why) -> dict:
    """The row of a trial whose worker or result was lost (``why``: an exception or a sentence)."""
    if isinstance(why, BaseException):
        why = f"{type(why).__name__}: {why}" if str(why) else type(why).__name__
    return {"trial": job["trial"], **job["params"], "val_accuracy": None, "test_accuracy": None,
            "train_seconds": None, "epochs_done": None, "status": f"lost: {why}", "worker": None,
            "wall_seconds": None}


def _store(row: dict, out: Path) -> dict:
    """Write the files a trial returned to ``out/trial-NNN`` (atomically; config.json's "out"
    made that directory) and put the directory in the row."""
    from . import files

    d = out / f"trial-{row['trial']:03d}"
    returned = row.pop("files", None) or {}
    if returned and d.is_dir():
        for old in d.iterdir():  # what an earlier attempt of this trial left
            if old.is_file() and old.name not in returned:
                old.unlink()
    for name, data in returned.items():
        if Path(name).name != name or name.startswith("."):
            raise ValueError(f"sweep: trial {row['trial']} returned a file named {name!r}")
        if name == "config.json":
            files.save_json(d / name, {**json.loads(data), "out": str(d)})
        else:
            files.save_bytes(d / name, data)
    row["run_dir"] = str(d)
    return row


def _collect(executor, jobs: list, record, lost_reason=None, poll: float = 1.0) -> None:
    """Submit every job to ``executor`` and ``record`` each row as it comes. A future that
    raises (its worker died, the pool broke) records the trial as lost; ``lost_reason()``
    returning a sentence records all pending trials as lost. Ctrl-C cancels the pending ones."""
    futs = {executor.submit(_run_trial, j): j for j in jobs}
    pending = set(futs)
    try:
        while pending:
            done, pending = cf.wait(pending, timeout=poll, return_when=cf.FIRST_COMPLETED)
            for f in sorted(done, key=lambda f: futs[f]["trial"]):
                try:
                    row = f.result()
                except Exception as e:
                    row = _lost_row(futs[f], e)
                record(row)
            why = lost_reason() if pending and lost_reason is not None else None
            if why:
                for f in sorted(pending, key=lambda f: futs[f]["trial"]):
                    f.cancel()
                    record(_lost_row(futs[f], why))
                pending = set()
    except BaseException:
        for f in pending:
            f.cancel()
        raise


def _key(row):
    v = row.get("val_accuracy")
    return -(v if isinstance(v, (int, float)) and not math.isnan(v) else -1.0)


SPEC = "sweep-spec.json"


def run_sweep(space: dict, out, mode: str = "grid", trials_n: int | None = None, workers: int = 1,
              fraction: float = 1.0, val_fraction: float = 0.1, seed: int = 0, threads: int | None = None,
              on_result=None, executor=None, scheduler: str | None = None, log=None, lost_after: float = 120.0,
              **train_settings) -> list:
    """Run the trials and write the tables; returns the rows, best validation accuracy first.

    Where the trials run: ``executor`` (any concurrent.futures.Executor, left open), else the
    Dask scheduler at ``scheduler`` ("tcp://HOST:8786", or "local" for a LocalCluster of
    ``workers`` processes), else ``workers`` spawned processes (1: here, one after another).
    ``threads`` per trial: default cores // workers (on Dask: the worker machine's cores // the
    trials it runs at once). ``train_settings``: other TrainConfig fields (model, epochs, ...).
    The spec is kept in ``OUT/sweep-spec.json`` for ``resume_sweep``; the tables are rewritten
    after every trial, so Ctrl-C (KeyboardInterrupt, re-raised) keeps the finished rows.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"sweep: --fraction must be in (0, 1], got {fraction}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"sweep: --val-fraction must be in (0, 1) (trials are ranked by validation "
                         f"accuracy), got {val_fraction}")
    settings = trials(space, mode, trials_n, seed)
    base = {k: v for k, v in train_settings.items() if v is not None}
    base.update(fraction=fraction, val_fraction=val_fraction, seed=seed)
    from .config import TrainConfig

    probe = {k: v for k, v in base.items() if k != "fraction"}
    TrainConfig(**probe).resolved()  # bad fixed settings fail before any worker starts
    _check_pool(workers, threads, scheduler)
    out = Path(out)
    from . import files

    files.save_json(out / SPEC, {"params": list(settings[0]) if settings else [], "trials": settings, "base": base})
    jobs = [{"trial": i, "params": p, "base": base} for i, p in enumerate(settings)]
    return _execute(jobs, out, list(settings[0]) if settings else [], [], workers, threads, executor, scheduler,
                    on_result, log, lost_after)


def resume_sweep(out, workers: int = 1, threads: int | None = None, on_result=None, executor=None,
                 scheduler: str | None = None, log=None, lost_after: float = 120.0) -> list:
    """Run the trials of the sweep in ``out`` that have no finished row (never run, lost, or
    failed with an error) and rewrite its tables; returns all rows, best first."""
    out = Path(out)
    from .rundir import read_json

    spec = read_json(out / SPEC)
    if spec is None:
        raise FileNotFoundError(f"cannot resume the sweep in {out}: {SPEC} is missing (a sweep directory "
                                "written by fastcnn sweep holds it)")
    _check_pool(workers, threads, scheduler)
    rows = [r for r in read_json(out / "sweep.json", []) if not str(r.get("status", "")).startswith(("error", "lost"))
            and (Path(r.get("run_dir") or out / f"trial-{r['trial']:03d}") / "metrics.json").is_file()]
    done = {r["trial"] for r in rows}
    jobs = [{"trial": i, "params": p, "base": spec["base"]} for i, p in enumerate(spec["trials"]) if i not in done]
    if log:
        log(f"resuming {out}: {len(done)} of {len(spec['trials'])} trials finished, {len(jobs)} to run")
    return _execute(jobs, out, spec["params"], rows, workers, threads, executor, scheduler, on_result, log,
                    lost_after)


def _check_pool(workers, threads, scheduler):
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"sweep: --workers must be ≥ 1, got {workers}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"sweep: --threads must be ≥ 1, got {threads}")
    if scheduler is not None:
        from .sweep_dask import check_address, require

        check_address(scheduler)
        require()


def _execute(jobs, out: Path, params, rows, workers, threads, executor, scheduler, on_result, log, lost_after):
    """Run ``jobs`` where run_sweep says, adding their rows to ``rows``; the tables are written
    after each row and once more at the end (also when interrupted)."""
    out.mkdir(parents=True, exist_ok=True)

    def record(row):
        rows.append(_store(row, out))
        rows.sort(key=lambda r: (_key(r), r["trial"]))
        write_tables(rows, out, params)
        if on_result:
            on_result(row)

    local = threads or max(1, (os.cpu_count() or 1) // workers)
    try:
        if not jobs:
            pass
        elif executor is not None:
            _collect(executor, [{**j, "threads": local} for j in jobs], record)
        elif scheduler is not None:
            from .sweep_dask import dask_pool

            with dask_pool(scheduler, workers, lost_after) as pool:
                if log:
                    log(f"trials on the Dask scheduler {pool.client.scheduler.address} "
                        f"({len(pool.client.nthreads())} workers); dashboard: {pool.dashboard()}")
                slots = pool.slots_per_host()
                _collect(pool.executor, [{**j, "threads": threads, "slots": slots} for j in jobs], record,
                         pool.lost_reason)
        elif workers == 1:
            for j in jobs:
                record(_run_trial({**j, "threads": local}))
        else:
            import multiprocessing as mp

            ex = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
            try:
                _collect(ex, [{**j, "threads": local} for j in jobs], record)
            except BaseException:
                ex.shutdown(wait=False, cancel_futures=True)
                raise
            ex.shutdown()
    finally:
        rows.sort(key=lambda r: (_key(r), r["trial"]))
        write_tables(rows, out, params)
    return rows


def failed(rows: list) -> list:
    """The rows of trials that did not finish: failed with an error, or lost with their worker."""
    return [r for r in rows if r.get("val_accuracy") is None
            or str(r.get("status", "")).startswith(("error", "lost"))]


#: [sweep] keys of a sweep's TOML file that are options of the sweep rather than its space, with their types
SWEEP_OPTIONS = {"mode": str, "trials": int, "workers": int, "fraction": float, "val_fraction": float,
                 "scheduler": str}


def read_sweep_config(path) -> tuple:
    """(space, options, fixed) of a sweep's TOML file: ``[sweep]`` holds the space (keys of PARAMS:
    a list of values, or one value) and SWEEP_OPTIONS; ``[train]`` (or the top level) the fixed
    TrainConfig settings (fastcnn.toml_config.load_train_config, types checked). Unknown keys and
    values of the wrong type are errors naming the file and the key."""
    from .toml_config import load_train_config, read_toml

    doc = read_toml(path)
    table = doc.get("sweep", {})
    if not isinstance(table, dict):
        raise ValueError(f"--config {path}: 'sweep' must be a table ([sweep]), got {table!r}")
    space, options = {}, {}
    for k, v in table.items():
        key = k.replace("-", "_")
        if key in PARAMS:
            values = v if isinstance(v, list) else [v]
            for item in values:
                ok = isinstance(item, str) if PARAMS[key] is str else (
                    isinstance(item, (int, float)) and not isinstance(item, bool)
                    and (PARAMS[key] is float or isinstance(item, int)))
                if not ok:
                    kind = {str: "strings", int: "integers", float: "numbers"}[PARAMS[key]]
                    raise ValueError(f"--config {path}: [sweep] {k} takes a list of {kind}, e.g. "
                                     f"{k} = {_EXAMPLE[key]}; got {item!r} ({type(item).__name__})")
            space[key] = values
        elif key in SWEEP_OPTIONS:
            want = SWEEP_OPTIONS[key]
            ok = isinstance(v, want) if want is not float else isinstance(v, (int, float))
            if not ok or isinstance(v, bool):
                kind = {str: "a string", int: "an integer", float: "a number"}[want]
                raise ValueError(f"--config {path}: [sweep] {k} must be {kind}, got {v!r} ({type(v).__name__})")
            options[key] = float(v) if want is float else v
        else:
            raise ValueError(f"--config {path}: unknown [sweep] key {k!r}; the space takes "
                             f"{', '.join(PARAMS)}; other keys: {', '.join(SWEEP_OPTIONS)}")
    return space, options, load_train_config(path)


_EXAMPLE = {"lr": "[0.1, 0.01]", "batch_size": "[32, 128]", "hidden": "[500, 1000]",
            "weight_decay": "[1e-3, 1e-4]", "optimizer": '["sgd", "adam"]', "epochs": "[1, 2]"}


COLUMNS = ["val_accuracy", "test_accuracy", "train_seconds", "epochs_done", "status", "worker", "wall_seconds",
           "run_dir"]


def _fmt(v, col=""):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}" if col.endswith("accuracy") else f"{v:g}"
    return str(v)


def write_tables(rows: list, out, params: list) -> list:
    """sweep.csv, sweep.md (fastcnn.tables) and sweep.json in ``out``, each written atomically;
    returns their paths."""
    from . import files, tables

    out = Path(out)
    columns = [(c, c, (lambda v, c=c: _fmt(v, c).replace("|", "/"))) for c in ["rank", "trial", *params, *COLUMNS]]
    ranked = [{**r, "rank": rank} for rank, r in enumerate(rows, 1)]
    paths = tables.write_table(out, "sweep", columns, ranked)
    return paths + [files.save_json(out / "sweep.json", rows)]
