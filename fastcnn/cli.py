"""The `fastcnn` command: train, eval, summary, predict, bench.

Each command runs inside ``fastcnn.settings(threads=--threads)``; nothing else about the
process is changed (no environment variables, no restart).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive_int(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {s}")
    return v


def _add_train(sub):
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
    p.add_argument("--threads", type=_positive_int, help="CPU threads for BLAS and Numba together")
    p.add_argument("--eval-every", type=int, default=None, help="evaluate every N steps (0: each epoch end)")
    p.add_argument("--val-fraction", type=float, default=None, help="hold out this fraction of training data")
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--dtype", default=None, choices=["float32", "float64"])
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR where it stopped")
    p.add_argument("--profile", action="store_true", help="print forward/backward time per layer")
    p.add_argument("--deterministic", action="store_true", default=None,
                   help="no timing-based choices of algorithms: the same seed gives the same history")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_common_model_args(p):
    p.add_argument("--weights", required=True, help="a run directory or a model .npz")
    p.add_argument("--model", help="preset of a bare .npz (default: read from the run directory or guessed)")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--threads", type=_positive_int)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fastcnn", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    _add_train(sub)
    p = sub.add_parser("eval", help="test accuracy of trained weights")
    _add_common_model_args(p)
    p.add_argument("--data-dir")
    p = sub.add_parser("summary", help="layer table and parameter budget of a preset")
    p.add_argument("--model", default=None)
    p = sub.add_parser("predict", help="a class per image of an idx or .npy file")
    _add_common_model_args(p)
    p.add_argument("--input", help="images: idx file (gzip or raw) or .npy, uint8 (N, 28, 28)")
    p.add_argument("--out", help="write the classes here, one per line (default: print)")
    p = sub.add_parser("bench", help="benchmarks: conv algorithms or training paths")
    p.add_argument("what", choices=["conv", "train"])
    p.add_argument("--backend", default="numpy")
    p.add_argument("--threads", type=_positive_int)
    p.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--steps-to-97", type=int, default=None, help="skip the 97 %% run and use this step count")
    from . import cli_tools
    cli_tools.add_parsers(sub)                          # report, baseline, sweep
    cli_tools.add_train_args(sub.choices["train"])      # --config --augment --augment-mistakes --classes --patience
    cli_tools.add_eval_args(sub.choices["eval"])        # --classes --metrics-out
    cli_tools.add_predict_args(sub.choices["predict"])  # --csv
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .backend import BackendError
    from .data import DataError
    from .scoped_settings import settings
    from .train import TrainingError

    try:
        with settings(threads=getattr(args, "threads", None)):
            return COMMANDS[args.command](args) or 0
    except (ValueError, DataError, BackendError, TrainingError, FileNotFoundError, OSError) as e:
        print(f"fastcnn {args.command}: error: {e}", file=sys.stderr)
        return 2


def cmd_train(args) -> int:
    from .config import TrainConfig
    from .train import Trainer

    given = {"model": args.model, "backend": args.backend, "epochs": args.epochs, "batch_size": args.batch_size,
             "optimizer": args.optimizer, "lr": args.lr, "schedule": args.schedule,
             "weight_decay": args.weight_decay, "target_acc": args.target_acc, "time_budget": args.time_budget,
             "seed": args.seed, "data_dir": args.data_dir, "out": args.out, "conv_algo": args.conv_algo,
             "threads": args.threads, "eval_every": args.eval_every, "val_fraction": args.val_fraction,
             "label_smoothing": args.label_smoothing, "dtype": args.dtype, "profile": args.profile or None,
             "deterministic": args.deterministic,
             "progress": False if args.no_progress else None}
    given = {k: v for k, v in given.items() if v is not None}
    from .cli_tools import train_settings
    given = train_settings(args, given)
    if args.resume:
        trainer = Trainer.resume(args.resume, **given)
    else:
        trainer = Trainer(TrainConfig(**given))
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


def load_weights(args):
    """The model of --weights (run directory or .npz) on --backend, with its preset name."""
    import json

    from . import models
    from .backend import get
    from .io import load_npz

    path = Path(args.weights)
    name = args.model
    if path.is_dir():
        if name is None and (path / "config.json").is_file():
            name = json.loads((path / "config.json").read_text()).get("model")
        path = path / "model.npz"
    state = load_npz(path)
    if name is None:
        name = models.guess(state)
    model = models.build(name)
    model.load_state_dict(state)
    return model.to(get(args.backend)), name


def cmd_eval(args) -> int:
    from .data import load_mnist
    from .inference import evaluate

    model, name = load_weights(args)
    data = load_mnist(args.data_dir)
    r = evaluate(model, data.x_test, data.y_test)
    print(f"{name}: test accuracy {r['accuracy']:.4f}, loss {r['loss']:.4f} on {len(data.y_test)} images")
    return 0


def cmd_summary(args) -> int:
    from . import models

    name = args.model or models.DEFAULT
    model = models.build(name)
    print(model.summary())
    n = model.num_params()
    verdict = "fits" if n <= models.LAB_BUDGET else "does NOT fit"
    print(f"{name} {verdict} the lab's budget of 9·9·20 + 2000·100 + 100·10 = {models.LAB_BUDGET:,} parameters "
          f"({n:,} = {n / models.LAB_BUDGET:.1%} of it)")
    return 0


def cmd_predict(args) -> int:
    import numpy as np

    from .backend import as_numpy
    from .data import read_idx
    from .inference import predict_logits

    model, _ = load_weights(args)
    if not args.input:
        raise ValueError("say which images to classify: --input FILE (idx or .npy) or --csv test.csv")
    src = Path(args.input)
    x = np.load(src, allow_pickle=False) if src.suffix == ".npy" else read_idx(src)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise ValueError(f"{src}: expected uint8 images of shape (N, 28, 28), got {x.dtype} {x.shape}")
    classes = as_numpy(predict_logits(model, x).argmax(axis=1))
    text = "\n".join(str(int(c)) for c in classes) + "\n"
    if args.out:
        from .io import _atomic
        _atomic(args.out, lambda f: f.write(text.encode()))
        print(f"wrote {len(classes)} classes to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_bench(args) -> int:
    from . import bench
    return bench.main(args)


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "summary": cmd_summary, "predict": cmd_predict,
            "bench": cmd_bench}
from .cli_tools import COMMANDS as _TOOLS  # noqa: E402  (report, baseline, sweep; extended eval, predict)

COMMANDS.update(_TOOLS)

if __name__ == "__main__":
    sys.exit(main())
