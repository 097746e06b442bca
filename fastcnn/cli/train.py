"""`fastcnn train`: train a preset and write a run directory (fastcnn.train.Trainer).

Options given on the command line override a ``--config RUN.toml`` file, which overrides
the preset's recipe (fastcnn.toml_config.merge, TrainConfig.resolved).
"""
from __future__ import annotations

from dataclasses import fields

from .options import positive_int

#: argparse types named in TrainConfig's field metadata (config.setting)
_TYPES = {"positive_int": positive_int}
#: annotations ("int | None", "float") whose options parse as numbers
_NUMBERS = {"int": int, "float": float}


def add_config_options(p) -> None:
    """One ``--NAME`` option per TrainConfig field (fastcnn.config.setting): its help, its type
    from the annotation, default None (= not given: the --config file's or the recipe's value);
    booleans are flags (``--no-NAME`` for the ones that default to on)."""
    from ..config import TrainConfig

    for f in fields(TrainConfig):
        meta = f.metadata
        if not meta.get("cli", False):
            continue
        kw = dict(meta["option"])
        if "type" in kw:
            kw["type"] = _TYPES[kw["type"]]
        ann = str(f.type)
        flag = "--" + f.name.replace("_", "-")
        if ann == "bool":
            if f.default is True:
                flag, kw["action"] = "--no-" + f.name.replace("_", "-"), "store_false"
                meta = {**meta, "help": "turn off " + meta["help"]}
            else:
                kw["action"] = "store_true"
        elif "type" not in kw and "choices" not in kw and ann.split(" ")[0] in _NUMBERS:
            kw["type"] = _NUMBERS[ann.split(" ")[0]]
        p.add_argument(flag, dest=f.name, default=None, help=meta["help"] or None, **kw)


def add_parser(sub):
    p = sub.add_parser("train", help="train a model (MNIST by default)",
                       description="Train a preset on MNIST (or --data-dir) and write a run directory. "
                                   "Options not given come from --config, else from the preset's recipe.")
    add_config_options(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR where it stopped")
    p.add_argument("--config", metavar="RUN.toml", help="settings from a TOML file; command-line options override it")


def given_options(args) -> dict:
    """The TrainConfig settings given on the command line (not None)."""
    from ..config import TrainConfig

    return {f.name: getattr(args, f.name) for f in fields(TrainConfig)
            if getattr(args, f.name, None) is not None}


def train_settings(args) -> dict:
    """The command line's settings (given_options) over the --config file's (fastcnn.toml_config.merge)."""
    from ..toml_config import merge

    return merge(getattr(args, "config", None), given_options(args))


def run(args) -> int:
    from ..config import TrainConfig
    from ..train import Trainer

    given = train_settings(args)
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
        print(f"peak device memory: {m['peak_device_memory_bytes'] / 2**20:.1f} MiB (most held by CuPy's memory pool)")
    if "profile" in m:
        print(m["profile"])
    print(f"run written to {trainer.out}")
    return 0
