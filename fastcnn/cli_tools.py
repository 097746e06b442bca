"""The experiment-toolkit commands of ``fastcnn``: report, baseline, sweep, export; and the
extensions of train (--config, --augment, --classes, --patience), eval (metrics
table) and predict (--csv → Kaggle submission).

cli.py wires them in with ``add_parsers(sub)``, ``add_train_args(p)``,
``train_settings(args, given)``, ``add_eval_args(p)``, ``add_predict_args(p)`` and
``COMMANDS``. Like cli.py, nothing here imports numpy at module level.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


# --- train ---------------------------------------------------------------------------
def add_train_args(p):
    """The toolkit's options of ``fastcnn train``."""
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


def train_settings(args, given: dict) -> dict:
    """cmd_train's ``given`` dict with the toolkit's options added and the --config file under it."""
    from .toml_config import merge

    extra = {"augment": getattr(args, "augment", None), "augment_mistakes": getattr(args, "augment_mistakes", None),
             "classes": getattr(args, "classes", None), "patience": getattr(args, "patience", None),
             **{k: getattr(args, k, None) for k in ("betas", "pct_start", "div_factor", "final_div_factor",
                                                     "ema", "tta")}}
    given = {**given, **{k: v for k, v in extra.items() if v is not None}}
    return merge(getattr(args, "config", None), given)


# --- eval ----------------------------------------------------------------------------
def add_eval_args(p):
    p.add_argument("--classes", metavar="DIGITS", help="evaluate on these digits only (default: the run's)")
    p.add_argument("--metrics-out", metavar="DIR",
                   help="write eval_metrics.{json,csv,md} and eval_confusion.csv here (default: the run directory)")


def cmd_eval(args) -> int:
    """Accuracy, confusion matrix and per-class precision / recall / F1 of trained weights."""
    from . import metrics as M
    from . import rundir
    from .cli import load_weights
    from .inference import classify

    model, name = load_weights(args)
    wpath = Path(args.weights)
    cfg = (rundir.read_json(wpath / "config.json", {}) or {}) if wpath.is_dir() else {}
    if getattr(args, "classes", None):
        cfg["classes"] = args.classes
    ds = rundir.load_data_of(cfg, getattr(args, "data_dir", None))
    import numpy as np

    classes = sorted(int(c) for c in np.unique(ds.y_test))
    pred, probs = classify(model, ds.x_test)
    rep = M.classification_report(ds.y_test, pred, probs.shape[1], classes)
    print(f"{name}: test accuracy {rep['accuracy']:.4f} on {rep['n']:,} images of {ds.name}")
    print(M.format_table(rep))
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    print(M.format_confusion(np.asarray(rep["confusion_matrix"])[np.ix_(classes, classes)]
                             if len(classes) < len(rep["confusion_matrix"]) else rep["confusion_matrix"]))
    out = getattr(args, "metrics_out", None) or (wpath if wpath.is_dir() else None)
    if out is not None:
        paths = M.write_report(rep, out, prefix="eval")
        print(f"metrics written to {', '.join(str(p) for p in paths)}")
    return 0


# --- predict -------------------------------------------------------------------------
def add_predict_args(p):
    p.add_argument("--csv", metavar="TEST.csv",
                   help="images from a Kaggle test.csv (784 pixel columns); --out gets a submission "
                        "ImageId,Label (default submission.csv)")


def cmd_predict(args) -> int:
    if not getattr(args, "csv", None):
        if not getattr(args, "input", None):
            raise ValueError("predict needs --input IMAGES (idx or .npy) or --csv TEST.csv")
        from .cli import cmd_predict as plain
        return plain(args)
    if getattr(args, "input", None):
        raise ValueError("predict: give --input or --csv, not both")
    from .backend import as_numpy
    from .cli import load_weights
    from .data.formats import read_kaggle_csv, write_submission
    from .inference import predict_logits

    model, _ = load_weights(args)
    x, _ = read_kaggle_csv(args.csv, labeled=False)
    classes = as_numpy(predict_logits(model, x).argmax(axis=1))
    out = write_submission(args.out or "submission.csv", classes)
    print(f"wrote {len(classes):,} predictions to {out} (ImageId,Label)")
    return 0


