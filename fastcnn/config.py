"""The settings of a training run, validated with messages that say what to change."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from . import backend, models


@dataclass
class TrainConfig:
    """Every setting of a run; ``None`` means "the preset's recipe" (see models.Recipe)."""

    model: str = models.DEFAULT
    backend: str = "numpy"
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    schedule: str | None = None
    weight_decay: float | None = None
    target_acc: float | None = None
    time_budget: float | None = None
    seed: int = 0
    data_dir: str | None = None
    out: str | None = None
    conv_algo: str = "auto"
    threads: int | None = None
    eval_every: int | None = None
    log_every: int = 20
    val_fraction: float = 0.0
    label_smoothing: float | None = None  # None: the recipe's (0 for most presets)
    dtype: str = "float32"
    profile: bool = False
    #: run Conv2D→ReLU(→MaxPool2D) as one fused Numba layer on the CPU (same results, faster)
    fuse: bool = True
    #: no timing-based choices (conv variants, BLAS threads): same seed -> same history, bit for bit
    deterministic: bool = False
    progress: bool = True
    augment: str | None = None  # e.g. "shift=0.1,rotate=10" (fastcnn.augment)
    augment_mistakes: bool = False  # add augmented copies of misclassified training images each epoch
    classes: str | None = None  # e.g. "0,1,2": train and test on these digits only
    patience: int | None = None  # early stopping: evaluations without a better val (else test) accuracy
    # training features (fastcnn.features); None: the recipe's, which leaves them off unless it says
    betas: tuple | None = None  # Adam/AdamW (beta1, beta2), e.g. (0.7, 0.9)
    pct_start: float | None = None  # onecycle: fraction of the steps spent rising (torch default 0.3)
    div_factor: float | None = None  # onecycle: initial lr = lr / div_factor (25)
    final_div_factor: float | None = None  # onecycle: final lr = initial lr / final_div_factor (1e4)
    ema: float | None = None  # decay of the weights' moving average used to evaluate and save; 0: off
    tta: int | None = None  # test-time augmentation over shifts of up to this many pixels; 0: off

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
