"""The Trainer: the loop, evaluation, stop rules, checkpoints and resume.

One step (fastcnn.step.train_step): uint8 batch -> float32 on the model's device -> forward
-> SoftmaxCrossEntropy -> backward (every layer overwrites its parameters' .grad) -> optimizer.step().
``train_seconds`` counts the training steps only: no data loading, no evaluation. On a GPU a step
only queues work, so the device is synchronised before the clock is read on every step whose
``train_seconds`` is used: log steps, evaluation steps (hence ``target_reached_seconds`` and the
milestones) and the end of each epoch; the other steps add their host time, and the next sync charges
their queued work to training. The time budget is checked on those synchronised steps only (every step
on the CPU), so on a GPU a run may pass its budget by up to ``log_every - 1`` steps; ordinary steps
never synchronise.
The run's settings (threads, forced conv algorithm, deterministic mode) hold inside ``fit()``
only (``fastcnn.settings``): afterwards the process is as it was, also when fit raises.
"""
from __future__ import annotations

import json
import math
import sys
from contextlib import contextmanager
import time
from pathlib import Path

import numpy as np

from . import augment, backend, features, files, models, optim, rundir, threads
from . import schedule as schedules
from .config import TrainConfig
from .inference import evaluate
from .data import BatchIterator
from .data.formats import load_data, select_classes
from .nn import SoftmaxCrossEntropy
from .scoped_settings import settings
from .step import train_step


