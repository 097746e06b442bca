"""Named presets: the networks users ask for by name, each with the recipe it trains best with.

The lab reports' networks (``lab_reports.py``) are presets too (report-a … report-e-cnn).
A name ``PATH.py:FUNC`` is the user's own network: FUNC of that file returns it (``user.py``).
"""
from __future__ import annotations

from .. import nn
from . import lab_reports, user
from .recipe import Recipe

#: The lab's parameter budget: 9·9·20 + 2000·100 + 100·10.
LAB_BUDGET = 9 * 9 * 20 + 2000 * 100 + 100 * 10


def lenet5(num_classes: int = 10, in_channels: int = 1, seed: int = 0) -> nn.Sequential:
    """LeNet-5 for 28×28 input: conv 6@5×5 → ReLU → pool → conv 16@5×5 → ReLU → pool → 120 → 84 → 10."""
    return nn.Sequential(
        nn.Conv2D(in_channels, 6, 5), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(6, 16, 5), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
        seed=seed, input_shape=(in_channels, 28, 28))


def lenet5_bn(num_classes: int = 10, in_channels: int = 1, seed: int = 0) -> nn.Sequential:
    """LeNet-5 with a batch norm after each pooling (fast99's network, 44,470 parameters): conv
    6@5×5 → ReLU → pool → batch-norm → conv 16@5×5 → ReLU → pool → batch-norm → 120 → 84 → 10.
    Each Conv → ReLU → pool still runs as one fused Numba layer (the norm follows the pool, as in
    lab-best)."""
    return nn.Sequential(
        nn.Conv2D(in_channels, 6, 5), nn.ReLU(), nn.MaxPool2D(2), nn.BatchNorm2d(6),
        nn.Conv2D(6, 16, 5), nn.ReLU(), nn.MaxPool2D(2), nn.BatchNorm2d(16),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
        seed=seed, input_shape=(in_channels, 28, 28))


