#!/usr/bin/env python
"""Train the networks of the five lab reports (../shared/REPORTS.md) with fastcnn and print a
table of fastcnn's measurements beside the figures the reports state.

    python scripts/reproduce_reports.py                    # every network, its own recipe, seeds 0, 1, 2
    python scripts/reproduce_reports.py --quick            # 1 epoch on 10 % of MNIST, one seed: a smoke run
    python scripts/reproduce_reports.py --only a,d --epochs 2 --seeds 1 --backend cupy

Every fastcnn figure in the table is measured in this run: the median over the seeds and
the spread (min–max). The "reported" columns are the reports' own numbers, quoted from
REPORTS.md (fastcnn.models.lab_reports.REPORTED). "reproduced?" is computed: yes when the
reported accuracy lies within the seeds' spread widened by 0.2 points, "better" above it,
"no" below it; "why" is what we found out about the difference (lab_reports.WHY).
Each run directory is kept under --out; the table is also written there as reproduce.md
and reproduce.json (every seed's figures).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

#: (row label, preset, extra TrainConfig settings)
ROWS = [
    ("A", "report-a", {"target_acc": 0.97}),
    ("B", "report-b", {}),
    ("C", "report-c", {}),
    ("C knn", "knn", {}),
    ("D 0/1/2", "report-d", {"classes": "0,1,2", "epochs": 5}),
    ("D", "report-d", {}),
    ("E mlp", "report-e-mlp", {}),
    ("E cnn", "report-e-cnn", {}),
]
REPORTED_EXTRA = {"C knn": {"accuracy": 0.9495, "seconds": None}, "D 0/1/2": {"accuracy": 0.9929, "seconds": None}}
TOLERANCE = 0.002  # the seeds' spread is widened by this much (accuracy) before calling a figure off


def verdict(reported, accs) -> str:
    """yes / better / no: ``reported`` against the measured accuracies ``accs`` (one per seed)."""
    if reported is None:
        return "—"
    if reported > max(accs) + TOLERANCE:
        return "no"
    return "better" if reported < min(accs) - TOLERANCE else "yes"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="report letters, e.g. a,d (default: all)")
    ap.add_argument("--epochs", type=int, help="override every recipe's epochs")
    ap.add_argument("--time-budget", type=float, help="seconds of training per network at most")
    ap.add_argument("--fraction", type=float, default=1.0, help="train on this fraction of MNIST's training set")
    ap.add_argument("--seeds", type=int, help="train each network with seeds 0 … N−1 (default 3; --quick: 1)")
    ap.add_argument("--quick", action="store_true", help="1 epoch on 10 %% of the training set (smoke run)")
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", default=f"runs/reproduce-{time.strftime('%Y%m%d-%H%M%S')}")
    a = ap.parse_args(argv)
    if a.quick:
        a.epochs, a.fraction = a.epochs or 1, min(a.fraction, 0.1)

    import dataclasses

    from fastcnn import models
    from fastcnn.models import lab_reports
    from fastcnn.baseline import knn_baseline
    from fastcnn.config import TrainConfig
    from fastcnn.data.formats import load_data, subset
    from fastcnn.train import Trainer

    only = {s.strip().upper() for s in a.only.split(",")} if a.only else None
    seeds = range(1 if a.quick and a.seeds is None else (a.seeds or 3))
    data = subset(load_data(None), a.fraction, seed=0)
    out = Path(a.out)
    table = []
    for label, preset, extra in ROWS:
        if only and label.split()[0] not in only:
            continue
        rep = {**lab_reports.REPORTED.get(preset, {}), **REPORTED_EXTRA.get(label, {})}
        print(f"== {label}: {preset}", flush=True)
        runs = []
        if preset == "knn":  # deterministic: one run
            r = knn_baseline(data.x_train, data.y_train, data.x_test, data.y_test, k=3,
                             xp=__import__("fastcnn.backend", fromlist=["get"]).get(a.backend))
            row = {"network": "KNN k=3", "params": 0}
            runs.append({"seed": None, "epochs": None, "accuracy": r["accuracy"], "seconds": r["seconds"]})
        else:
            settings = dict(extra)
            if a.epochs:
                settings["epochs"] = a.epochs
            for seed in seeds:
                name = label.replace(" ", "-").replace("/", "") + f"-seed{seed}"
                cfg = TrainConfig(model=preset, backend=a.backend, threads=a.threads, time_budget=a.time_budget,
                                  seed=seed, out=str(out / name), progress=False, **settings)
                m = Trainer(cfg, data=dataclasses.replace(data)).fit()
                runs.append({"seed": seed, "epochs": round(m["epochs"], 2), "accuracy": m["test_accuracy"],
                             "seconds": m["train_seconds"], "status": m["status"]})
                print(f"   seed {seed}: test accuracy {m['test_accuracy']:.4f}, {m['train_seconds']:.1f} s, "
                      f"{m['epochs']:.2f} epochs", flush=True)
            row = {"network": preset, "params": m["params"]}
        accs = [r["accuracy"] for r in runs]
        row.update(report=label, runs=runs, accuracy=statistics.median(accs), accuracy_min=min(accs),
                   accuracy_max=max(accs), seconds=statistics.median(r["seconds"] for r in runs),
                   epochs=statistics.median(r["epochs"] for r in runs) if runs[0]["epochs"] is not None else None,
                   reported_accuracy=rep.get("accuracy"), reported_seconds=rep.get("seconds"),
                   reproduced=verdict(rep.get("accuracy"), accs), why=lab_reports.WHY.get(label, ""))
        table.append(row)

    def f(v, fmt):
        return "—" if v is None else format(v, fmt)

    lines = ["| report | network | params | epochs | fastcnn test acc, median (min–max) | fastcnn train s | "
             "reported acc | reported s | reproduced? | why |", "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in table:
        acc = f"{r['accuracy']:.2%}" + (f" ({r['accuracy_min']:.2%}–{r['accuracy_max']:.2%})" if len(r["runs"]) > 1 else "")
        lines.append(f"| {r['report']} | {r['network']} | {r['params']:,} | {f(r['epochs'], 'g')} | {acc} | "
                     f"{r['seconds']:.1f} | {f(r['reported_accuracy'], '.2%')} | {f(r['reported_seconds'], ',.0f')} | "
                     f"{r['reproduced']} | {r['why']} |")
    text = "\n".join(lines)
    print(f"\nfastcnn on {len(data.x_train):,} training images ({a.backend}), seeds {list(seeds)}; "
          "reported = the reports' own figures\n")
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduce.md").write_text(text + "\n")
    (out / "reproduce.json").write_text(json.dumps(table, indent=2) + "\n")
    print(f"\nwritten to {out}/reproduce.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
