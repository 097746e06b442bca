"""Launched operations, host synchronisations and transfers per training step on the GPU path,
counted by the CuPy stand-in (no GPU needed): what a step would cost a real device in launches.

    FASTCNN_FAKE_CUPY=1 python benchmarks/gpu_launches.py measure --label after [--out DIR]
    python benchmarks/gpu_launches.py table [--out DIR]     # DIR/gpu_launches.md from before + after

``measure`` trains each preset for one short epoch (2,048 MNIST images, 500 test images) through
the Trainer's real loop, and the README's plain loop (model.to(cupy), BatchIterator on the
device, Adam) for a few steps, reading ``fake_cupy.counters()`` at every batch the loop draws.
A step's count is everything from drawing its batch to drawing the next one (the step, the
EMA and schedule, the loop's bookkeeping, and any logging or evaluation it does). An *ordinary*
step neither logs nor evaluates and is not an epoch's first or last. Writes
DIR/gpu_launches_<label>.json; ``table`` joins the before and after files into one table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PRESETS = ("fast99", "lenet5", "compact", "lab-best")
KEYS = ("launches", "syncs", "h2d", "d2h", "allocs")


def _small():
    from fastcnn.data import Dataset, load_mnist

    d = load_mnist()
    return Dataset(d.x_train[:2048], d.y_train[:2048], d.x_test[:500], d.y_test[:500])


def _trainer_counts(preset: str, data) -> dict:
    """Per-step counter deltas of one epoch of ``preset`` through Trainer.fit."""
    from fastcnn.config import TrainConfig
    from fastcnn.testing import fake_cupy as fc
    from fastcnn.train import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        with fc.counting() as setup:
            t = Trainer(TrainConfig(model=preset, backend="cupy", epochs=1, progress=False, target_acc=None,
                                    out=str(Path(tmp) / "run")), data=data)
        runs = []  # one list of counter snapshots per iter_from call (the warm-up draws one batch)
        orig = t.batches.iter_from

        def iter_from(step):
            runs.append([])
            for b in orig(step):
                runs[-1].append(fc.counters())
                yield b
            runs[-1].append(fc.counters())

        t.batches.iter_from = iter_from
        with fc.counting() as whole:
            t.fit()
        marks = max(runs, key=len)  # the epoch's loop
        c = t.config
        n = t.steps_per_epoch
        steps = []
        for k in range(1, len(marks)):  # step k (1-based): from batch k's draw to batch k+1's
            d = {key: marks[k][key] - marks[k - 1][key] for key in KEYS}
            logs = k % c.log_every == 0 or k == n
            evals = t.evaluates_after(k, k)  # one epoch: k steps into it
            d["kind"] = "eval" if evals else "log" if logs else ("edge" if k in (1, n) else "ordinary")
            steps.append(d)
        evals = [s for s in steps if s["kind"] == "eval"]
        return {"steps": steps, "setup": dict(setup), "whole": dict(whole), "evaluations": len(evals),
                "eval_h2d_bytes_total": None}


def _readme_counts(steps: int = 12) -> dict:
    """Per-step deltas of the README's plain loop on the device (lenet5-like model of the README)."""
    import numpy as np

    from fastcnn import backend, nn, optim
    from fastcnn.data import BatchIterator, load_mnist
    from fastcnn.testing import fake_cupy as fc

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from library_loop import readme_model  # the README's Sequential, written once for the benchmarks

    cp = backend.get("cupy")
    model = readme_model("lenet5").to(cp)
    loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=1e-3)
    data = load_mnist()
    x = cp.asarray(data.x_train[:2048])
    y = cp.asarray(data.y_train[:2048].astype(np.int64))
    out, marks = [], []
    for i, (xb, yb) in enumerate(BatchIterator(x, y, 128, xp=cp)):
        marks.append(fc.counters())
        loss = loss_fn(model.forward(xb), yb)
        model.backward(loss_fn.backward())
        opt.step()
        if i + 1 >= steps:
            break
    for k in range(2, len(marks)):  # the first step compiles / chooses; later ones are ordinary
        out.append({key: marks[k][key] - marks[k - 1][key] for key in KEYS} | {"kind": "ordinary"})
    return {"steps": out}


def _summary(steps, kind="ordinary") -> dict:
    sel = [s for s in steps if s["kind"] == kind]
    if not sel:
        return {}
    return {key: {"median": statistics.median(s[key] for s in sel), "max": max(s[key] for s in sel)}
            for key in KEYS} | {"n": len(sel)}


