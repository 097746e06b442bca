"""Learning-rate schedules (names and formulas of ``torch.optim.lr_scheduler``).

A schedule drives ``optimizer.lr``. Build it after the optimizer (the
constructor sets the rate for step 0) and call ``step()`` once per **epoch**,
after the epoch — except where ``per_batch`` is True (OneCycleLR), which is
stepped after every batch. ReduceLROnPlateau and LevelSchedule take the
monitored metric: ``step(metric)``. With ``t`` the number of ``step`` calls
made and ``lr0`` the optimizer's rate at construction (``base_lr``):

    ConstantLR          lr0·factor while t < total_iters, then lr0 (defaults: always lr0)
    StepLR              lr0 · γ^floor(t / step_size)
    MultiStepLR         lr0 · γ^(number of milestones <= t)
    ExponentialLR       lr0 · γ^t
    CosineAnnealingLR   η_min + (lr0 - η_min)·(1 + cos(π·t / T_max)) / 2
    OneCycleLR          cosine from max_lr/div_factor up to max_lr (step pct_start·total - 1),
                        then cosine down to max_lr/div_factor/final_div_factor (step total - 1)
    ReduceLROnPlateau   lr ← max(lr·factor, min_lr) after more than ``patience`` steps without improvement
    LevelSchedule       lr ← min(lr, level lr) once the metric reaches a level's threshold
"""
from __future__ import annotations

import bisect
import math

import numpy as np


