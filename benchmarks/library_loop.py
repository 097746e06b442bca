"""The README's library loop against PyTorch's plain loop — what a user who writes a loop gets.

    python benchmarks/library_loop.py compare [--models lenet5:32,lenet5:128,lenet5:256,compact:64]
                                              [--runs 3] [--steps 60] [--threads 2] [--out DIR]
    python benchmarks/library_loop.py inprocess [--models ...] [--rounds 5] [--steps 40]
    python benchmarks/library_loop.py run --framework fastcnn|torch --model lenet5 --batch 128

``run`` is one fresh process that does what the README's "As a library" section does —
``import numpy``, build the Sequential, ``for xb, yb in BatchIterator(...)``: forward, loss,
backward, ``opt.step()`` — with no extra call and no environment variable, or PyTorch's plain
loop on the same batches (torch.from_numpy, zero_grad, cross_entropy, backward, step; the
same initial weights, Adam lr 1e-3). It skips ``--warmup`` steps (Numba compilation, the
automatic choices) and prints the samples/s of the next ``--steps`` steps as JSON.
``compare`` alternates such processes (fastcnn, torch, fastcnn, torch, ...; each framework
in its own process, ``--threads`` for both: torch.set_num_threads in torch's process, and
fastcnn's default, all cores, which is the same number on the 2-core machine).
``inprocess`` runs both loops in one process, alternating single steps (a notebook comparing
the two), plus ``fastcnn.step.train_step`` — the Trainer's step — to check the plain loop
is as fast as the Trainer's own step. Results: RESULTS/library_loop.md and .csv.
torch is imported here only, never in fastcnn/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def readme_model(name):
    """The README's lenet5 Sequential, written as the README writes it; other presets by name."""
    from fastcnn import models, nn

    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2D(1, 6, 5), nn.ReLU(), nn.MaxPool2D(2),
            nn.Conv2D(6, 16, 5), nn.ReLU(), nn.MaxPool2D(2),
            nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 10),
            seed=0, input_shape=(1, 28, 28))
    return models.build(name, seed=0)


def fastcnn_loop(model_name, batch, data, y, use_train_step=False):
    """The README's loop as a generator of per-step seconds; with ``use_train_step`` the same
    loop calls ``fastcnn.step.train_step`` (the Trainer's step) instead."""
    from fastcnn import nn, optim
    from fastcnn.data import BatchIterator
    from fastcnn.step import train_step

    model = readme_model(model_name)
    loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=1e-3)
    while True:
        for xb, yb in BatchIterator(data.x_train, y, batch):
            t0 = time.perf_counter()
            if use_train_step:
                train_step(model, loss_fn, opt, xb, yb)
            else:
                loss = loss_fn(model.forward(xb), yb)
                model.backward(loss_fn.backward())
                opt.step()
            yield time.perf_counter() - t0


def torch_loop(model_name, batch, data, y, torch):
    """PyTorch's plain loop over the same batches, from the same initial weights."""
    sys.path.insert(0, HERE)
    from vs_torch import torch_copy

    from fastcnn.data import BatchIterator

    model = torch_copy(readme_model(model_name), torch).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    f = torch.nn.functional
    while True:
        for xb, yb in BatchIterator(data.x_train, y, batch):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = f.cross_entropy(model(torch.from_numpy(xb)), torch.from_numpy(yb))
            loss.backward()
            opt.step()
            yield time.perf_counter() - t0


def _data():
    import numpy as np

    from fastcnn.data import load_mnist

    data = load_mnist()
    return data, data.y_train.astype(np.int64)


def cmd_run(a) -> int:
    """One fresh process, one framework: samples/s after the warm-up."""
    import numpy as np  # noqa: F401  (the user imported numpy first)

    if a.framework == "torch":
        import torch
        torch.set_num_threads(a.threads)
        loop = torch_loop(a.model, a.batch, *_data(), torch)
    else:
        loop = fastcnn_loop(a.model, a.batch, *_data())
    for _ in range(a.warmup):
        next(loop)
    t = sum(next(loop) for _ in range(a.steps))
    print(json.dumps({"framework": a.framework, "model": a.model, "batch": a.batch, "steps": a.steps,
                      "samples_per_s": a.steps * a.batch / t}))
    return 0


def _specs(text):
    out = []
    for item in text.split(","):
        m, b = item.split(":")
        out.append((m, int(b)))
    return out