def compact(num_classes: int = 10, in_channels: int = 1, seed: int = 0) -> nn.Sequential:
    """Report A's network (20,994 parameters): conv 16@3×3 s2 p1 → ReLU → pool → conv 24@6×6 p1
    → ReLU → pool → flatten 96 → linear 64 → ReLU → batch-norm → linear 10."""
    return nn.Sequential(
        nn.Conv2D(in_channels, 16, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(16, 24, 6, padding=1), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Linear(96, 64), nn.ReLU(), nn.BatchNorm1d(64),
        nn.Linear(64, num_classes),
        seed=seed, input_shape=(in_channels, 28, 28))


def mlp(num_classes: int = 10, in_channels: int = 1, seed: int = 0, hidden: int = 1000) -> nn.Sequential:
    """784 → 1000 → ReLU → 10."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(in_channels * 28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
        seed=seed, input_shape=(in_channels, 28, 28))


def record99(num_classes: int = 10, in_channels: int = 1, seed: int = 0) -> nn.Sequential:
    """The fastest published MNIST network to 99 % (a GPU speed record; 215,194 parameters):
    conv 24@5×5 → ReLU → max-pool 2 → conv 32@3×3 → ReLU → max-pool 2 → 800 → 256 → ReLU → 10.

    The record pools before its ReLU; max-pooling and ReLU commute (ReLU is monotonic), so
    ReLU → pool computes the same function and runs as one fused Numba layer."""
    return nn.Sequential(
        nn.Conv2D(in_channels, 24, 5), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(24, 32, 3), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Linear(32 * 5 * 5, 256), nn.ReLU(),
        nn.Linear(256, num_classes),
        seed=seed, input_shape=(in_channels, 28, 28))


def lab_best(num_classes: int = 10, in_channels: int = 1, seed: int = 0) -> nn.Sequential:
    """The lab's best within its budget (166,202 ≤ 202,620 parameters): conv 24@5×5 → ReLU →
    max-pool 2 → batch-norm → conv 48@3×3 → ReLU → max-pool 2 → batch-norm → 1200 → 128 → ReLU → 10.

    Batch norm follows each pooling (4× fewer values to normalise than before it), so each
    Conv → ReLU → pool still runs as one fused Numba layer."""
    return nn.Sequential(
        nn.Conv2D(in_channels, 24, 5), nn.ReLU(), nn.MaxPool2D(2), nn.BatchNorm2d(24),
        nn.Conv2D(24, 48, 3), nn.ReLU(), nn.MaxPool2D(2), nn.BatchNorm2d(48),
        nn.Flatten(),
        nn.Linear(48 * 5 * 5, 128), nn.ReLU(),
        nn.Linear(128, num_classes),
        seed=seed, input_shape=(in_channels, 28, 28))


# Recipes measured on full MNIST (benchmarks/README.md): compact with Adam lr 5e-3, batch 64
# reaches 97 % in ≈ 1.7 s of training on a 2-core CPU and its 6-epoch cosine schedule ends at
# ≈ 98.7 %; a run stops early if it reaches 99 %.
PRESETS = {
    "lenet5": (lenet5, Recipe("adam", 3e-3, 128, 8, "cosine", target_acc=0.99)),
    "compact": (compact, Recipe("adam", 5e-3, 64, 6, "cosine", target_acc=0.99)),
    "mlp": (mlp, Recipe("adam", 1e-3, 128, 5, "cosine", target_acc=0.99)),
    # a fixed schedule to 99 % on two CPU cores, measured as records are (mean final accuracy over
    # seeds, no early stop): LeNet-5 with a batch norm after each pooling (lenet5_bn; chosen on a
    # validation split over plain LeNet-5, a wider one and other places for the norm), one cycle
    # over two epochs, Adam lr 0.02, batch 128 (as accurate on validation as lr 0.01 at batch 64, and
    # ≈ 23 % faster), label smoothing 0.05; evaluated at each epoch's end; test-time augmentation over
    # ±1 px reported in its own column (benchmarks/README.md).
    "fast99": (lenet5_bn, Recipe("adam", 0.02, 128, 2, "onecycle", schedule_args={"pct_start": 0.15}, tta=1,
                                 label_smoothing=0.05, eval_every=0)),
    # the record's network and recipe: Adam lr 0.01, betas (0.7, 0.9), one cycle over one epoch
    # (momentum not cycled), batch 256, no augmentation; the reference of vs_torch --time-to 0.99.
    "record99": (record99, Recipe("adam", 0.01, 256, 1, "onecycle", betas=(0.7, 0.9), target_acc=0.99)),
    # within the lab's budget: ±2 px shifts and ±10° rotations, label smoothing 0.1, an EMA of the
    # weights and TTA over ±1 px shifts; 12 epochs of one cycle, no early stop; evaluated once an
    # epoch (each TTA evaluation runs five views of the test set). Not tuned: the first guess.
    "lab-best": (lab_best, Recipe("adam", 5e-3, 128, 12, "onecycle", betas=(0.9, 0.99), label_smoothing=0.1,
                                  augment="translate=2,rotate=10", ema=0.999, tta=1, eval_every=0)),
    # the lab reports' networks with their own recipes (report-a is compact's network)
    "report-a": (compact, lab_reports.RECIPE_A),
    **lab_reports.PRESETS,
}

#: The preset `fastcnn train` uses when none is named: fast99's two-epoch schedule ends at
#: ≥ 99 % on average (benchmarks/results/seeds_fast99.md).
DEFAULT = "fast99"


def names() -> list:
    return sorted(PRESETS)


def _unknown(name) -> ValueError:
    return ValueError(f"unknown model {name!r}: choose one of {', '.join(names())}, or your own network as PATH.py:FUNC")


def build(name: str, seed: int = 0, **kw) -> nn.Sequential:
    """A fresh model of preset ``name`` (or of the user's ``PATH.py:FUNC``); unknown names are a
    clear error listing the known ones."""
    if user.is_spec(name):
        return user.build(name, seed=seed, **kw)
    if name not in PRESETS:
        raise _unknown(name)
    return PRESETS[name][0](seed=seed, **kw)


def canonical(name: str) -> str:
    """A preset's name as is; a user network ``PATH.py:FUNC`` with PATH made absolute (what a run records)."""
    return user.absolute_spec(name) if user.is_spec(name) else name


def recipe(name: str) -> Recipe:
    if user.is_spec(name):
        return user.RECIPE
    if name not in PRESETS:
        raise _unknown(name)
    return PRESETS[name][1]


def budget_line(name: str, n: int) -> str:
    """Whether ``n`` parameters fit the lab's budget, one line."""
    verdict = "fits" if n <= LAB_BUDGET else "does NOT fit"
    return (f"{name} {verdict} the lab's budget of 9·9·20 + 2000·100 + 100·10 = {LAB_BUDGET:,} parameters "
            f"({n:,} = {n / LAB_BUDGET:.1%} of it)")


def not_weights(state: dict) -> str | None:
    """Why the arrays of an .npz are not a model's state dict (e.g. it is a data set), or None."""
    keys = sorted(k for k in state if not k.startswith("__"))
    if any(k.split(".", 1)[0].isdigit() for k in keys):
        return None
    listed = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "") if keys else "no arrays"
    data = {"x_train", "y_train", "x_test", "y_test", "data", "label", "images", "labels"}
    what = "a data set" if data & set(keys) or any(k.lower().startswith(("x_", "y_", "train", "test")) for k in keys) \
        else "not model weights"
    return (f"it holds {listed}: that looks like {what}, not a model's weights (arrays named like 0.weight); "
            "pass data with --data-dir, and weights as --weights RUN_DIR or the model.npz / best.npz of a run")


def guess(state: dict) -> str:
    """The preset whose parameter shapes match a state dict (for a bare .npz)."""
    arrays = {k for k in state if not k.startswith("__")}  # "__step__" and such are not weights
    why = not_weights(state)
    if why:
        raise ValueError(f"the --weights file is not a fastcnn model: {why}")
    for name in names():
        ref = build(name).state_dict()
        if {k for k in ref if not k.startswith("__")} == arrays and \
                all(ref[k].shape == state[k].shape for k in ref if not k.startswith("__")):
            return name
    raise ValueError("these weights match no preset: name it with --model")