#: Accuracy levels whose first crossing is recorded in metrics.json ("milestones").
MILESTONES = (0.97, 0.98, 0.985, 0.99)


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, an unwritable run directory)."""


@contextmanager
def buffers_restored(model):
    """Run a block of untimed passes (warm-up, tuning) without leaving a trace in the model's
    buffers: batch-norm running statistics are put back as they were."""
    saved = [(layer, {k: b.copy() for k, b in layer.buffers().items()}) for layer in model.layers]
    try:
        yield
    finally:
        for layer, bufs in saved:
            for k, b in bufs.items():
                getattr(layer, k)[...] = b


class Trainer:
    """Trains ``model`` (built from ``config.model`` when None) on ``data`` (MNIST when None).

    ``fit()`` returns the metrics dict, also written to ``<out>/metrics.json`` with
    ``config.json``, ``history.json``, ``model.npz`` (weights) and ``state.npz``
    (optimizer, schedule and loop position, for ``Trainer.resume``).
    """

    def __init__(self, config: TrainConfig, model=None, data=None, out=None):
        self.config = config.resolved()
        c = self.config
        self.xp = backend.get(c.backend)
        #: what fit() runs under, scoped (fastcnn.settings)
        self.settings = {"threads": c.threads, "conv_algo": c.conv_algo, "deterministic": c.deterministic}
        self.dtype = np.dtype(c.dtype)
        self.model = model if model is not None else models.build(c.model, seed=c.seed)
        self.model.to(self.xp, self.dtype)
        self.model.fusion = c.fuse  # Conv→ReLU(→MaxPool) fused on the CPU backend (Sequential.plan)
        self.data = data if data is not None else load_data(c.data_dir)  # idx dir, .csv, .npz or .mat
        if c.classes:
            self.data = select_classes(self.data, c.classes)
        if c.val_fraction > 0:
            self.data = self.data.split_validation(c.val_fraction, c.seed)
        x0 = self.data.x_train  # labels checked once, on the host: CuPy's indexing would wrap them around
        self.data.check_labels(self.model.output_shape((1, *x0.shape[1:]) if x0.ndim == 3 else x0.shape[1:])[-1])
        self.out = Path(out or c.out or rundir.default_run_dir(c.model))
        self.loss_fn = SoftmaxCrossEntropy(c.label_smoothing)
        x_train = backend.to_device(self.data.x_train, self.xp)  # uploaded once, as uint8
        y_train = backend.to_device(np.asarray(self.data.y_train, np.int64), self.xp)
        self.batches = BatchIterator(x_train, y_train, c.batch_size, shuffle=True, seed=c.seed,
                                     xp=self.xp, dtype=self.dtype)
        self.batches = augment.maybe_wrap(self.batches, c, self.model)  # --augment / --augment-mistakes
        self.steps_per_epoch = len(self.batches)
        # evaluate five times an epoch unless told otherwise (0: at the end of each epoch only)
        self.eval_every = c.eval_every if c.eval_every is not None else max(1, self.steps_per_epoch // 5)
        if self.eval_every == 0:
            self.eval_every = self.steps_per_epoch
        self.optimizer = optim.make(c.optimizer, self.model.parameters(), c.lr, weight_decay=c.weight_decay,
                                    **features.optimizer_kwargs(c))
        r = models.recipe(c.model)
        self.schedule = schedules.make(c.schedule, self.optimizer, c.epochs, self.steps_per_epoch,
                                       **features.schedule_kwargs(c, r))
        self.ema = features.make_ema(c, self.model)  # None unless --ema / the recipe
        self.state = {"epoch": 0, "step_in_epoch": 0, "step": 0, "train_seconds": 0.0, "samples": 0,
                      "target_reached_seconds": None, "eval_seconds": 0.0, "milestones": {}}
        self.history: list = []
        self.status = "running"
        self.profiler = None

    # --- run directory -------------------------------------------------------------
    def _prepare_out(self):
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            files.save_json(self.out / "config.json", self.config.to_dict())
        except OSError as e:
            raise TrainingError(f"cannot write the run directory {self.out}: {e.strerror or e}; "
                                "choose another with --out") from e

    def checkpoint(self):
        """Write model.npz (the EMA weights with --ema) and state.npz (optimizer, schedule, loop
        position, EMA) atomically."""
        with features.averaged(self.ema):
            self.model.save(self.out / "model.npz")
        st = {f"opt.{k}": np.asarray(v) for k, v in self.optimizer.state_dict().items()}
        st.update(self.ema.state_dict() if self.ema else {})
        st["loop"] = np.array(json.dumps({"state": self.state, "history": self.history,
                                          "schedule": self.schedule.state_dict()}))
        files.save_npz(self.out / "state.npz", st)

    @classmethod
    def resume(cls, run_dir, data=None, **overrides) -> "Trainer":
        """A Trainer that continues the run in ``run_dir`` where its last checkpoint left it."""
        run_dir = Path(run_dir)
        cfg, st = rundir.load_checkpoint(run_dir)
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        t = cls(TrainConfig.from_dict(cfg), data=data, out=run_dir)
        t.model.load(run_dir / "model.npz")
        t.optimizer.load_state_dict({k[4:]: v for k, v in st.items() if k.startswith("opt.")})
        loop = json.loads(str(st["loop"]))
        t.state.update(loop["state"])
        t.history = loop["history"]
        t.schedule.load_state_dict(loop["schedule"])
        if t.ema is not None:
            t.ema.load_state_dict(st)  # model.npz held the averaged weights: the live ones come back
        return t

    # --- evaluation ----------------------------------------------------------------
    def evaluate(self) -> dict:
        t0 = time.perf_counter()
        tta = self.config.tta or 0
        if getattr(self, "_eval_sets", None) is None:  # on a GPU: uploaded once per run, not per evaluation
            sets = {"test": (self.data.x_test, self.data.y_test), "val": (getattr(self.data, "x_val", None),
                                                                         getattr(self.data, "y_val", None))}
            self._eval_sets = {k: (backend.to_device(x, self.xp), backend.to_device(np.asarray(y, np.int64), self.xp))
                               for k, (x, y) in sets.items() if x is not None}
        with features.averaged(self.ema):
            res = {k: evaluate(self.model, x, y, tta=tta) for k, (x, y) in self._eval_sets.items()}
        self.state["eval_seconds"] += time.perf_counter() - t0
        return res

    def _record(self, loss, train_acc, ev):
        s = self.state
        row = {"step": s["step"], "epoch": s["step"] / self.steps_per_epoch, "train_seconds": s["train_seconds"],
               "loss": loss, "train_accuracy": train_acc, "test_accuracy": ev["test"]["accuracy"],
               "test_loss": ev["test"]["loss"], "lr": self.optimizer.lr}
        if "val" in ev:
            row["val_accuracy"] = ev["val"]["accuracy"]
        self.history.append(row)
        files.save_json(self.out / "history.json", self.history)
        return row

    # --- the loop ------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until the epochs are done, the target accuracy is met or the time budget is spent.
        The run's settings hold inside this call only and are restored when it returns or raises."""
        with settings(**self.settings):
            return self._fit()

    def _fit(self) -> dict:
        from tqdm.auto import tqdm

        c, s, xp = self.config, self.state, self.xp
        self._prepare_out()
        self.model.train()
        self._warmup()
        if c.profile:
            from .profiler import Profiler
            self.profiler = Profiler(self.model)
        bar = tqdm(total=c.epochs * self.steps_per_epoch, initial=s["step"], disable=not c.progress,
                   unit="step", dynamic_ncols=True, file=sys.stderr)
        run_loss = xp.zeros((), self.dtype)
        run_correct = xp.zeros((), xp.int64)
        run_n, last_loss = 0, float("nan")
        seg_t, seg_samples = 0.0, 0
        try:
            while s["epoch"] < c.epochs and self.status == "running":
                self.batches.set_epoch(s["epoch"])
                for xb, yb in self.batches.iter_from(s["step_in_epoch"]):
                    t0 = time.perf_counter()
                    loss, logits = train_step(self.model, self.loss_fn, self.optimizer, xb, yb)
                    if self.ema is not None:
                        self.ema.update()
                    if self.schedule.per_batch:
                        self.schedule.step()
                    run_loss += loss
                    correct = self.loss_fn.correct  # counted by the GPU loss kernel (None on the CPU)
                    run_correct += (logits.argmax(axis=1) == yb).sum() if correct is None else correct
                    s["step"] += 1
                    s["step_in_epoch"] += 1
                    run_n += len(yb)
                    log_now = s["step"] % c.log_every == 0 or s["step_in_epoch"] == self.steps_per_epoch
                    eval_now = s["step_in_epoch"] == self.steps_per_epoch or s["step"] % self.eval_every == 0
                    synced = xp is np or log_now or eval_now  # train_seconds is read on these steps only
                    if xp is np and not math.isfinite(float(loss)):
                        self._diverged(float(loss))
                    if synced:
                        backend.synchronize(xp)
                        self._sample_device_memory()
                    dt = time.perf_counter() - t0
                    s["train_seconds"] += dt
                    s["samples"] += len(yb)
                    seg_t += dt
                    seg_samples += len(yb)
                    bar.update(1)
                    if log_now:
                        last_loss = float(run_loss) / max(1, s["step"] % c.log_every or c.log_every)
                        if not math.isfinite(last_loss):
                            self._diverged(last_loss)
                        bar.set_postfix(loss=f"{last_loss:.4f}", acc=f"{int(run_correct) / max(run_n, 1):.4f}",
                                        sps=f"{seg_samples / max(seg_t, 1e-9):,.0f}", refresh=False)
                        run_loss[...] = 0
                    if eval_now:
                        train_acc = int(run_correct) / max(run_n, 1)
                        run_correct[...] = 0
                        run_n = 0
                        self._evaluate_and_check(last_loss, train_acc, bar)
                    if synced and c.time_budget is not None and s["train_seconds"] >= c.time_budget \
                            and self.status == "running":
                        self.status = "time_budget"
                    if self.status != "running":
                        break
                else:  # the epoch's batches are exhausted
                    s["step_in_epoch"] = self.steps_per_epoch
                if s["step_in_epoch"] >= self.steps_per_epoch:
                    s["epoch"] += 1
                    s["step_in_epoch"] = 0
                    if not (self.schedule.per_batch or self.schedule.per_eval):
                        last = self.history[-1] if self.history else {}
                        self.schedule.step(last.get("val_accuracy", last.get("test_accuracy")))
            if self.status == "running":
                self.status = "completed"
        except KeyboardInterrupt:
            self.status = "interrupted"
            bar.write(f"interrupted at step {s['step']}: saving the run to {self.out} "
                      f"(continue with: fastcnn train --resume {self.out})")
        finally:
            bar.close()
            if self.profiler is not None:
                self.profiler.close()
        if not self.history or self.history[-1]["step"] != s["step"]:
            self._record(last_loss, float("nan"), self.evaluate())
        self.checkpoint()
        return self._finish()

    def _warmup(self):
        """One untimed forward/backward on a real batch, so that Numba compilation and the
        automatic choice of algorithms (timed once per machine, fastcnn.tuning) stay out of
        train_seconds (they are reported as compile_seconds). Batch-norm statistics are
        restored; no parameter changes."""
        t0 = time.perf_counter()
        from .kernels.cpu import on_first_compile

        def notice(name):
            if self.config.progress:
                print("compiling the Numba kernels this run uses, for this machine (the first run only; "
                      "cached afterwards)…", file=sys.stderr, flush=True)

        self.batches.set_epoch(self.state["epoch"])
        xb, yb = next(iter(self.batches.iter_from(0)))
        with buffers_restored(self.model), on_first_compile(notice):
            self.loss_fn.forward(self.model.forward(xb), yb)
            self.model.backward(self.loss_fn.backward())
        self.optimizer.compile_kernels()  # the GPU's update kernels compile here, not in a timed step
        if self.ema is not None:
            self.ema.compile_kernels()
        self.state["blas_threads"] = threads.COMPUTE_BLAS_THREADS if self.xp is np else None
        self.model.clear_cache()
        backend.synchronize(self.xp)
        self.state["compile_seconds"] = self.state.get("compile_seconds", 0.0) + time.perf_counter() - t0

    def _evaluate_and_check(self, loss, train_acc, bar):
        c, s = self.config, self.state
        row = self._record(loss, train_acc, self.evaluate())
        self.checkpoint()
        monitored = row.get("val_accuracy", row["test_accuracy"])
        if self.schedule.per_eval:
            self.schedule.step(monitored)
        bar.write(f"step {s['step']:>6}  epoch {row['epoch']:.2f}  loss {loss:.4f}  "
                  f"test acc {row['test_accuracy']:.4f}  train {s['train_seconds']:.1f}s")
        for level in MILESTONES:  # time to each accuracy level, whatever the target
            if monitored >= level and str(level) not in s["milestones"]:
                s["milestones"][str(level)] = {"train_seconds": s["train_seconds"], "step": s["step"]}
        if c.target_acc is not None and monitored >= c.target_acc:
            if s["target_reached_seconds"] is None:
                s["target_reached_seconds"] = s["train_seconds"]
            self.status = "target_reached"
        if c.patience is not None and self._patience_spent(monitored) and self.status == "running":
            self.status = "early_stopped"

    def _patience_spent(self, acc) -> bool:
        """Early stopping: keep the best weights in best.npz; True once ``patience`` evaluations
        in a row have not beaten the best (validation, else test) accuracy."""
        s = self.state
        if s.get("best_accuracy") is None or acc > s["best_accuracy"]:
            s.update(best_accuracy=acc, best_step=s["step"], evals_since_best=0)
            with features.averaged(self.ema):
                self.model.save(self.out / "best.npz")
            return False
        s["evals_since_best"] = s.get("evals_since_best", 0) + 1
        return s["evals_since_best"] >= self.config.patience

    def _diverged(self, loss):
        self.status = "diverged"
        s = self.state
        msg = (f"the loss became {loss} at step {s['step']}: training stopped; the last good checkpoint "
               f"(step {self.history[-1]['step'] if self.history else 0}) is kept in {self.out}. "
               "Try a lower learning rate (--lr).")
        files.save_json(self.out / "metrics.json", {**self._metrics(), "status": "diverged", "error": msg})
        raise TrainingError(msg)

    def _metrics(self) -> dict:
        s = self.state
        last = self.history[-1] if self.history else {}
        ran = self.model.plan() if self.xp is np else self.model.layers
        convs = {l.name: l.algo_used for l in ran if getattr(l, "algo_used", None)}
        m = {
            "test_accuracy": last.get("test_accuracy"),
            "test_loss": last.get("test_loss"),
            "train_seconds": s["train_seconds"],
            "samples_per_second": s["samples"] / s["train_seconds"] if s["train_seconds"] else None,
            "epochs": s["step"] / self.steps_per_epoch,
            "steps": s["step"],
            "params": self.model.num_params(),
            "model": self.config.model,
            "backend": backend.name_of(self.xp),
            "conv_algo": convs,
            "seed": self.config.seed,
            "target_acc": self.config.target_acc,
            "target_reached_seconds": s["target_reached_seconds"],
            "seconds_to_97": s["milestones"].get("0.97", {}).get("train_seconds"),
            "milestones": s["milestones"],
            "eval_seconds": s["eval_seconds"],
            "compile_seconds": s.get("compile_seconds", 0.0),
            "blas_threads": s.get("blas_threads"),
            "status": self.status,
            "features": features.used(self.config, self.model, self.schedule),
        }
        if s.get("best_accuracy") is not None:
            m.update(best_accuracy=s["best_accuracy"], best_step=s["best_step"], best_checkpoint="best.npz")
        if "val_accuracy" in last:
            m["val_accuracy"] = last["val_accuracy"]
        if self.xp is not np:
            m["peak_device_memory_bytes"] = self._sample_device_memory()
        return m

    def _sample_device_memory(self) -> int:
        """The most device memory CuPy's pool has held, sampled on synchronised steps and at the end:
        ``MemoryPool.total_bytes()`` (blocks in use plus cached free ones), which grows only when the
        arrays in use need more, so it bounds their peak from above (rounding to 512 B and cached
        blocks included); the maximum over samples keeps that peak when blocks are later freed."""
        if self.xp is np:
            return 0
        self._peak_pool_bytes = max(getattr(self, "_peak_pool_bytes", 0),
                                    int(self.xp.get_default_memory_pool().total_bytes()))
        return self._peak_pool_bytes

    def _finish(self) -> dict:
        m = self._metrics()
        files.save_json(self.out / "metrics.json", m)
        if self.profiler is not None:
            m["profile"] = self.profiler.table()
        return m


def train(config: TrainConfig, **kw) -> dict:
    """Build a Trainer for ``config`` and run it; returns the metrics."""
    return Trainer(config, **kw).fit()
