"""The optional training features of a run, in one place: how the configuration turns them on,
how they are checked, what they pass to the optimizer and the schedule, and the record of
which were used (``metrics.json["features"]``).

    betas                Adam / AdamW (beta1, beta2)                  --betas 0.7,0.9
    momentum             SGD's momentum (sgd, momentum, nesterov)     --momentum 0.5
    pct_start, div_factor, final_div_factor   the onecycle schedule   --pct-start 0.25 ...
    ema                  moving average of the weights (fastcnn.ema)  --ema 0.999
    tta                  test-time augmentation (fastcnn.tta)         --tta [PIXELS]
    augment              augmentation on the fly (fastcnn.augment)    --augment translate=2,rotate=10
    label_smoothing      SoftmaxCrossEntropy's smoothing               --label-smoothing 0.1
    batch norm           a property of the network (BatchNorm1d / 2d layers)

Each is off unless the preset's recipe (models.Recipe) or the user turns it on.
"""
from __future__ import annotations

ONECYCLE_ARGS = ("pct_start", "div_factor", "final_div_factor")


def parse_betas(v) -> tuple | None:
    """``"0.7,0.9"``, ``[0.7, 0.9]`` or None -> (0.7, 0.9) or None; a clear error otherwise."""
    if v is None:
        return None
    parts = v.split(",") if isinstance(v, str) else list(v)
    try:
        b = tuple(float(x) for x in parts)
    except (TypeError, ValueError):
        raise ValueError(f"betas: expected two numbers like 0.9,0.999; got {v!r}") from None
    if len(b) != 2 or not all(0 <= x < 1 for x in b):
        raise ValueError(f"betas: expected two numbers in [0, 1) like 0.9,0.999; got {v!r}")
    return b


def resolve(c, recipe) -> None:
    """Fill ``c``'s feature settings left None from ``recipe`` (in place): betas when the optimizer
    is the recipe's, the onecycle arguments and ``schedule_args`` when the schedule is the
    recipe's (part of TrainConfig.resolved, the one place a recipe is read)."""
    if c.betas is None and c.optimizer == recipe.optimizer:
        c.betas = recipe.betas
    if c.momentum is None and c.optimizer == recipe.optimizer:
        c.momentum = recipe.momentum
    c.betas = parse_betas(c.betas)
    for k in ONECYCLE_ARGS:
        if getattr(c, k) is None and c.schedule == recipe.schedule and k in recipe.schedule_args:
            setattr(c, k, recipe.schedule_args[k])
    if isinstance(c.augment, str) and c.augment.strip().lower() == "none":
        c.augment = ""  # "" (not None) so that a resumed run does not take the recipe's again
    if c.schedule_args is None:  # the recipe's arguments go with the recipe's schedule only
        c.schedule_args = dict(recipe.schedule_args) if c.schedule == recipe.schedule else {}
    if isinstance(c.schedule_args, dict):  # what schedule.make gets, as JSON keeps it
        c.schedule_args = _plain({**c.schedule_args,
                                  **{k: getattr(c, k) for k in ONECYCLE_ARGS if getattr(c, k) is not None}})


def _plain(v):
    """``v`` with tuples made lists, as it reads back from JSON (so a record equals its config.json)."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def check(c) -> None:
    """Errors that name the bad feature setting and what to give instead."""
    betas = parse_betas(c.betas)
    if betas is not None and c.optimizer is not None and c.optimizer not in ("adam", "adamw"):
        raise ValueError(f"betas apply to adam and adamw, not to optimizer {c.optimizer!r}")
    if c.momentum is not None:
        if c.optimizer is not None and c.optimizer not in ("sgd", "momentum", "nesterov"):
            raise ValueError(f"momentum applies to sgd, momentum and nesterov, not to optimizer {c.optimizer!r} "
                             "(Adam's first beta is --betas B1,B2)")
        if not 0 <= c.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), e.g. 0.9; got {c.momentum}")
    given = [k for k in ONECYCLE_ARGS if getattr(c, k) is not None]
    if given and c.schedule is not None and c.schedule != "onecycle":
        raise ValueError(f"{', '.join(given)} apply to the onecycle schedule, not to {c.schedule!r} "
                         "(add --schedule onecycle)")
    if c.pct_start is not None and not 0 < c.pct_start < 1:
        raise ValueError(f"pct_start must be in (0, 1), got {c.pct_start}")
    for k in ("div_factor", "final_div_factor"):
        if getattr(c, k) is not None and not getattr(c, k) > 0:
            raise ValueError(f"{k} must be > 0, got {getattr(c, k)}")
    if c.ema is not None and not (c.ema == 0 or 0 < c.ema < 1):
        raise ValueError(f"ema is the decay of the weights' average, in (0, 1) like 0.999 (0: off); got {c.ema}")
    if c.tta is not None and (not isinstance(c.tta, int) or isinstance(c.tta, bool) or not 0 <= c.tta <= 3):
        raise ValueError(f"tta is the largest shift in pixels, 0 (off) to 3; got {c.tta!r}")
    if c.label_smoothing is not None and not 0 <= c.label_smoothing < 1:
        raise ValueError(f"label smoothing must be in [0, 1), got {c.label_smoothing}")


def optimizer_kwargs(c) -> dict:
    """Extra keyword arguments of optim.make for config ``c``."""
    kw = {"betas": tuple(c.betas)} if c.betas is not None else {}
    if c.momentum is not None:
        kw["momentum"] = c.momentum
    return kw


def schedule_kwargs(c) -> dict:
    """Keyword arguments of schedule.make: the record's ``schedule_args`` (filled by ``resolve``:
    the recipe's when the schedule is the recipe's, with the onecycle settings over them)."""
    return dict(c.schedule_args or {})


def make_ema(c, model):
    """An EMA of ``model``'s weights when ``c.ema`` asks for one, else None."""
    if not c.ema:
        return None
    from .ema import EMA
    return EMA(model, c.ema)


def used(c, model, schedule=None) -> dict:
    """Which features the run used, for metrics.json: name -> its setting (None / False: off)."""
    from .nn.norm import _BatchNorm

    bn = [l.name for l in model.layers if isinstance(l, _BatchNorm)]
    return {
        "ema": c.ema or None,
        "tta_pixels": c.tta or None,
        "augment": c.augment or None,
        "label_smoothing": c.label_smoothing or None,
        "batch_norm": bn or None,
        "betas": list(c.betas) if c.betas is not None else None,
        "momentum": c.momentum,
        "schedule": {"name": c.schedule, **({k: getattr(schedule, k) for k in ("pct_start", "div_factor",
                                                                                  "final_div_factor")}
                                            if c.schedule == "onecycle" and schedule is not None else {})},
    }


def averaged(ema):
    """``ema.applied()`` (the averaged weights in the model for the block), or a no-op when None."""
    from contextlib import nullcontext
    return ema.applied() if ema is not None else nullcontext()
