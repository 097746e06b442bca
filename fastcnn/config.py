"""The settings of a training run, validated with messages that say what to change, and the
run's record: the settings resolved once.

    TrainConfig(model="lenet5", lr=0.01)      what a user asks for; None: the preset's recipe
    record = config.resolved()                 a RunRecord: the recipe applied, every default filled,
                                               the data source absolute, checked; saved as config.json
    record = RunRecord.from_dict(saved)        read back without consulting the preset again
    record = record.resumed(epochs=4)          resume: only RESUMABLE settings may change

The Trainer builds every part of a run (model, data, optimizer, schedule, EMA, augmentation)
from the record alone. A new kind of source (e.g. a user's model file with its hash) is one
more ``record=True`` field: filled by ``resolved``, saved, and frozen on resume.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field, fields

from . import backend, models

#: The settings ``fastcnn train --resume`` may change: how long and where the run goes on, not
#: what it computes (a checkpoint written on the GPU continues on the CPU and back: --backend).
#: Any other setting given with --resume is an error naming it.
RESUMABLE = ("epochs", "time_budget", "target_acc", "threads", "progress", "profile", "backend")

#: Where a run's data came from (RunRecord.data_source).
DATA_SOURCES = {
    "data_dir": "the data_dir setting (--data-dir), recorded as an absolute path",
    "FASTCNN_DATA": "the FASTCNN_DATA environment variable, its absolute path recorded in data_dir",
    "bundled": "the MNIST bundled with fastcnn",
    "arrays": "a Dataset given to the Trainer (data_dir, when set, says where it was read from)",
}


def setting(default=None, help="", cli=True, record=False, **option):
    """A TrainConfig field with its documentation: ``help`` is the ``fastcnn train --NAME``
    help text; ``option`` holds extra argparse keywords (type, metavar, choices, nargs, const);
    ``cli=False``: not a command-line option (TOML and the library still take it);
    ``record=True``: not a setting but a fact the resolution records (neither an option nor a
    TOML key). The command line (fastcnn.cli.train) and the TOML reader (fastcnn.toml_config) are
    built from these fields, so a new setting is added here and nowhere else."""
    return field(default=default, metadata={"help": help, "cli": cli and not record, "record": record,
                                            "option": option})


def option_name(name: str) -> str:
    """The command-line option of setting ``name`` (``time_budget`` -> ``--time-budget``; a flag
    that is on by default: ``--no-progress``)."""
    f = TrainConfig.__dataclass_fields__.get(name)
    flag = name.replace("_", "-")
    return f"--no-{flag}" if f is not None and f.default is True else f"--{flag}"


@dataclass
class TrainConfig:
    """Every setting of a run; ``None`` means "the preset's recipe" (see models.Recipe)."""

    model: str = setting(models.DEFAULT, f"preset name (default: {models.DEFAULT}; fastcnn summary lists them), "
                         "or your own network: PATH.py:FUNC, FUNC returning an nn.Sequential")
    backend: str = setting("numpy", "numpy, cupy or auto")
    epochs: int | None = setting(help="epochs of the schedule")
    batch_size: int | None = setting(help="samples per training step")
    optimizer: str | None = setting(help="sgd, momentum, nesterov, adam, adamw")
    lr: float | None = setting(help="learning rate (peak lr of onecycle)")
    schedule: str | None = setting(help="none, step, multistep, exponential, cosine, onecycle, plateau, level")
    weight_decay: float | None = setting(help="L2 weight decay (decoupled for adamw)")
    momentum: float | None = setting(help="SGD momentum (optimizers sgd, momentum, nesterov; theirs: 0, 0.9, 0.9)")
    target_acc: float | None = setting(help="stop when test (or validation) accuracy reaches this fraction, e.g. 0.97")
    time_budget: float | None = setting(help="stop after this many seconds of training steps")
    seed: int = setting(0, "seed of the initial weights, the shuffling and the augmentation", type="non_negative_int")
    data_dir: str | None = setting(help="a directory with the four MNIST-format idx files (or $FASTCNN_DATA)")
    out: str | None = setting(help="run directory (default runs/MODEL-TIME)")
    conv_algo: str = setting("auto", "auto, naive, einsum, im2col, numba, cuda")
    threads: int | None = setting(help="CPU threads for BLAS and the kernels together", type="positive_int")
    eval_every: int | None = setting(help="evaluate every N steps (0: at each epoch's end; default: 5 times an epoch)")
    log_every: int = setting(20, "log the loss every N steps")
    val_fraction: float = setting(0.0, "hold out this fraction of the training data for validation")
    label_smoothing: float | None = setting(help="smooth the one-hot targets by this much, e.g. 0.1 (default: the recipe's)")
    dtype: str = setting("float32", "float32, or float64 (slower; for checks)", choices=["float32", "float64"])
    profile: bool = setting(False, "print forward/backward time per layer")
    fuse: bool = setting(True, "run Conv2D→ReLU(→MaxPool2D) as one fused Numba layer on the CPU (same results, "
                         "faster)", cli=False)
    deterministic: bool = setting(False, "no timing-based choices of algorithms: the same seed gives the same "
                                  "history, bit for bit")
    progress: bool = setting(True, "the progress bar")
    augment: str | None = setting(help="augment each batch: translate, shift, rotate, scale, squeeze, noise, blur with "
                                  "optional strengths, e.g. translate=2,rotate=10 (none: off)", metavar="SPEC")
    augment_mistakes: bool = setting(False, "each epoch, add augmented copies of the training images the model "
                                     "gets wrong")
    classes: str | None = setting(help="train and test on these digits only, e.g. 0,1,2", metavar="DIGITS")
    patience: int | None = setting(help="early stopping: stop after N evaluations without a better validation "
                                   "(else test) accuracy; the best weights are kept in RUN_DIR/best.npz")
    # training features (fastcnn.features); None: the recipe's, which leaves them off unless it says
    betas: tuple | None = setting(help="Adam/AdamW betas, e.g. 0.7,0.9", metavar="B1,B2")
    pct_start: float | None = setting(help="onecycle: fraction of the steps spent rising (0.3)")
    div_factor: float | None = setting(help="onecycle: initial lr = lr / this (25)")
    final_div_factor: float | None = setting(help="onecycle: final lr = initial lr / this (1e4)")
    ema: float | None = setting(help="evaluate and save a moving average of the weights with this decay, "
                                "e.g. 0.999 (0: off)", metavar="DECAY")
    tta: int | None = setting(help="test-time augmentation: average predictions over shifts of up to PIXELS "
                              "(--tta alone: 1; 0: off)", metavar="PIXELS", nargs="?", const=1)
    schedule_args: dict | None = setting(help="keyword arguments of the schedule, e.g. {step_size = 2, gamma = 0.5} "
                                         "(default: the recipe's when the schedule is the recipe's)", cli=False)
    # the record (filled by resolved(); see RunRecord)
    data_source: str | None = setting(help="where the data came from: " + "; ".join(
        f"{k}: {v}" for k, v in DATA_SOURCES.items()), record=True)

    def resolved(self, data_given: bool = False) -> "RunRecord":
        """The run's record: a RunRecord with the recipe's values filled in, the data source
        made absolute (``data_given``: the Trainer was handed a Dataset), checked. This is the
        one place the preset's recipe is consulted. Raises ValueError naming the bad setting."""
        r = models.recipe(self.model)
        c = RunRecord(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})
        c.model = models.canonical(self.model)  # PATH.py:FUNC made absolute
        for name in ("epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "target_acc",
                     "label_smoothing", "ema", "tta", "augment", "eval_every"):
            if getattr(c, name) is None:
                setattr(c, name, getattr(r, name))
        from .features import resolve
        resolve(c, r)
        c.data_dir, c.data_source = _data_source(c.data_dir, data_given)
        if c.out is not None:
            c.out = os.path.abspath(os.path.expanduser(str(c.out)))
        c.check()
        return c

    def check(self) -> None:
        from . import optim, schedule  # the registries

        def bad(msg):
            raise ValueError(msg)

        if self.backend not in backend.NAMES:
            bad(f"unknown backend {self.backend!r}: choose one of {', '.join(backend.NAMES)}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            bad(f"learning rate must be > 0 and finite, got {self.lr}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            bad(f"batch size must be an integer ≥ 1, got {self.batch_size}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            bad(f"epochs must be an integer ≥ 1, got {self.epochs}")
        if self.target_acc is not None and not 0 < self.target_acc <= 1:
            bad(f"target accuracy is a fraction in (0, 1], e.g. 0.97; got {self.target_acc}")
        if self.time_budget is not None and not self.time_budget > 0:
            bad(f"time budget must be > 0 seconds, got {self.time_budget}")
        if self.weight_decay is not None and not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            bad(f"weight decay must be ≥ 0 and finite, got {self.weight_decay}")
        if not 0 <= self.val_fraction < 1:
            bad(f"validation fraction must be in [0, 1), got {self.val_fraction}")
        if (self.eval_every is not None and self.eval_every < 0) or self.log_every < 1:
            bad("eval_every must be ≥ 0 (0: at the end of each epoch; default: 5 times an epoch) and log_every ≥ 1")
        if self.dtype not in ("float32", "float64"):
            bad(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.threads is not None and self.threads < 1:
            bad(f"threads must be ≥ 1, got {self.threads}")
        if self.optimizer is not None and self.optimizer not in optim.OPTIMIZERS:
            bad(f"unknown optimizer {self.optimizer!r}: choose one of {', '.join(optim.OPTIMIZERS)}")
        if self.schedule is not None and self.schedule not in schedule.SCHEDULES:
            bad(f"unknown schedule {self.schedule!r}: choose one of {', '.join(schedule.SCHEDULES)}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            bad(f"patience must be an integer ≥ 1 (evaluations without improvement), got {self.patience!r}")
        if self.classes is not None:
            from .data.formats import parse_classes
            parse_classes(self.classes)
        from .features import check
        check(self)
        if self.augment:
            from .augment import parse_spec
            parse_spec(self.augment)
        from .conv import CONV  # registers them
        if self.conv_algo != "auto" and self.conv_algo not in CONV:
            bad(f"unknown conv algorithm {self.conv_algo!r}: choose auto or one of {', '.join(CONV)}")
        if self.schedule_args is not None and not isinstance(self.schedule_args, dict):
            bad(f"schedule_args must be a table of the schedule's keyword arguments, got {self.schedule_args!r}")
        if self.data_source is not None and self.data_source not in DATA_SOURCES:
            bad(f"unknown data_source {self.data_source!r}: one of {', '.join(DATA_SOURCES)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ValueError(f"a run's settings are a JSON object of name: value, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}: known ones are {sorted(known)}")
        d = dict(d)
        if isinstance(d.get("betas"), list):  # JSON has no tuples
            d["betas"] = tuple(d["betas"])
        return cls(**d)


def _data_source(data_dir, data_given: bool) -> tuple:
    """(absolute data_dir or None, data_source) of a run: a relative directory made absolute;
    $FASTCNN_DATA recorded with its absolute path; otherwise the bundled MNIST."""
    if data_dir is not None:
        return os.path.abspath(os.path.expanduser(str(data_dir))), "arrays" if data_given else "data_dir"
    if data_given:
        return None, "arrays"
    if os.environ.get("FASTCNN_DATA"):
        return os.path.abspath(os.path.expanduser(os.environ["FASTCNN_DATA"])), "FASTCNN_DATA"
    return None, "bundled"


class RunRecord(TrainConfig):
    """A run's settings resolved once (``TrainConfig.resolved``): the recipe applied, every
    default filled, the data source absolute. It is what config.json holds; the Trainer builds
    its parts from it and never consults the preset again. Resolving a record returns it as it is
    (checked)."""

    def resolved(self, data_given: bool = False) -> "RunRecord":
        self.check()
        return self

    def check(self) -> None:
        super().check()
        missing = [n for n in ("epochs", "batch_size", "optimizer", "lr", "schedule", "schedule_args",
                               "data_source") if getattr(self, n) is None]
        if missing:
            raise ValueError(f"a run record needs {', '.join(missing)} (is it a config.json written by fastcnn "
                             "train?)")

    def resumed(self, **changes) -> "RunRecord":
        """This record with ``changes`` (None values: not given) applied, for a resumed run. Only
        RESUMABLE settings may change; any other one is a ValueError naming its option."""
        changes = {k: v for k, v in changes.items() if v is not None}
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown settings {unknown}")
        frozen = [k for k in changes if k not in RESUMABLE]
        if frozen:
            raise ValueError(f"{', '.join(option_name(k) for k in frozen)} cannot change when resuming: the run "
                             "goes on with the settings in its config.json; --resume takes only "
                             f"{', '.join(option_name(k) for k in RESUMABLE)} (start a new run with --out to "
                             "change the others)")
        out = dataclasses.replace(self, **changes)
        out.check()
        return out


def record_from_dict(d: dict) -> RunRecord:
    """The RunRecord saved as ``d`` (a config.json). A config.json written before records held
    every fact (no ``schedule_args`` / ``data_source``) is resolved once more, as it was then."""
    if isinstance(d, dict) and all(d.get(f.name) is not None for f in fields(TrainConfig)
                                   if f.name in ("schedule_args", "data_source")):
        return RunRecord.from_dict(d)
    return TrainConfig.from_dict(d).resolved()
