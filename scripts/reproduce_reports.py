#!/usr/bin/env python
"""Train the networks of the five lab reports (../shared/REPORTS.md) with fastcnn and print a
table of fastcnn's measurements beside the figures the reports state.

    python scripts/reproduce_reports.py                    # every network, each report's own recipe
    python scripts/reproduce_reports.py --quick            # 1 epoch on 10 % of MNIST: a smoke run
    python scripts/reproduce_reports.py --only a,d --epochs 2 --backend cupy

Every fastcnn figure in the table is measured in this run; the "reported" columns
are the reports' own numbers, quoted from REPORTS.md (fastcnn.models.lab_reports.REPORTED).
Each network's run directory is kept under --out; the table is also written there
as reproduce.md and reproduce.json.
"""
from __future__ import annotations

import argparse
import json
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="report letters, e.g. a,d (default: all)")
    ap.add_argument("--epochs", type=int, help="override every recipe's epochs")
    ap.add_argument("--time-budget", type=float, help="seconds of training per network at most")
    ap.add_argument("--fraction", type=float, default=1.0, help="train on this fraction of MNIST's training set")
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
    data = subset(load_data(None), a.fraction, seed=0)
    out = Path(a.out)
    table = []
    for label, preset, extra in ROWS:
        if only and label.split()[0] not in only:
            continue
        rep = {**lab_reports.REPORTED.get(preset, {}), **REPORTED_EXTRA.get(label, {})}
        print(f"== {label}: {preset}", flush=True)
        if preset == "knn":
            r = knn_baseline(data.x_train, data.y_train, data.x_test, data.y_test, k=3,
                             xp=__import__("fastcnn.backend", fromlist=["get"]).get(a.backend))
            row = {"report": label, "network": "KNN k=3", "params": 0, "epochs": None,
                   "accuracy": r["accuracy"], "seconds": r["seconds"]}
        else:
            settings = dict(extra)
            if a.epochs:
                settings["epochs"] = a.epochs
            cfg = TrainConfig(model=preset, backend=a.backend, threads=a.threads, time_budget=a.time_budget,
                              out=str(out / label.replace(" ", "-").replace("/", "")), progress=False, **settings)
            m = Trainer(cfg, data=dataclasses.replace(data)).fit()
            row = {"report": label, "network": preset, "params": m["params"], "epochs": round(m["epochs"], 2),
                   "accuracy": m["test_accuracy"], "seconds": m["train_seconds"], "status": m["status"]}
        row["reported_accuracy"], row["reported_seconds"] = rep.get("accuracy"), rep.get("seconds")
        table.append(row)
        print(f"   test accuracy {row['accuracy']:.4f}, {row['seconds']:.1f} s", flush=True)

    def f(v, fmt):
        return "—" if v is None else format(v, fmt)

    lines = ["| report | network | params | fastcnn epochs | fastcnn test acc | fastcnn train s | "
             "reported acc | reported s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        lines.append(f"| {r['report']} | {r['network']} | {r['params']:,} | {f(r['epochs'], 'g')} | "
                     f"{r['accuracy']:.2%} | {r['seconds']:.1f} | {f(r['reported_accuracy'], '.2%')} | "
                     f"{f(r['reported_seconds'], ',.0f')} |")
    text = "\n".join(lines)
    print(f"\nfastcnn on {len(data.x_train):,} training images ({a.backend}); reported = the reports' own figures\n")
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reproduce.md").write_text(text + "\n")
    (out / "reproduce.json").write_text(json.dumps(table, indent=2) + "\n")
    print(f"\nwritten to {out}/reproduce.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
