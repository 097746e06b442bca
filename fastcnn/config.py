"""The settings of a training run, validated with messages that say what to change."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from . import backend, models


def setting(default=None, help="", cli=True, **option):
    """A TrainConfig field with its documentation: ``help`` is the ``fastcnn train --NAME``
    help text; ``option`` holds extra argparse keywords (type, metavar, choices, nargs, const);
    ``cli=False``: not a command-line option (TOML and the library still take it).
    The command line (fastcnn.cli.train) and the TOML reader (fastcnn.toml_config) are built
    from these fields, so a new setting is added here and nowhere else."""
    return field(default=default, metadata={"help": help, "cli": cli, "option": option})


@dataclass
class TrainConfig:
    """Every setting of a run; ``None`` means "the preset's recipe" (see models.Recipe)."""

    model: str = setting(models.DEFAULT, f"preset name (default: {models.DEFAULT}; fastcnn summary lists them)")
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

    def resolved(self) -> "TrainConfig":
        """A copy with the recipe's values filled in, checked; raises ValueError naming the bad setting."""
        r = models.recipe(self.model)
        c = dataclasses.replace(self)
        for name in ("epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "target_acc",
                     "label_smoothing", "ema", "tta", "augment", "eval_every"):
            if getattr(c, name) is None:
                setattr(c, name, getattr(r, name))
        from .features import resolve
        resolve(c, r)
        c.check()
        return c

    def check(self) -> None:
        from . import optim, schedule  # the registries

        def bad(msg):
            raise ValueError(msg)

        if self.backend not in backend.NAMES:
            bad(f"unknown backend {self.backend!r}: choose one of {', '.join(backend.NAMES)}")
        if self.lr is not None and not self.lr > 0:
            bad(f"learning rate must be > 0, got {self.lr}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            bad(f"batch size must be an integer ≥ 1, got {self.batch_size}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            bad(f"epochs must be an integer ≥ 1, got {self.epochs}")
        if self.target_acc is not None and not 0 < self.target_acc <= 1:
            bad(f"target accuracy is a fraction in (0, 1], e.g. 0.97; got {self.target_acc}")
        if self.time_budget is not None and not self.time_budget > 0:
            bad(f"time budget must be > 0 seconds, got {self.time_budget}")
        if self.weight_decay is not None and self.weight_decay < 0:
            bad(f"weight decay must be ≥ 0, got {self.weight_decay}")
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}: known ones are {sorted(known)}")
        return cls(**d)