def measure(label: str, out: Path) -> dict:
    if os.environ.get("FASTCNN_FAKE_CUPY") != "1":
        sys.exit("run with FASTCNN_FAKE_CUPY=1: the counts come from the CuPy stand-in")
    data = _small()
    res = {}
    for p in PRESETS:
        r = _trainer_counts(p, data)
        res[p] = {"ordinary": _summary(r["steps"]), "eval": _summary(r["steps"], "eval"),
                  "log": _summary(r["steps"], "log"), "run_h2d": r["whole"]["h2d"],
                  "run_h2d_bytes": r["whole"]["h2d_bytes"], "evaluations": r["evaluations"]}
        print(p, json.dumps(res[p]["ordinary"]), file=sys.stderr)
    res["readme-loop"] = {"ordinary": _summary(_readme_counts()["steps"])}
    print("readme-loop", json.dumps(res["readme-loop"]["ordinary"]), file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"gpu_launches_{label}.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def table(out: Path) -> str:
    before = json.loads((out / "gpu_launches_before.json").read_text())
    after = json.loads((out / "gpu_launches_after.json").read_text())
    rows = ["| preset (recipe) | launches before → after | host syncs before → after | "
            "transfers (h2d + d2h) before → after | allocations before → after | budget |",
            "|---|---|---|---|---|---|"]
    budget = {"fast99": "≤ 60 (after: LeNet-5 + two batch norms)", "lenet5": "≤ 40", "compact": "≤ 60", "lab-best": "≤ 60", "readme-loop": "—"}
    for p in (*PRESETS, "readme-loop"):
        b, a = before[p]["ordinary"], after[p]["ordinary"]

        def pair(key, b=b, a=a):
            return f"{b[key]['max']:g} → **{a[key]['max']:g}**"

        tr = (f"{b['h2d']['max'] + b['d2h']['max']:g} → **{a['h2d']['max'] + a['d2h']['max']:g}**")
        rows.append(f"| {p} | {pair('launches')} | {pair('syncs')} | {tr} | {pair('allocs')} | {budget[p]} |")
    up = ["", "Host → device transfers in `Trainer.fit` over the epoch (the Trainer's construction, which "
          "uploads the training set and the weights, excluded): after, the warm-up and the epoch each "
          "upload the epoch's order (and, with augmentation, its maps) and the first evaluation the "
          "test set, which every later evaluation reuses:", "",
          "| preset | evaluations | h2d transfers before → after | h2d bytes before → after |", "|---|---|---|---|"]
    for p in PRESETS:
        b, a = before[p], after[p]
        up.append(f"| {p} | {a['evaluations']} | {b['run_h2d']} → **{a['run_h2d']}** | "
                  f"{b['run_h2d_bytes']:,} → **{a['run_h2d_bytes']:,}** |")
    text = "\n".join([
        "# Launched operations per GPU training step (counted by the CuPy stand-in)", "",
        "Produced by `FASTCNN_FAKE_CUPY=1 python benchmarks/gpu_launches.py measure --label after` and "
        "`python benchmarks/gpu_launches.py table` (before: the same script on the code before the "
        "lean GPU step). Per *ordinary* step (one that neither logs nor evaluates), the most over "
        "one epoch of 2,048 MNIST images at the preset's recipe (batch size, optimizer, label "
        "smoothing, augmentation, EMA); the README's loop: its model, Adam, batch 128, steps 3–12. "
        "A launch is one kernel or library call on the device (the stand-in's model: every "
        "element-wise operation, reduction, GEMM, copy, fill, gather, random draw, custom or "
        "numba-cuda kernel; views are free). *Before* is the code before the lean step (with the "
        "stand-in's counters and fixes: branch gpu-standin at 89c9264), counted the same way: under the stand-in without Numba's simulator its `auto` "
        "convolution ran the im2col/einsum algorithms (the 'cuda' algorithm's numba-cuda launches, "
        "each also a host synchronisation before numba-cuda 0.25, are not in those counts). The "
        "test asserting the budget: tests/gpu/test_launch_budget.py.", "", *rows, *up, ""])
    (out / "gpu_launches.md").write_text(text)
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("measure", "table"))
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    if a.what == "measure":
        measure(a.label, a.out)
    else:
        print(table(a.out))


if __name__ == "__main__":
    main()