def cmd_compare(a) -> list:
    rows = []
    for model, batch in _specs(a.models):
        sps = {"fastcnn": [], "torch": []}
        for r in range(a.runs):
            for fw in (("fastcnn", "torch") if r % 2 == 0 else ("torch", "fastcnn")):
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "run", "--framework", fw,
                                      "--model", model, "--batch", str(batch), "--steps", str(a.steps),
                                      "--warmup", str(a.warmup), "--threads", str(a.threads)],
                                     capture_output=True, text=True, check=True)
                sps[fw].append(json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"])
            ratio = sps["fastcnn"][-1] / sps["torch"][-1]
            print(f"  {model} b{batch} run {r + 1}: fastcnn {sps['fastcnn'][-1]:,.0f}/s  "
                  f"torch {sps['torch'][-1]:,.0f}/s  ratio {ratio:.2f}", flush=True)
        ratios = [f / t for f, t in zip(sps["fastcnn"], sps["torch"])]
        rows.append({"mode": "own processes", "model": model, "batch": batch, "runs": a.runs,
                     "fastcnn_sps": statistics.median(sps["fastcnn"]), "torch_sps": statistics.median(sps["torch"]),
                     "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)})
    return rows


def cmd_inprocess(a) -> list:
    import torch

    torch.set_num_threads(a.threads)
    data, y = _data()
    rows = []
    for model, batch in _specs(a.models):
        loops = {"fastcnn": fastcnn_loop(model, batch, data, y), "torch": torch_loop(model, batch, data, y, torch),
                 "train_step": fastcnn_loop(model, batch, data, y, use_train_step=True)}
        for loop in loops.values():
            for _ in range(a.warmup):
                next(loop)
        per = {k: [] for k in loops}
        for r in range(a.rounds):
            t = {k: 0.0 for k in loops}
            for i in range(a.steps):  # alternating single steps
                order = list(loops) if i % 2 == 0 else list(loops)[::-1]
                for k in order:
                    t[k] += next(loops[k])
            for k in loops:
                per[k].append(a.steps * batch / t[k])
            print(f"  {model} b{batch} round {r + 1}: " + "  ".join(f"{k} {per[k][-1]:,.0f}/s" for k in loops),
                  flush=True)
        ratios = [f / t for f, t in zip(per["fastcnn"], per["torch"])]
        vs_step = [f / s for f, s in zip(per["fastcnn"], per["train_step"])]
        rows.append({"mode": "one process, alternating steps", "model": model, "batch": batch, "runs": a.rounds,
                     "fastcnn_sps": statistics.median(per["fastcnn"]), "torch_sps": statistics.median(per["torch"]),
                     "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                     "loop_vs_train_step": statistics.median(vs_step)})
    return rows


COLUMNS = [("mode", "mode", ""), ("model", "model", ""), ("batch", "batch", "d"), ("runs", "runs", "d"),
           ("fastcnn_sps", "README loop samples/s", ",.0f"), ("torch_sps", "torch loop samples/s", ",.0f"),
           ("ratio", "fastcnn/torch", ".2f"), ("ratio_min", "min", ".2f"), ("ratio_max", "max", ".2f"),
           ("loop_vs_train_step", "loop / train_step", ".2f")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "compare", "inprocess"):
        p = sub.add_parser(name)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--steps", type=int, default=60)
        p.add_argument("--warmup", type=int, default=15)
        if name == "run":
            p.add_argument("--framework", choices=["fastcnn", "torch"], required=True)
            p.add_argument("--model", default="lenet5")
            p.add_argument("--batch", type=int, default=128)
        else:
            p.add_argument("--models", default="lenet5:32,lenet5:128,lenet5:256,compact:64")
            p.add_argument("--runs", type=int, default=3)
            p.add_argument("--rounds", type=int, default=5)
            p.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args(argv)
    if a.cmd == "run":
        return cmd_run(a)
    rows = cmd_compare(a) if a.cmd == "compare" else cmd_inprocess(a)
    from pathlib import Path

    from fastcnn import tables
    from fastcnn.bench import machine

    header = machine.header_lines(machine.info(a.threads))
    title = f"The README's library loop vs PyTorch's plain loop ({a.cmd})"
    notes = ["- command: python benchmarks/library_loop.py " + " ".join(sys.argv[1:] if argv is None else argv),
             "- samples/s of the steps after the warm-up; fastcnn/torch: median of the per-run ratios, min–max."]
    print(tables.text(COLUMNS, rows, title))
    out = Path(a.out)
    name = f"library_loop_{a.cmd}"
    tables.write_text(out / f"{name}.md", tables.markdown(COLUMNS, rows, title, header, notes))
    tables.write_text(out / f"{name}.csv", tables.csv_text(COLUMNS, rows, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