# --- report --------------------------------------------------------------------------
def cmd_report(args) -> int:
    from .viz.report import build_report

    path = build_report(args.run_dir, data_dir=args.data_dir, image_index=args.image, max_errors=args.max_errors,
                        weights="best.npz" if args.best else "model.npz")
    print(f"report written to {path} (plots in {path.parent / 'report'})")
    return 0


# --- baseline ------------------------------------------------------------------------
def cmd_baseline(args) -> int:
    import numpy as np

    from .backend import get
    from .data.formats import load_data, read_kaggle_csv, select_classes, subset, write_submission

    ds = load_data(args.data_dir)
    if args.classes:
        ds = select_classes(ds, args.classes)
    if args.train_limit:
        ds = subset(ds, limit=args.train_limit, seed=args.seed)
    x_test, y_test = ds.x_test, ds.y_test
    if args.test_limit:
        x_test, y_test = x_test[:args.test_limit], y_test[:args.test_limit]
    if args.method == "knn":
        from .baseline import KNN, knn_baseline

        r = knn_baseline(ds.x_train, ds.y_train, x_test, y_test, k=args.k, xp=get(args.backend),
                         batch_size=args.batch_size)
        print(f"KNN (k={args.k}) on {r['n_train']:,} training images: test accuracy {r['accuracy']:.4f} "
              f"on {r['n_test']:,} images in {r['seconds']:.1f} s ({args.backend})")
        if args.csv:
            x, _ = read_kaggle_csv(args.csv, labeled=False)
            pred = KNN(args.k, args.batch_size).fit(ds.x_train, ds.y_train, get(args.backend)).predict(x)
            print(f"wrote {len(pred):,} predictions to {write_submission(args.out or 'submission.csv', pred)}")
        return 0
    # mlp: the mlp preset, trained with its recipe
    import dataclasses

    from .config import TrainConfig
    from .train import Trainer

    ds = dataclasses.replace(ds, x_test=x_test, y_test=y_test)
    cfg = TrainConfig(model="mlp", backend=args.backend, epochs=args.epochs, seed=args.seed,
                      out=args.out or f"runs/baseline-mlp-{time.strftime('%Y%m%d-%H%M%S')}", progress=False)
    m = Trainer(cfg, data=ds).fit()
    print(f"MLP (mlp preset) on {len(ds.x_train):,} training images: test accuracy {m['test_accuracy']:.4f} "
          f"on {len(y_test):,} images after {m['epochs']:.2f} epochs, {m['train_seconds']:.1f} s of training "
          f"(run in {cfg.out})")
    return 0


