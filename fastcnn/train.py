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

The Trainer builds every part from the run's record (fastcnn.config.RunRecord, resolved once
and saved as config.json) and never consults the preset's recipe itself. A checkpoint is one
unit (``checkpoint``): config.json, model.npz, history.json, metrics.json (and best.npz) are
written to temporary files first and renamed into place with state.npz last; state.npz alone
holds everything a resumed run needs (weights, optimizer, EMA, schedule, loop position,
history), so a run always resumes from a whole checkpoint, and model.npz carries its step so
that a pair cut between two renames (kill -9 in those microseconds) is seen and repaired by the
next resume. A checkpoint is written only when every parameter, buffer and optimizer/EMA
state is finite; otherwise the run has diverged and the last good one stays.
"""
from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
from contextlib import contextmanager
import time
from pathlib import Path

import numpy as np

from . import augment, backend, features, files, models, optim, rundir, threads
from . import schedule as schedules
from .config import TrainConfig, record_from_dict
from .inference import check_images, evaluate
from .data import BatchIterator
from .data.formats import load_data, select_classes
from .rundir import RunDirError
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
    """Trains ``model`` (built from ``config.model`` when None) on ``data`` (the record's data
    source when None) into the run directory ``out`` (default: ``config.out``, else
    ``runs/MODEL-TIME``).

    ``fit()`` returns the metrics dict, also written to ``<out>/metrics.json`` with
    ``config.json`` (the record), ``history.json``, ``model.npz`` (weights) and ``state.npz``
    (the checkpoint ``Trainer.resume`` continues from). A directory that already holds a run is
    an error unless ``overwrite`` (which removes that run's files first); one process at a time
    trains in a directory (``rundir.locked``).
    """

    def __init__(self, config: TrainConfig, model=None, data=None, out=None, overwrite: bool = False,
                 _resuming: bool = False):
        record = config.resolved(data_given=data is not None)  # the one record; checked
        self.out = Path(out or record.out or rundir.default_run_dir(record.model)).absolute()
        self.config = c = dataclasses.replace(record, out=str(self.out))
        self.overwrite, self._resuming = overwrite, _resuming
        if not _resuming:
            self._check_out()
        self.xp = backend.get(c.backend)
        #: what fit() runs under, scoped (fastcnn.settings)
        self.settings = {"threads": c.threads, "conv_algo": c.conv_algo, "deterministic": c.deterministic}
        self.dtype = np.dtype(c.dtype)
        self.model = model if model is not None else models.build(c.model, seed=c.seed)
        self.model.to(self.xp, self.dtype)
        self.model.fusion = c.fuse  # Conv→ReLU(→MaxPool) fused on the CPU backend (Sequential.plan)
        # idx dir, .csv, .npz or .mat; the bundled MNIST when the record says so
        self.data = data if data is not None else load_data(rundir.data_location(c.to_dict()))
        if c.classes:
            self.data = select_classes(self.data, c.classes)
        # images of the model's size, checked before anything is written (a 32×32 set fails here)
        check_images(self.model, self.data.x_train, f"the training images of {self.data.name}")
        check_images(self.model, self.data.x_test, f"the test images of {self.data.name}")
        if c.val_fraction > 0:
            self.data = self.data.split_validation(c.val_fraction, c.seed)
        x0 = self.data.x_train  # labels checked once, on the host: CuPy's indexing would wrap them around
        self.data.check_labels(self.model.output_shape((1, *x0.shape[1:]) if x0.ndim == 3 else x0.shape[1:])[-1])
        self.loss_fn = SoftmaxCrossEntropy(c.label_smoothing)
        x_train = backend.to_device(self.data.x_train, self.xp)  # uploaded once, as uint8
        y_train = backend.to_device(np.asarray(self.data.y_train, np.int64), self.xp)
        self.batches = BatchIterator(x_train, y_train, c.batch_size, shuffle=True, seed=c.seed,
                                     xp=self.xp, dtype=self.dtype)
        self.batches = augment.maybe_wrap(self.batches, c, self.model)  # --augment / --augment-mistakes
        self.steps_per_epoch = len(self.batches)
        # evaluate every eval_every steps (0: at the end of each epoch); by default about five times an
        # epoch, on its fifths (eval_points below; eval_every is then their mean spacing)
        self.eval_every = c.eval_every if c.eval_every is not None else max(1, self.steps_per_epoch // 5)
        if self.eval_every == 0:
            self.eval_every = self.steps_per_epoch
        #: by default, the steps into an epoch after which it is evaluated: its fifths (every
        #: steps_per_epoch // 5 steps had two evaluations 3 steps apart at an epoch's end);
        #: None with --eval-every N: every N steps and at each epoch's end, as asked
        spe = self.steps_per_epoch
        self.eval_points = {round(k * spe / 5) for k in range(1, 6)} - {0} if c.eval_every is None else None
        self.optimizer = optim.make(c.optimizer, self.model.parameters(), c.lr, weight_decay=c.weight_decay,
                                    **features.optimizer_kwargs(c))
        try:
            self.schedule = schedules.make(c.schedule, self.optimizer, c.epochs, self.steps_per_epoch,
                                           **features.schedule_kwargs(c))
        except TypeError as e:
            raise ValueError(f"schedule_args {c.schedule_args} do not fit the {c.schedule} schedule: {e}") from None
        self.ema = features.make_ema(c, self.model)  # None unless --ema / the recipe
        self.state = {"epoch": 0, "step_in_epoch": 0, "step": 0, "train_seconds": 0.0, "samples": 0,
                      "target_reached_seconds": None, "eval_seconds": 0.0, "milestones": {}}
        self.history: list = []
        self.status = "running"
        self.profiler = None
        self._best = None  # best.npz's weights, written with the next checkpoint
        self._saved = None  # (step, metrics) of the last checkpoint written (or resumed from)
        self._wrote = False  # whether this process wrote a checkpoint

    # --- run directory -------------------------------------------------------------
    def _check_out(self):
        """A new run needs a directory that holds no run, unless ``overwrite``."""
        held = rundir.holds_run(self.out)
        if held and not self.overwrite:
            raise RunDirError(f"{self.out} already holds a run ({', '.join(held)}): choose another --out, continue "
                              f"it with --resume {self.out}, or replace it with --overwrite")

    def _start(self):
        """Claim the run directory (under its lock): refuse or clear an old run, remove the
        temporary files a killed run left, and write the record with the first checkpoint (step 0
        of a new run; the restored one of a resumed run, which also repairs a checkpoint cut
        between its renames and replaces the old metrics.json)."""
        if not self._resuming:
            self._check_out()
            if self.overwrite:
                rundir.clear_run(self.out)
            models.user.save_source(self.config.model, self.out)  # PATH.py:FUNC: its path, hash and a copy
        rundir.remove_temporaries(self.out)
        self.checkpoint(with_config=True)

    def checkpoint(self, with_config: bool = False):
        """Write the checkpoint as one unit (fastcnn.files.write_group): model.npz (the EMA
        weights with --ema), history.json, metrics.json, best.npz when it improved, and last
        state.npz (weights, optimizer, EMA, schedule, loop position, history). Nothing is written
        when a tensor is not finite: the run has diverged (TrainingError) and the last good
        checkpoint stays. A failed write (a full disk) is a TrainingError naming the file; the
        previous checkpoint stays whole."""
        s = self.state
        live = self.model.state_dict()
        if self.ema is not None:
            with self.ema.applied():  # copies: state_dict shares the host arrays it is given
                weights = {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
        else:
            weights = live
        weights = {**weights, "__step__": np.array(s["step"])}
        st = {"__step__": np.array(s["step"]), **{f"model.{k}": v for k, v in live.items()}}
        st.update({f"opt.{k}": np.asarray(v) for k, v in self.optimizer.state_dict().items()})
        st.update(self.ema.state_dict() if self.ema else {})
        st.update({f"schedule.{k}": np.asarray(v) for k, v in self.schedule.state_dict().items()})
        st["loop"] = np.array(files.json_text({"state": s, "history": self.history}))
        bad = rundir.first_non_finite(st) or rundir.first_non_finite(weights)
        if bad:
            self._diverged(None, tensor=repr(bad))
        metrics = self._metrics()
        group = [("config.json", self.config.to_dict())] if with_config else []
        group += [("model.npz", weights), ("history.json", self.history), ("metrics.json", metrics)]
        if self._best is not None:
            group.append(("best.npz", self._best))
        group.append(("state.npz", st))  # last: the commit
        try:
            files.write_group([(self.out / name, _writer(obj)) for name, obj in group])
        except OSError as e:
            self.status = "failed"
            kept = f"the last complete checkpoint (step {self._saved[0]}) is kept" if self._saved else "nothing was saved"
            msg = f"cannot save the checkpoint of step {s['step']}: {e}; {kept} in {self.out}"
            if self._saved and self._wrote:  # (a resume that cannot save its start leaves the run as it was)
                try:
                    files.save_json(self.out / "metrics.json", {**self._saved[1], "status": "failed", "error": msg})
                except OSError:
                    pass  # the disk is still full: metrics.json says "running", as the checkpoint kept
            raise TrainingError(msg) from e
        self._best = None
        self._saved = (s["step"], metrics)
        self._wrote = True

    @classmethod
    def resume(cls, run_dir, data=None, **overrides) -> "Trainer":
        """A Trainer that continues the run in ``run_dir`` where its last checkpoint left it.

        The run goes on with its record (config.json); ``overrides`` may change only the
        settings in fastcnn.config.RESUMABLE (others are a ValueError naming them). Everything is
        read and checked before anything in ``run_dir`` is written (that happens in ``fit``)."""
        run_dir = Path(run_dir).absolute()
        cfg, st, loop = rundir.load_checkpoint(run_dir)
        try:
            record = record_from_dict(cfg)
            record.check()
        except (TypeError, ValueError) as e:
            raise RunDirError(f"{run_dir / 'config.json'} is not a run's record: {e}") from None
        record = record.resumed(**overrides)
        if data is None and record.data_source == "arrays" and record.data_dir is None:
            raise RunDirError(f"{run_dir} was trained on arrays handed to the Trainer, not on data it can read again: "
                              "pass the same data set, Trainer.resume(run_dir, data=...)")
        t = cls(record, data=data, out=run_dir, _resuming=True)
        try:
            t._restore(st, loop, run_dir)
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, RunDirError):
                raise
            raise RunDirError(f"{run_dir / 'state.npz'} does not fit its run ({e}); it cannot be resumed") from None
        return t

    def _restore(self, st: dict, loop: dict, run_dir: Path):
        """Load a checkpoint's state (rundir.load_checkpoint) into this Trainer's parts."""
        weights = {k[6:]: v for k, v in st.items() if k.startswith("model.")}
        if weights:
            self.model.load_state_dict(weights)
        else:  # a checkpoint written before state.npz held the weights
            self.model.load_state_dict(rundir._load_checked(run_dir / "model.npz"))
        self.optimizer.load_state_dict({k[4:]: v for k, v in st.items() if k.startswith("opt.")})
        sched = {k[9:]: v for k, v in st.items() if k.startswith("schedule.")} or loop.get("schedule")
        self.schedule.load_state_dict(sched or {})
        if self.ema is not None:
            self.ema.load_state_dict(st)  # the shadows, and the live weights back into the model
        state = loop["state"]
        spe = self.steps_per_epoch
        if not (isinstance(state.get("step"), int) and isinstance(state.get("epoch"), int)
                and isinstance(state.get("step_in_epoch"), int) and 0 <= state["step_in_epoch"] <= spe):
            raise RunDirError(f"{run_dir / 'state.npz'}: its loop position ({state.get('step_in_epoch')} steps into "
                              f"epoch {state.get('epoch')}) does not fit the data's {spe} steps per epoch: the data "
                              "set (or its size) changed since the run was saved")
        self.state.update(state)
        self.history = list(loop.get("history", []))
        self._saved = (self.state["step"], self._metrics())  # the checkpoint kept if the next one fails

    # --- evaluation ----------------------------------------------------------------
    def evaluates_after(self, step_in_epoch: int, step: int) -> bool:
        """Whether the run evaluates after ``step`` (``step_in_epoch`` steps into its epoch): on an
        epoch's fifths by default (eval_points), else every eval_every steps and at each epoch's end."""
        if self.eval_points is not None:
            return step_in_epoch in self.eval_points
        return step_in_epoch == self.steps_per_epoch or step % self.eval_every == 0

    def evaluate(self, tta: int = 0) -> dict:
        """{"test": {"accuracy", "loss"}} (and "val" with a validation split) of the weights in
        use (the EMA's with --ema). Evaluations during training are plain: every stop rule,
        milestone and schedule watches the plain accuracy; ``tta`` (the final evaluation only:
        _record_tta) averages over image shifts and is reported in its own column."""
        t0 = time.perf_counter()
        if getattr(self, "_eval_sets", None) is None:  # on a GPU: uploaded once per run, not per evaluation
            sets = {"test": (self.data.x_test, self.data.y_test), "val": (getattr(self.data, "x_val", None),
                                                                         getattr(self.data, "y_val", None))}
            self._eval_sets = {k: (backend.to_device(x, self.xp), backend.to_device(np.asarray(y, np.int64), self.xp))
                               for k, (x, y) in sets.items() if x is not None}
        with features.averaged(self.ema):
            res = {k: evaluate(self.model, x, y, tta=tta) for k, (x, y) in self._eval_sets.items()}
        self.state["eval_seconds"] += time.perf_counter() - t0
        return res

    def _record_tta(self, row: dict) -> None:
        """Add the final weights' test-time-augmented accuracies to their history row (--tta)."""
        ev = self.evaluate(tta=self.config.tta)
        row["test_accuracy_tta"] = ev["test"]["accuracy"]
        if "val" in ev:
            row["val_accuracy_tta"] = ev["val"]["accuracy"]

    def _record(self, loss, train_acc, ev):
        """Append an evaluation to the history (written with the next checkpoint; a value not
        measured is None, null in JSON)."""
        s = self.state
        row = {"step": s["step"], "epoch": s["step"] / self.steps_per_epoch, "train_seconds": s["train_seconds"],
               "loss": _number(loss), "train_accuracy": _number(train_acc), "test_accuracy": ev["test"]["accuracy"],
               "test_loss": _number(ev["test"]["loss"]), "lr": self.optimizer.lr}
        if "val" in ev:
            row["val_accuracy"] = ev["val"]["accuracy"]
        self.history.append(row)
        return row

    # --- the loop ------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until the epochs are done, the target accuracy is met or the time budget is spent.
        The run's settings hold inside this call only and are restored when it returns or raises.
        Ctrl-C stops the run, saves it (status "interrupted", resumable) and returns."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrainingError(f"cannot write the run directory {self.out}: {e.strerror or e}; "
                                "choose another with --out") from e
        with settings(**self.settings), rundir.locked(self.out):
            return self._fit()

    def _fit(self) -> dict:
        from tqdm.auto import tqdm

        c, s, xp = self.config, self.state, self.xp
        self._start()
        self.model.train()
        bar = None
        run_n, last_loss = 0, float("nan")
        seg_t, seg_samples = 0.0, 0
        try:
            self._warmup()
            if c.profile:
                from .profiler import Profiler
                self.profiler = Profiler(self.model)
            bar = tqdm(total=c.epochs * self.steps_per_epoch, initial=s["step"], disable=not c.progress,
                       unit="step", dynamic_ncols=True, file=sys.stderr)
            run_loss = xp.zeros((), self.dtype)
            run_correct = xp.zeros((), xp.int64)
            while s["epoch"] < c.epochs and self.status == "running":
                self.batches.set_epoch(s["epoch"])
                for xb, yb in self.batches.iter_from(s["step_in_epoch"]):
                    t0 = time.perf_counter()
                    with _whole_step():  # Ctrl-C takes effect after the step, never inside it
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
                    eval_now = self.evaluates_after(s["step_in_epoch"], s["step"])
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
            print(f"\ninterrupted at step {s['step']}: saving the run to {self.out} "
                  f"(continue with: fastcnn train --resume {self.out})", file=sys.stderr, flush=True)
        finally:
            if bar is not None:
                bar.close()
            if self.profiler is not None:
                self.profiler.close()
        try:
            if s["step"] and (not self.history or self.history[-1]["step"] != s["step"]):
                self._record(last_loss, None, self.evaluate())
            if s["step"] and self.config.tta and "test_accuracy_tta" not in self.history[-1]:
                self._record_tta(self.history[-1])
        except KeyboardInterrupt:  # a second Ctrl-C: save without the last evaluation
            self.status = "interrupted"
        self.checkpoint()
        return self._finish()

    def _warmup(self):
        """One untimed forward/backward on a real batch, so that Numba compilation and the
        automatic choice of algorithms (timed once per machine, fastcnn.tuning) stay out of
        train_seconds (they are reported as compile_seconds). Batch-norm statistics are
        restored; no parameter changes."""
        t0 = time.perf_counter()
        from .kernels.cpu import on_first_compile
        from .kernels.cpu.precompile import helper_when_compiling
        from .nn.fused import backward_specs

        def notice(name):
            if self.config.progress:
                print("compiling the Numba kernels this run uses, for this machine (the first run only; "
                      "cached afterwards)…", file=sys.stderr, flush=True)

        self.batches.set_epoch(self.state["epoch"])
        xb, yb = next(iter(self.batches.iter_from(0)))
        # a cold cache: the backward shares compile in a second process while this one compiles the
        # forward (kernels/cpu/precompile.py)
        specs = backward_specs(self.model.plan(), xb.shape[1:]) if self.xp is np and hasattr(self.model, "plan") else []
        with buffers_restored(self.model), on_first_compile(notice), helper_when_compiling(specs) as helper:
            self.loss_fn.forward(self.model.forward(xb), yb)
            helper.wait()
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
        monitored = row.get("val_accuracy", row["test_accuracy"])
        if self.schedule.per_eval:
            self.schedule.step(monitored)
        shown = f"{loss:.4f}" if math.isfinite(loss) else "  —   "  # no loss logged yet
        bar.write(f"step {s['step']:>6}  epoch {row['epoch']:.2f}  loss {shown}  "
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
        self.checkpoint()

    def _patience_spent(self, acc) -> bool:
        """Early stopping: keep the best weights in best.npz; True once ``patience`` evaluations
        in a row have not beaten the best (validation, else test) accuracy."""
        s = self.state
        if s.get("best_accuracy") is None or acc > s["best_accuracy"]:
            s.update(best_accuracy=acc, best_step=s["step"], evals_since_best=0)
            with features.averaged(self.ema):
                # written with this evaluation's checkpoint
                self._best = {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
            return False
        s["evals_since_best"] = s.get("evals_since_best", 0) + 1
        return s["evals_since_best"] >= self.config.patience

    def _diverged(self, loss, tensor=None):
        """Stop: the loss (or, ``tensor``, a weight, batch-norm statistic or optimizer state)
        is not finite. The last good checkpoint stays; metrics.json describes it, with status
        "diverged" and the error."""
        self.status = "diverged"
        s = self.state
        what = f"the loss became {loss}" if tensor is None else f"{tensor} holds NaN or infinity"
        kept = (f"the last good checkpoint (step {self._saved[0]}) is kept in {self.out}" if self._saved
                else "nothing was saved")
        msg = f"{what} at step {s['step']}: training stopped; {kept}. Try a lower learning rate (--lr)."
        if self._saved:
            try:
                files.save_json(self.out / "metrics.json", {**self._saved[1], "status": "diverged", "error": msg,
                                                            "diverged_at_step": s["step"]})
            except OSError:
                pass
        raise TrainingError(msg)

    def _metrics(self) -> dict:
        s = self.state
        last = self.history[-1] if self.history else {}
        ran = self.model.plan() if self.xp is np else self.model.layers
        convs = {l.name: l.algo_used for l in ran if getattr(l, "algo_used", None)}
        m = {
            "test_accuracy": last.get("test_accuracy"),
            "test_accuracy_tta": last.get("test_accuracy_tta"),
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
            "watched": "validation" if getattr(self.data, "x_val", None) is not None else "test",
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
        m = dict(self._saved[1])  # as the last checkpoint wrote it to metrics.json
        if self.profiler is not None:
            m["profile"] = self.profiler.table()
        return m


@contextmanager
def _whole_step():
    """Ctrl-C (SIGINT) during a training step takes effect when the step is done, so that the
    weights, optimizer, EMA, schedule and loop position saved by the interrupted run agree (a
    KeyboardInterrupt between the optimizer's update and the step count would save a step that a
    resume applies twice). Only where Python's own handler is in place, on the main thread; the
    handler is restored after every step."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    pending = []
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pending:
        raise KeyboardInterrupt


def _number(v):
    """A float, or None for a value not measured (NaN)."""
    return None if v is None or not math.isfinite(v) else float(v)


def _writer(obj):
    """The write(f) function of one checkpoint file: arrays -> npz, anything else -> strict JSON."""
    if isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
        return lambda f: np.savez(f, **obj)
    data = files.json_text(obj, indent=2).encode()
    return lambda f: f.write(data)


def train(config: TrainConfig, **kw) -> dict:
    """Build a Trainer for ``config`` and run it; returns the metrics."""
    return Trainer(config, **kw).fit()