def _positive(value, what):
    if not (isinstance(value, (int, float, np.integer, np.floating)) and value > 0 and math.isfinite(value)):
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def _count(value, what, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


class Schedule:
    """Base class: ``step(metric=None)`` once per epoch (per batch where ``per_batch``); ``lr``.

    Closed-form schedules implement ``lr_at(t)``; the rate is set on the
    optimizer at construction (t = 0) and after each step.
    """

    per_batch: bool = False
    #: Stepped with the monitored metric at every evaluation instead of every epoch.
    per_eval: bool = False
    _state_keys: tuple = ("base_lr", "last_epoch", "lr")

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0  # number of step() calls so far (batches for per-batch schedules)
        self._set(self.lr_at(0))

    def lr_at(self, t: int) -> float:
        return self.base_lr

    def step(self, metric=None) -> None:
        """Advance one epoch (one batch if ``per_batch``); ``metric`` is ignored here."""
        self.last_epoch += 1
        self._set(self.lr_at(self.last_epoch))

    @property
    def lr(self) -> float:
        """The rate in force now."""
        return self._lr

    def _set(self, lr) -> None:
        self._lr = float(lr)
        self.optimizer.lr = self._lr

    def state_dict(self) -> dict:
        """Plain dict of numbers (counters, current rate, metric bookkeeping)."""
        return {k: getattr(self, "_lr" if k == "lr" else k) for k in self._state_keys}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output (0-d arrays from ``np.load`` accepted) and apply its rate."""
        missing = [k for k in self._state_keys if k not in state]
        if missing:
            raise ValueError(f"{type(self).__name__} state lacks {', '.join(missing)}")
        for k in self._state_keys:
            old = getattr(self, "_lr" if k == "lr" else k)
            v = np.asarray(state[k]).item()
            setattr(self, "_lr" if k == "lr" else k, type(old)(v) if isinstance(old, (int, float)) else v)
        self._set(self._lr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self._lr:g}, last_epoch={self.last_epoch})"


class ConstantLR(Schedule):
    """``lr0·factor`` for the first ``total_iters`` steps, then ``lr0``; the defaults keep lr0 throughout.
    (torch's ConstantLR defaults are factor=1/3, total_iters=5.)"""

    def __init__(self, optimizer, factor=1.0, total_iters=0):
        if not 0 < factor <= 1:
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        self.factor, self.total_iters = float(factor), _count(total_iters, "total_iters", 0)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * (self.factor if t < self.total_iters else 1.0)


class StepLR(Schedule):
    """``lr0 · γ^floor(t / step_size)``: decay by γ every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size, self.gamma = _count(step_size, "step_size"), _positive(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(Schedule):
    """``lr0 · γ^k``, k = number of milestones ≤ t (milestones: strictly increasing epochs ≥ 1)."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        ms = [_count(m, "each milestone") for m in milestones]
        if not ms or any(b <= a for a, b in zip(ms, ms[1:])):
            raise ValueError(f"milestones must be a non-empty, strictly increasing list of epochs, got {milestones!r}")
        self.milestones, self.gamma = ms, _positive(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


class ExponentialLR(Schedule):
    """``lr0 · γ^t``."""

    def __init__(self, optimizer, gamma):
        self.gamma = _positive(gamma, "gamma")
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** t


class CosineAnnealingLR(Schedule):
    """Closed form ``η_min + (lr0 - η_min)·(1 + cos(π·t/T_max))/2``: lr0 at t=0, η_min at t=T_max
    (past T_max the cosine rises again, as torch's closed form does)."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = _count(T_max, "T_max")
        if not 0 <= eta_min <= optimizer.lr:
            raise ValueError(f"eta_min must be in [0, lr={optimizer.lr}], got {eta_min!r}")
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class OneCycleLR(Schedule):
    """One cycle (torch OneCycleLR, anneal_strategy='cos', two phases), **stepped per batch**.

    Starts at ``initial = max_lr/div_factor``, rises along a cosine to ``max_lr``
    at step ``pct_start·total_steps - 1``, then falls along a cosine to
    ``initial/final_div_factor`` at step ``total_steps - 1``; steps past the end
    stay there (torch raises instead). Momentum is not cycled.
    """

    per_batch = True

    def __init__(self, optimizer, max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
        self.max_lr = _positive(max_lr, "max_lr")
        self.total_steps = _count(total_steps, "total_steps")
        if not 0 < pct_start < 1:
            raise ValueError(f"pct_start must be in (0, 1), got {pct_start!r}")
        self.pct_start = float(pct_start)
        self.div_factor = _positive(div_factor, "div_factor")
        self.final_div_factor = _positive(final_div_factor, "final_div_factor")
        self.initial_lr = self.max_lr / self.div_factor
        self.min_lr = self.initial_lr / self.final_div_factor
        # (end step, lr at start, lr at end) of each phase, as torch computes them
        self._phases = ((self.pct_start * self.total_steps - 1, self.initial_lr, self.max_lr),
                        (self.total_steps - 1, self.max_lr, self.min_lr))
        super().__init__(optimizer)
        self.base_lr = self.initial_lr

    @staticmethod
    def _cos(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def lr_at(self, t):
        t = min(t, self.total_steps - 1)
        start_step = 0.0
        for i, (end_step, lo, hi) in enumerate(self._phases):
            if t <= end_step or i == len(self._phases) - 1:
                span = end_step - start_step
                return self._cos(lo, hi, (t - start_step) / span if span > 0 else 1.0)
            start_step = end_step


class ReduceLROnPlateau(Schedule):
    """Multiply the rate by ``factor`` (not below ``min_lr``) when the metric has not improved
    for more than ``patience`` steps; then wait ``cooldown`` steps before counting again.

    ``mode="max"`` (accuracy) or ``"min"`` (loss). Improvement, threshold_mode "rel":
    ``a > best·(1+threshold)`` (max) / ``a < best·(1-threshold)`` (min); "abs":
    ``a > best + threshold`` / ``a < best - threshold``. Call ``step(metric)`` once per epoch.
    """

    _state_keys = Schedule._state_keys + ("best", "num_bad_epochs", "cooldown_counter")

    def __init__(self, optimizer, mode="max", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", min_lr=0.0, cooldown=0, eps=1e-8):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor!r}")
        if not threshold >= 0 or not min_lr >= 0:
            raise ValueError(f"threshold and min_lr must be >= 0, got {threshold!r} and {min_lr!r}")
        self.mode, self.threshold_mode, self.factor = mode, threshold_mode, float(factor)
        self.patience, self.cooldown = _count(patience, "patience", 0), _count(cooldown, "cooldown", 0)
        self.threshold, self.min_lr, self.eps = float(threshold), float(min_lr), float(eps)
        self.best = -math.inf if mode == "max" else math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        super().__init__(optimizer)

    def is_better(self, a, best) -> bool:
        if self.mode == "max":
            return a > (best * (1 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)
        return a < (best * (1 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)

    def step(self, metric=None):
        if metric is None:
            raise ValueError("ReduceLROnPlateau.step needs the monitored metric: step(metric)")
        current = float(metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new = max(self._lr * self.factor, self.min_lr)
            if self._lr - new > self.eps:
                self._set(new)
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0


class LevelSchedule(Schedule):
    """Lower the rate when a monitored metric reaches a level.

    ``levels``: (threshold, lr) pairs, e.g. ``[(0.95, 0.005), (0.97, 0.002)]``:
    once ``metric >= 0.95`` (mode "max"; ``<=`` for mode "min") the rate becomes
    0.005, and so on. The rate is never raised: ``lr ← min(lr, lr of each level reached)``.
    The Trainer calls ``step(metric)`` at every evaluation (``per_eval``), so the rate
    drops as soon as the level is seen, not at the end of the epoch.
    """

    per_eval = True

    def __init__(self, optimizer, levels, mode="max"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        try:
            pairs = [(float(th), float(lr)) for th, lr in levels]
        except (TypeError, ValueError):
            raise ValueError(f"levels must be a list of (threshold, lr) pairs, got {levels!r}") from None
        if not pairs:
            raise ValueError("levels must hold at least one (threshold, lr) pair")
        for th, lr in pairs:
            if not math.isfinite(th):
                raise ValueError(f"level threshold must be finite, got {th!r}")
            _positive(lr, "level lr")
        self.levels, self.mode = pairs, mode
        super().__init__(optimizer)

    def step(self, metric=None):
        if metric is None:
            raise ValueError("LevelSchedule.step needs the monitored metric: step(metric)")
        m = float(metric)
        self.last_epoch += 1
        reached = [lr for th, lr in self.levels if (m >= th if self.mode == "max" else m <= th)]
        if reached and min(reached) < self._lr:
            self._set(min(reached))


def _multistep(opt, epochs, spe, **kw):
    ms = sorted({max(1, int(epochs * f)) for f in (0.5, 0.75)})
    return MultiStepLR(opt, kw.pop("milestones", ms), **kw)


def _level(opt, epochs, spe, **kw):
    return LevelSchedule(opt, kw.pop("levels", [(0.95, opt.lr * 0.5), (0.97, opt.lr * 0.2)]), **kw)


#: name -> builder ``(optimizer, epochs, steps_per_epoch, **kw) -> Schedule``; kw override the defaults.
SCHEDULES = {
    "none": lambda opt, e, spe, **kw: ConstantLR(opt, **kw),
    "constant": lambda opt, e, spe, **kw: ConstantLR(opt, **kw),
    "step": lambda opt, e, spe, **kw: StepLR(opt, kw.pop("step_size", max(1, e // 3)), **kw),
    "multistep": _multistep,
    "exponential": lambda opt, e, spe, **kw: ExponentialLR(opt, kw.pop("gamma", 0.9), **kw),
    "cosine": lambda opt, e, spe, **kw: CosineAnnealingLR(opt, kw.pop("T_max", e), **kw),
    "onecycle": lambda opt, e, spe, **kw: OneCycleLR(
        opt, kw.pop("max_lr", opt.lr), kw.pop("total_steps", e * spe), **kw),
    "plateau": lambda opt, e, spe, **kw: ReduceLROnPlateau(opt, **{"patience": max(1, e // 10), **kw}),
    "level": _level,
}


def make(name: str, optimizer, epochs: int, steps_per_epoch: int = 1, **kw) -> Schedule:
    """Build schedule ``name`` (a key of SCHEDULES) with defaults from the run length.

    none / constant: constant; step: step_size = max(1, epochs//3), γ 0.1; multistep: milestones at
    50 % and 75 % of the epochs; exponential: γ 0.9; cosine: T_max = epochs;
    onecycle: max_lr = optimizer.lr, total_steps = epochs·steps_per_epoch;
    plateau: mode max, patience max(1, epochs//10); level: 0.95 → lr/2, 0.97 → lr/5.
    """
    key = str(name).lower()
    if key not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}: choose one of {', '.join(SCHEDULES)}")
    _count(epochs, "epochs")
    _count(steps_per_epoch, "steps_per_epoch")
    return SCHEDULES[key](optimizer, epochs, steps_per_epoch, **kw)
