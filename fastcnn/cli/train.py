"""`fastcnn train`: train a preset and write a run directory (fastcnn.train.Trainer).

Options given on the command line override a ``--config RUN.toml`` file, which overrides
the preset's recipe (fastcnn.toml_config.merge, TrainConfig.resolved).
"""
from __future__ import annotations

from .options import positive_int

#: TrainConfig fields read from same-named options (None: not given)
_FIELDS = ("model", "backend", "epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay", "target_acc",
           "time_budget", "seed", "data_dir", "out", "conv_algo", "threads", "eval_every", "val_fraction",
           "label_smoothing", "dtype", "deterministic")
_TOOLKIT = ("augment", "augment_mistakes", "classes", "patience", "betas", "pct_start", "div_factor",
            "final_div_factor", "ema", "tta")


def add_parser(sub):
    p = sub.add_parser("train", help="train a model (MNIST by default)",
                       description="Train a preset on MNIST (or --data-dir) and write a run directory.")
    p.add_argument("--model", default=None, help="preset name (default: lenet5)")
    p.add_argument("--backend", default="numpy", help="numpy, cupy or auto")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", help="sgd, momentum, nesterov, adam, adamw")
    p.add_argument("--lr", type=float)
    p.add_argument("--schedule", help="none, step, multistep, exponential, cosine, onecycle, plateau, level")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--target-acc", type=float, help="stop when test accuracy reaches this fraction, e.g. 0.97")
    p.add_argument("--time-budget", type=float, help="stop after this many seconds of training steps")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--data-dir", help="a directory with the four MNIST-format idx files (or $FASTCNN_DATA)")
    p.add_argument("--out", help="run directory (default runs/MODEL-TIME)")
    p.add_argument("--conv-algo", default=None, help="auto, naive, einsum, im2col, numba, cuda")
    p.add_argument("--threads", type=positive_int, help="CPU threads for BLAS and Numba together")
    p.add_argument("--eval-every", type=int, default=None, help="evaluate every N steps (0: each epoch end)")
    p.add_argument("--val-fraction", type=float, default=None, help="hold out this fraction of training data")
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--dtype", default=None, choices=["float32", "float64"])
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR where it stopped")
    p.add_argument("--profile", action="store_true", help="print forward/backward time per layer")
    p.add_argument("--deterministic", action="store_true", default=None,
                   help="no timing-based choices of algorithms: the same seed gives the same history")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--config", metavar="RUN.toml", help="settings from a TOML file; command-line options override it")
    p.add_argument("--augment", metavar="SPEC", default=None,
                   help="augment each batch: shift, rotate, scale, squeeze, noise, blur with optional strengths, "
                        "e.g. shift=0.1,rotate=10,noise=0.05")
    p.add_argument("--augment-mistakes", action="store_true", default=None,
                   help="each epoch, add augmented copies of the training images the model gets wrong")
    p.add_argument("--classes", metavar="DIGITS", default=None, help="train and test on these digits only, e.g. 0,1,2")
    p.add_argument("--patience", type=int, default=None,
                   help="early stopping: stop after N evaluations without a better validation (else test) "
                        "accuracy; the best weights are kept in RUN_DIR/best.npz")
    # training features (fastcnn.features); each is off unless given here or by the preset's recipe
    p.add_argument("--betas", metavar="B1,B2", default=None, help="Adam/AdamW betas, e.g. 0.7,0.9")
    p.add_argument("--pct-start", type=float, default=None, help="onecycle: fraction of steps rising (0.3)")
    p.add_argument("--div-factor", type=float, default=None, help="onecycle: initial lr = lr / this (25)")
    p.add_argument("--final-div-factor", type=float, default=None,
                   help="onecycle: final lr = initial lr / this (1e4)")
    p.add_argument("--ema", type=float, metavar="DECAY", default=None,
                   help="evaluate and save a moving average of the weights, e.g. 0.999 (0: off)")
    p.add_argument("--tta", type=int, nargs="?", const=1, metavar="PIXELS", default=None,
                   help="test-time augmentation: average predictions over shifts of up to PIXELS "
                        "(default 1; 0: off)")


def given_options(args) -> dict:
    """The core TrainConfig settings given on the command line (not None)."""
    given = {k: getattr(args, k) for k in _FIELDS}
    given.update(profile=args.profile or None, progress=False if args.no_progress else None)
    return {k: v for k, v in given.items() if v is not None}


def train_settings(args, given: dict) -> dict:
    """``given`` with the toolkit's options (--augment, --classes, --ema, ...) added and the
    --config file under both (fastcnn.toml_config.merge)."""
    from ..toml_config import merge

    extra = {k: getattr(args, k, None) for k in _TOOLKIT}
    given = {**given, **{k: v for k, v in extra.items() if v is not None}}
    return merge(getattr(args, "config", None), given)


def run(args) -> int:
    from ..config import TrainConfig
    from ..train import Trainer

    given = train_settings(args, given_options(args))
    trainer = Trainer.resume(args.resume, **given) if args.resume else Trainer(TrainConfig(**given))
    c = trainer.config
    print(f"training {c.model} ({trainer.model.num_params():,} parameters) on {c.backend}: "
          f"{c.optimizer} lr {c.lr}, batch {c.batch_size}, {c.epochs} epochs, schedule {c.schedule}"
          + (f", target {c.target_acc:.2%}" if c.target_acc else "") + f" -> {trainer.out}")
    m = trainer.fit()
    print(f"test accuracy {m['test_accuracy']:.4f} after {m['epochs']:.2f} epochs, "
          f"{m['train_seconds']:.1f} s of training ({m['samples_per_second']:,.0f} samples/s); status {m['status']}")
    for level, at in m["milestones"].items():
        print(f"test accuracy ≥ {float(level):.1%} first seen after {at['train_seconds']:.2f} s of training "
              f"(step {at['step']})")
    if c.target_acc is not None:
        t = m["target_reached_seconds"]
        print(f"target {c.target_acc:.2%}: " + (f"reached after {t:.2f} s of training" if t is not None else "not reached"))
    if m.get("peak_device_memory_bytes") is not None:
        print(f"peak device memory: {m['peak_device_memory_bytes'] / 2**20:.1f} MiB (CuPy memory pool)")
    if "profile" in m:
        print(m["profile"])
    print(f"run written to {trainer.out}")
    return 0
