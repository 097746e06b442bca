"""Train N seeds of a preset with its recipe and tabulate test accuracy, time and time to 99 %.

    python benchmarks/seeds.py --model fast99 --seeds 5 [--val-fraction 0.1] [--time-budget S]
                               [--epochs N] [--threads 2] [--set ema=0.999 --set tta=1 ...]
                               [--data-dir D] [--runs runs/seeds-MODEL] [--out benchmarks/results]

Each seed is one run directory RUNS/seed-K, trained in this process one after the other
(the first pays Numba's compilation, which is outside train_seconds anyway). A fraction
``--val-fraction`` (default 0.1) of the 60,000 training images is held out: the Trainer's
stop rule and milestones then watch validation accuracy, so a recipe is chosen on it and
the test set is only reported. ``--val-fraction 0`` trains on all 60,000 (milestones then
watch the test set, as `fastcnn train` does without a split).

A preset's headline is its whole fixed schedule, as records are measured: the mean and the
minimum final test accuracy over the seeds (without test-time augmentation; TTA in its own
column) and the training time of the whole schedule. ``--set target_acc=1.0`` keeps a preset
with a target from stopping early.

Writes OUT/seeds_MODEL.md and .csv (atomically): one row per seed and the summary rows
mean / min / median / max, and OUT/seeds_MODEL.html (summary, curves of all seeds overlaid,
rows) when matplotlib is installed. Prints the table.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

COLUMNS = [("seed", "seed", ""), ("status", "status", ""), ("test_accuracy", "test acc", ".4f"),
           ("test_accuracy_tta", "test acc TTA", ".4f"), ("val_accuracy", "val acc", ".4f"), ("train_seconds", "train s", ".2f"),
           ("seconds_to_99", "s to 99 %", ".2f"), ("seconds_to_97", "s to 97 %", ".2f"),
           ("epochs", "epochs", ".2f"), ("samples_per_second", "samples/s", ",.0f")]
SUMMED = ("test_accuracy", "test_accuracy_tta", "val_accuracy", "train_seconds", "seconds_to_99", "seconds_to_97", "samples_per_second")


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="preset, e.g. fast99 or lab-best")
    ap.add_argument("--seeds", type=int, default=5, help="number of seeds: 0 .. N-1 (default 5)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.1,
                    help="held out of the training images for recipe choice (default 0.1; 0: none)")
    ap.add_argument("--epochs", type=int, help="override the recipe's epochs")
    ap.add_argument("--time-budget", type=float, help="seconds of training per seed")
    ap.add_argument("--threads", type=int, help="CPU threads (default: all)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other TrainConfig setting, e.g. --set ema=0.999 --set betas=0.7,0.9 (repeatable)")
    ap.add_argument("--data-dir", help="data set (default: the bundled MNIST)")
    ap.add_argument("--runs", help="parent of the run directories (default runs/seeds-MODEL)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="tables go here")
    ap.add_argument("--progress", action="store_true", help="show each run's progress bar")
    return ap.parse_args(argv)


def _value(text: str):
    """A --set value: JSON when it parses (numbers, true/false, lists), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def overrides(pairs) -> dict:
    out = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k.strip():
            raise SystemExit(f"--set takes KEY=VALUE, e.g. --set ema=0.999; got {p!r}")
        out[k.strip().replace("-", "_")] = _value(v.strip())
    return out


def run_seed(args, seed: int, extra: dict) -> tuple:
    """Train one seed; returns (row, history)."""
    from fastcnn.config import TrainConfig
    from fastcnn.train import Trainer

    out = Path(args.runs or f"runs/seeds-{args.model}") / f"seed-{seed}"
    cfg = dict(model=args.model, seed=seed, val_fraction=args.val_fraction, epochs=args.epochs,
               time_budget=args.time_budget, threads=args.threads, data_dir=args.data_dir, out=str(out),
               progress=args.progress)
    cfg.update(extra)
    # a rerun of the benchmark replaces its own seed runs
    t = Trainer(TrainConfig(**{k: v for k, v in cfg.items() if v is not None}), overwrite=True)
    m = t.fit()
    ms = m.get("milestones", {})
    row = {"seed": seed, "status": m["status"], "test_accuracy": m["test_accuracy"],
           "test_accuracy_tta": m.get("test_accuracy_tta"),
           "val_accuracy": m.get("val_accuracy"), "train_seconds": m["train_seconds"],
           "seconds_to_99": ms.get("0.99", {}).get("train_seconds"),
           "seconds_to_97": ms.get("0.97", {}).get("train_seconds"), "epochs": m["epochs"],
           "samples_per_second": m["samples_per_second"], "features": m.get("features")}
    return row, t.history


def summary(rows: list) -> list:
    """Rows mean / min / median / max over the seeds of every numeric column (seeds without a
    value left out): a fixed schedule's headline is the mean and the minimum final accuracy."""
    out = []
    for name, f in (("mean", statistics.mean), ("min", min), ("median", statistics.median), ("max", max)):
        r = {"seed": name, "status": f"{sum(x['status'] != 'diverged' for x in rows)}/{len(rows)} ran"}
        for k in SUMMED:
            vals = [x[k] for x in rows if x.get(k) is not None]
            r[k] = f(vals) if vals else None
        if name == "mean":
            n99 = sum(x["test_accuracy"] is not None and x["test_accuracy"] >= 0.99 for x in rows)
            r["status"] = f"final ≥ 99 % in {n99}/{len(rows)}"
        out.append(r)
    return out


def main(argv=None) -> int:
    args = parse(argv)
    from fastcnn import tables
    from fastcnn.bench import machine

    extra = overrides(args.set)
    rows, histories = [], {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        row, hist = run_seed(args, seed, extra)
        rows.append(row)
        histories[seed] = hist
        print(f"seed {seed}: test {row['test_accuracy']:.4f}"
              + (f", val {row['val_accuracy']:.4f}" if row["val_accuracy"] is not None else "")
              + f", {row['train_seconds']:.2f} s, {row['status']}", flush=True)
    watched = "validation" if args.val_fraction > 0 else "test"
    command = "python benchmarks/seeds.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    header = machine.header_lines(machine.info(args.threads)) + [
        f"preset {args.model}, recipe of fastcnn.models" + (f" with {extra}" if extra else ""),
        f"validation split {args.val_fraction:g} of the training images; milestones (s to 97 %/99 %) and the "
        f"stop rule watch {watched} accuracy; test accuracy is the final weights' on the 10,000 test images",
        f"features used: {json.dumps(rows[0]['features'])}" if rows else "",
        f"reproduce: {command}"]
    header = [h for h in header if h]
    allrows = rows + summary(rows)
    title = f"{args.model}: {len(rows)} seeds"
    print(tables.text(COLUMNS, allrows, title))
    out = Path(args.out)
    md = tables.markdown(COLUMNS, allrows, title, header=header)
    tables.write_text(out / f"seeds_{args.model}.md", md)
    tables.write_text(out / f"seeds_{args.model}.csv", tables.csv_text(COLUMNS, allrows, header))
    written = [out / f"seeds_{args.model}.md", out / f"seeds_{args.model}.csv"]
    try:
        from fastcnn.viz import seeds as page
        png = page.overlaid_curves(histories, out / f"seeds_{args.model}.png", title)
        summ = tables.markdown(COLUMNS, summary(rows), header=header)
        written.append(page.seeds_page(out / f"seeds_{args.model}.html", title, summ,
                                       tables.markdown(COLUMNS, rows), png, command))
    except ImportError as e:  # matplotlib is optional
        print(f"no page: {e}")
    print("written: " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
