"""Training throughput with one busy process beside it, and the inference/training ratio.

    python benchmarks/under_load.py load [--model lenet5] [--batch 128] [--rounds 5] [--steps 60] [--out DIR]
    python benchmarks/under_load.py inference [--model lenet5] [--batch 128] [--rounds 5] [--out DIR]

``load``: the README's loop (forward, loss, backward, Adam) on MNIST batches, in one process,
in alternating blocks of ``--steps`` steps: alone, then with a busy process beside it (a Python
``while True`` loop started before the block and killed after it), once with the kernels split
one share per thread (``launch.SPLIT = 1``: the fixed split fastcnn had, every kernel waiting for
its slowest thread) and once with the default split (``SPLIT`` shares a thread, taken in turn).
On the 2-core machine one core of two is the fair share: the goal is that training keeps ≥ 50 %
of its unloaded throughput.

``inference``: eval-mode forward over the 10,000 test images (``inference.evaluate``, no TTA)
against the training throughput of the same preset in the same process, alternating blocks.

Writes RESULTS/under_load.md|csv or RESULTS/inference.md|csv (medians and spread over the rounds).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _train_block(model, loss_fn, opt, data, y, batch, steps, start) -> float:
    """samples/s of ``steps`` README-loop steps from batch ``start`` on."""
    import numpy as np

    from fastcnn import threads
    from fastcnn.data import normalize

    n = len(y)
    t0 = time.perf_counter()
    with threads.compute():
        for i in range(steps):
            s = ((start + i) * batch) % (n - batch)
            xb = normalize(data.x_train[s:s + batch], np, np.float32)
            loss_fn.forward(model.forward(xb), y[s:s + batch])
            model.backward(loss_fn.backward())
            opt.step()
    return steps * batch / (time.perf_counter() - t0)


def _busy():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _setup(name, batch):
    import numpy as np

    from fastcnn import models, nn, optim
    from fastcnn.data import load_mnist

    data = load_mnist()
    y = data.y_train.astype(np.int64)
    model = models.build(name, seed=0)
    loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=1e-3)
    _train_block(model, loss_fn, opt, data, y, batch, 10, 0)  # compile, choose
    return data, y, model, loss_fn, opt


def load(args) -> list:
    from fastcnn.kernels.cpu import launch

    data, y, model, loss_fn, opt = _setup(args.model, args.batch)
    default = launch.SPLIT
    res = {(s, l): [] for s in (1, default) for l in (False, True)}
    step = 0
    for r in range(args.rounds):
        for split in (1, default):
            launch.SPLIT = split
            for loaded in (False, True):
                busy = _busy() if loaded else None
                try:
                    if busy:
                        time.sleep(0.2)
                    res[(split, loaded)].append(_train_block(model, loss_fn, opt, data, y, args.batch, args.steps, step))
                finally:
                    if busy:
                        busy.kill()
                        busy.wait()
                step += args.steps
        print(f"round {r + 1}: " + ", ".join(f"split {s} {'loaded' if l else 'alone'} {v[-1]:,.0f}"
                                             for (s, l), v in res.items()), flush=True)
    launch.SPLIT = default
    rows = []
    for split in (1, default):
        alone, loaded = res[(split, False)], res[(split, True)]
        kept = [b / a for a, b in zip(alone, loaded)]
        rows.append({"split": f"{split} share{'s' if split > 1 else ''} a thread" + (" (before)" if split == 1 else ""),
                     "alone": statistics.median(alone), "loaded": statistics.median(loaded),
                     "kept": statistics.median(kept), "kept_min": min(kept), "kept_max": max(kept)})
    return rows


def inference(args) -> list:
    from fastcnn import threads
    from fastcnn.inference import evaluate

    data, y, model, loss_fn, opt = _setup(args.model, args.batch)
    train, infer = [], []
    step = 0
    for _ in range(args.rounds):
        train.append(_train_block(model, loss_fn, opt, data, y, args.batch, args.steps, step))
        step += args.steps
        t0 = time.perf_counter()
        with threads.compute():
            evaluate(model, data.x_test, data.y_test)
        infer.append(len(data.y_test) / (time.perf_counter() - t0))
        model.train()
    ratio = [b / a for a, b in zip(train, infer)]
    return [{"model": args.model, "train": statistics.median(train), "inference": statistics.median(infer),
             "ratio": statistics.median(ratio), "ratio_min": min(ratio), "ratio_max": max(ratio)}]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("load", "inference"))
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args(argv)
    from fastcnn import tables
    from fastcnn.bench import machine

    command = "python benchmarks/under_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = machine.header_lines(machine.info()) + [f"reproduce: {command}"]
    if args.what == "load":
        rows = load(args)
        cols = [("split", "kernels split into", ""), ("alone", "samples/s alone", ",.0f"),
                ("loaded", "samples/s beside a busy process", ",.0f"), ("kept", "kept (median)", ".0%"),
                ("kept_min", "min", ".0%"), ("kept_max", "max", ".0%")]
        title = f"{args.model} batch {args.batch}: throughput beside one busy process ({args.rounds} rounds)"
        name = "under_load"
    else:
        rows = inference(args)
        cols = [("model", "model", ""), ("train", "training samples/s", ",.0f"),
                ("inference", "inference images/s", ",.0f"), ("ratio", "ratio (median)", ".2f"),
                ("ratio_min", "min", ".2f"), ("ratio_max", "max", ".2f")]
        title = f"{args.model}: eval-mode forward vs training (batch {args.batch}), {args.rounds} rounds"
        name = "inference"
    print(tables.text(cols, rows, title))
    tables.write_text(os.path.join(args.out, f"{name}.md"), tables.markdown(cols, rows, title, header=header))
    tables.write_text(os.path.join(args.out, f"{name}.csv"), tables.csv_text(cols, rows, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