# --- sweep ---------------------------------------------------------------------------
def cmd_sweep(args) -> int:
    from . import sweep
    from .toml_config import read_toml

    space, fixed = {}, {}
    if args.config:
        doc = read_toml(args.config)
        table = doc.get("sweep", {})
        for k, v in table.items():
            key = k.replace("-", "_")
            if key in sweep.PARAMS:
                space[key] = v
            elif key in ("mode", "trials", "workers", "fraction", "val_fraction", "scheduler"):
                if getattr(args, key) is None:
                    setattr(args, key, v)
            else:
                raise ValueError(f"--config {args.config}: unknown [sweep] key {k!r}; the space takes "
                                 f"{', '.join(sweep.PARAMS)}; other keys: mode, trials, workers, fraction, "
                                 "val_fraction, scheduler")
        from .toml_config import load_train_config
        fixed = load_train_config(args.config)
    for k in sweep.PARAMS:
        v = getattr(args, k, None)
        if v is not None:
            space[k] = v
    fixed.update({k: v for k, v in {"model": args.model, "backend": args.backend, "data_dir": args.data_dir,
                                    "classes": args.classes, "schedule": args.schedule,
                                    "deterministic": args.deterministic or None}.items() if v is not None})
    if args.resume and (space or fixed):
        raise ValueError(f"sweep --resume {args.resume} takes its trials and settings from the sweep directory: "
                         "drop the space and training options (keep --workers, --threads, --scheduler)")
    out = args.resume or args.out or f"runs/sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    done = []

    def progress(row):
        done.append(row)
        va = row.get("val_accuracy")
        print(f"[{len(done)}] trial {row['trial']}: "
              + ", ".join(f"{k}={row[k]}" for k in sweep.PARAMS if k in row)
              + (f" -> val acc {va:.4f}" if va is not None else f" -> {row['status']}")
              + (f" ({row['worker']}, {row['wall_seconds']} s)" if row.get("worker") else ""), flush=True)

    where = dict(workers=args.workers or 1, threads=args.threads, on_result=progress, scheduler=args.scheduler,
                 log=lambda msg: print(msg, flush=True))
    try:
        if args.resume:
            rows = sweep.resume_sweep(out, **where)
        else:
            rows = sweep.run_sweep(space, out, mode=args.mode or "grid", trials_n=args.trials,
                                   fraction=args.fraction if args.fraction is not None else 1.0,
                                   val_fraction=args.val_fraction if args.val_fraction is not None else 0.1,
                                   seed=args.seed, **where, **fixed)
    except KeyboardInterrupt:
        print(f"\ninterrupted: pending trials cancelled, the finished ones kept in {out}/sweep.csv "
              f"(continue with: fastcnn sweep --resume {out})", file=sys.stderr)
        return 130
    print()
    print(Path(out, "sweep.md").read_text())
    print(f"table written to {out}/sweep.csv and {out}/sweep.md")
    return 0 if any(r.get("val_accuracy") is not None for r in rows) else 1


# --- export --------------------------------------------------------------------------
def cmd_export(args) -> int:
    """Write trained weights as an ONNX graph (fastcnn.export_onnx), with the run's name, preset and accuracy."""
    from . import rundir
    from .cli import load_weights
    from .export_onnx import export

    model, name = load_weights(args)
    wpath = Path(args.weights)
    acc = (rundir.read_json(wpath / "metrics.json", {}) or {}).get("test_accuracy") if wpath.is_dir() else None
    meta = {"run": wpath.name if wpath.is_dir() else wpath.stem, "preset": name, "test_accuracy": acc}
    try:
        out = export(model, args.onnx, uint8_input=args.uint8_input, opset=args.opset, metadata=meta)
    except ImportError as e:  # the onnx package is an optional extra
        raise ValueError(str(e)) from None
    kind = "uint8 images (batch, C, H, W)" if args.uint8_input else "normalised float32 (batch, C, H, W)"
    print(f"wrote {out} ({name}, input: {kind}, output: logits; opset {args.opset})")
    return 0


