"""`fastcnn sweep`: grid or random hyperparameter search, trials in parallel processes (fastcnn.sweep).

Exit codes: 0 when every trial finished; 1 when some failed or were lost with their worker (the
message says how many; ``--resume OUT`` runs them again); 2 for bad options; 130 on Ctrl-C.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .options import non_negative_int, positive_int


def add_parser(sub):
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
    p.add_argument("--trials", type=positive_int, default=None, help="random: number of trials; grid: at most this many")
    p.add_argument("--fraction", type=float, default=None, help="train on this fraction of the training set (default 1)")
    p.add_argument("--val-fraction", type=float, default=None, help="held out for validation (default 0.1)")
    p.add_argument("--workers", type=positive_int, default=None, help="parallel worker processes (default 1)")
    p.add_argument("--model", default=None)
    p.add_argument("--schedule", default=None)
    p.add_argument("--backend", default=None)
    p.add_argument("--threads", type=positive_int, help="CPU threads per trial (default cores // workers; on Dask, "
                                                "a worker machine's cores // the trials it runs at once)")
    p.add_argument("--data-dir")
    p.add_argument("--classes", metavar="DIGITS")
    p.add_argument("--seed", type=non_negative_int, default=None, help="seed of every trial (default 0)")
    p.add_argument("--config", metavar="SWEEP.toml", help="[sweep] lists the space; [train] fixed settings")
    p.add_argument("--out", help="sweep directory (default runs/sweep-TIME)")
    p.add_argument("--deterministic", action="store_true", help="no timing-based choices in the trials")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="run the trials on this Dask scheduler ('local': a LocalCluster of --workers processes "
                        "here); needs pip install 'fastcnn[dask]'")
    p.add_argument("--resume", metavar="OUT", help="run the trials of sweep OUT that did not finish")


def run(args) -> int:
    from .. import sweep
    from ..rundir import default_run_dir

    space, fixed = {}, {}
    if args.config:
        space, options, fixed = sweep.read_sweep_config(args.config)
        for k in ("seed", "val_fraction", "threads", "out"):  # [train] settings that are the sweep's own options
            if k in fixed:
                options.setdefault(k, fixed.pop(k))
        for k, v in options.items():  # the command line wins
            if getattr(args, k) is None:
                setattr(args, k, v)
    space.update({k: getattr(args, k) for k in sweep.PARAMS if getattr(args, k, None) is not None})
    fixed.update({k: v for k, v in {"model": args.model, "backend": args.backend, "data_dir": args.data_dir,
                                    "classes": args.classes, "schedule": args.schedule,
                                    "deterministic": args.deterministic or None}.items() if v is not None})
    if args.resume and (space or fixed):
        raise ValueError(f"sweep --resume {args.resume} takes its trials and settings from the sweep directory: "
                         "drop the space and training options (keep --workers, --threads, --scheduler)")
    out = args.resume or args.out or str(default_run_dir("sweep"))
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
                                   seed=args.seed if args.seed is not None else 0, **where, **fixed)
    except KeyboardInterrupt:
        print(f"\ninterrupted: pending trials cancelled, the finished ones kept in {out}/sweep.csv "
              f"(continue with: fastcnn sweep --resume {out})", file=sys.stderr)
        return 130
    print()
    print(Path(out, "sweep.md").read_text())
    print(f"table written to {out}/sweep.csv and {out}/sweep.md")
    bad = sweep.failed(rows)
    if bad:  # a sweep that lost trials did not do what was asked: say so, and exit non-zero
        lost = sum(str(r.get("status", "")).startswith("lost") for r in bad)
        print(f"fastcnn sweep: {len(bad)} of {len(rows)} trials did not finish ({lost} lost with their worker, "
              f"{len(bad) - lost} failed; see the status column of {out}/sweep.csv); run them again with: "
              f"fastcnn sweep --resume {out}", file=sys.stderr)
        return 1
    if not rows:
        print(f"fastcnn sweep: no trials ran (nothing to do in {out})", file=sys.stderr)
        return 1
    return 0
