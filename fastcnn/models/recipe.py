"""The training settings a preset comes with."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """The training settings a preset is known to work with."""

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 5
    schedule: str = "none"
    weight_decay: float = 0.0
    schedule_args: dict = field(default_factory=dict)
    #: stop once test accuracy reaches this (None: run the whole schedule)
    target_acc: float | None = None
    # training features (fastcnn.features), off unless a recipe turns them on
    betas: tuple | None = None  # Adam's (beta1, beta2); None: the optimizer's default
    momentum: float | None = None  # SGD's momentum; None: the optimizer's (sgd 0, momentum/nesterov 0.9)
    label_smoothing: float = 0.0
    augment: str = ""  # an augment spec, e.g. "translate=2,rotate=10"; "": none
    ema: float = 0.0  # decay of the weights' moving average (0: off)
    tta: int = 0  # test-time augmentation over shifts of up to this many pixels (0: off)
    #: evaluate every N steps (0: at each epoch's end; None: five times an epoch)
    eval_every: int | None = None