# --- parsers -------------------------------------------------------------------------
def add_parsers(sub):
    """Add the report, baseline, sweep and export subcommands to cli.py's subparsers."""
    p = sub.add_parser("report", help="a self-contained HTML page of a run: config, metrics, plots",
                       description="Write RUN_DIR/report.html (plots embedded; PNGs also in RUN_DIR/report/). "
                                   "Needs matplotlib: pip install 'fastcnn[viz]'.")
    p.add_argument("run_dir")
    p.add_argument("--data-dir", help="the data set (default: the run's)")
    p.add_argument("--image", type=int, default=None, help="test image whose feature maps are shown (default 0)")
    p.add_argument("--max-errors", type=int, default=36, help="misclassified images shown (default 36)")
    p.add_argument("--best", action="store_true", help="report on best.npz (early stopping) instead of model.npz")

    p = sub.add_parser("baseline", help="baselines: KNN on raw pixels, or the mlp preset",
                       description="Train and score a baseline; prints test accuracy and time.")
    p.add_argument("method", choices=["knn", "mlp"])
    p.add_argument("--k", type=int, default=3, help="neighbours (knn; default 3)")
    p.add_argument("--batch-size", type=int, default=500, help="queries per distance batch (knn)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (mlp; default: its recipe)")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--threads", type=int)
    p.add_argument("--data-dir", help="idx directory, Kaggle train.csv, mnist.npz or .mat")
    p.add_argument("--classes", metavar="DIGITS")
    p.add_argument("--train-limit", type=int, help="use at most N training images (random subset)")
    p.add_argument("--test-limit", type=int, help="score on the first N test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", metavar="TEST.csv", help="knn: also write a Kaggle submission for this test.csv")
    p.add_argument("--out", help="knn: submission file (default submission.csv); mlp: run directory")

    p = sub.add_parser("sweep", help="grid or random hyperparameter search, trials in parallel processes",
                       description="Each trial is a run directory OUT/trial-NNN; the table (CSV and Markdown) "
                                   "is sorted by validation accuracy. Values are comma-separated lists.")
    p.add_argument("--lr", help="e.g. 0.1,0.01,0.001")
    p.add_argument("--batch-size", help="e.g. 32,128")
    p.add_argument("--hidden", help="hidden size, e.g. 500,1000,2000 (presets mlp, report-c, report-e-*)")
    p.add_argument("--weight-decay", help="e.g. 1e-2,1e-3,1e-4")
    p.add_argument("--optimizer", help="e.g. sgd,momentum,adam")
    p.add_argument("--epochs", help="epochs per trial (one value, or several to sweep)")
    p.add_argument("--mode", choices=["grid", "random"], default=None, help="grid (default) or random")
    p.add_argument("--trials", type=int, default=None, help="random: number of trials; grid: at most this many")
    p.add_argument("--fraction", type=float, default=None, help="train on this fraction of the training set (default 1)")
    p.add_argument("--val-fraction", type=float, default=None, help="held out for validation (default 0.1)")
    p.add_argument("--workers", type=int, default=None, help="parallel worker processes (default 1)")
    p.add_argument("--model", default=None)
    p.add_argument("--schedule", default=None)
    p.add_argument("--backend", default=None)
    p.add_argument("--threads", type=int, help="CPU threads per trial (default cores // workers; on Dask, "
                                                "a worker machine's cores // the trials it runs at once)")
    p.add_argument("--data-dir")
    p.add_argument("--classes", metavar="DIGITS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", metavar="SWEEP.toml", help="[sweep] lists the space; [train] fixed settings")
    p.add_argument("--out", help="sweep directory (default runs/sweep-TIME)")
    p.add_argument("--deterministic", action="store_true", help="no timing-based choices in the trials")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="run the trials on this Dask scheduler ('local': a LocalCluster of --workers processes "
                        "here); needs pip install 'fastcnn[dask]'")
    p.add_argument("--resume", metavar="OUT", help="run the trials of sweep OUT that did not finish")

    p = sub.add_parser("export", help="write trained weights as an ONNX graph (for ONNX Runtime and others)",
                       description="Write the model of a run directory (or a model .npz) as ONNX, opset ≥ 17, "
                                   "dynamic batch axis. Needs the onnx package: pip install 'fastcnn[onnx]'.")
    p.add_argument("--weights", required=True, help="a run directory or a model .npz")
    p.add_argument("--model", help="preset of a bare .npz (default: read from the run directory or guessed)")
    p.add_argument("--onnx", required=True, metavar="MODEL.onnx", help="the file to write")
    p.add_argument("--uint8-input", action="store_true",
                   help="input raw uint8 images (batch, C, H, W), normalised inside the graph "
                        "(default: float32 normalised as fastcnn normalises)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17, at least 17)")
    p.set_defaults(backend="numpy")  # load_weights reads it; the weights are written from the host
    return sub


COMMANDS = {"report": cmd_report, "baseline": cmd_baseline, "sweep": cmd_sweep, "eval": cmd_eval,
            "predict": cmd_predict, "export": cmd_export}


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the fastcnn command")
