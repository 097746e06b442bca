"""Training throughput with one busy process beside it, and the inference/training ratio.

    python benchmarks/under_load.py load [--model lenet5] [--batch 128] [--rounds 5] [--steps 60] [--settle 0] [--out DIR]
    python benchmarks/under_load.py inference [--model fast99,lenet5] [--batch 128] [--rounds 5] [--out DIR]

``load``: the README's loop (forward, loss, backward, Adam) on MNIST batches, in one process,
in alternating blocks of ``--steps`` steps: alone, then with a busy process beside it (a Python
``while True`` loop started before the block and killed after it), three ways (``WAYS``): the
kernels split one share per thread on all threads (``launch.SPLIT = 1``, ``launch.ADAPT = False``:
session 5, every kernel waiting for its slowest thread); ``SPLIT`` shares a thread taken in turn,
all threads (session 6); and the same with each kernel timed on all threads and on one, running
the faster (``launch.Pace``, the default). ``--settle`` untimed steps start each block, so that
the blocks time the steady state a change of load leads to (the timed choice notices it within
``launch.PROBE_MAX`` calls of a kernel). On the 2-core machine one core of two is the fair share: the goal is that training keeps ≥ 50 %
of its unloaded throughput.

``inference``: eval-mode forward over the 10,000 test images (``inference.evaluate``, no TTA)
against the training throughput of the same preset in the same process, alternating blocks; the
evaluation runs as ``fastcnn evaluate`` does (``inference.predict_logits``: batch norms folded).

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


WAYS = (("1 share a thread, all threads (session 5)", 1, False),
        ("4 shares a thread taken in turn, all threads (session 6)", 4, False),
        ("4 shares a thread, all threads or one as timed (session 7)", 4, True))


def load(args) -> list:
    from fastcnn.kernels.cpu import launch

    data, y, model, loss_fn, opt = _setup(args.model, args.batch)
    default = launch.SPLIT, launch.ADAPT
    res = {(w, l): [] for w in range(len(WAYS)) for l in (False, True)}
    step = 0
    try:
        for r in range(args.rounds):
            for w, (_, split, adapt) in enumerate(WAYS):
                launch.SPLIT, launch.ADAPT = split, adapt
                for loaded in (False, True):
                    busy = _busy() if loaded else None
                    try:
                        if busy:
                            time.sleep(0.2)
                        # settle: the timed kernels notice the change within PROBE_MAX calls
                        _train_block(model, loss_fn, opt, data, y, args.batch, args.settle, step)
                        res[(w, loaded)].append(_train_block(model, loss_fn, opt, data, y, args.batch, args.steps,
                                                             step + args.settle))
                    finally:
                        if busy:
                            busy.kill()
                            busy.wait()
                    step += args.steps + args.settle
            print(f"round {r + 1}: " + ", ".join(f"way {w + 1} {'loaded' if l else 'alone'} {v[-1]:,.0f}"
                                                 for (w, l), v in res.items()), flush=True)
    finally:
        launch.SPLIT, launch.ADAPT = default
    rows = []
    for w, (name, _, _) in enumerate(WAYS):
        alone, loaded = res[(w, False)], res[(w, True)]
        kept = [b / a for a, b in zip(alone, loaded)]
        rows.append({"split": name, "alone": statistics.median(alone), "loaded": statistics.median(loaded),
                     "kept": statistics.median(kept), "kept_min": min(kept), "kept_max": max(kept)})
    return rows


def inference(args) -> list:
    from fastcnn import threads
    from fastcnn.inference import evaluate

    rows = []
    for name in args.model.split(","):  # one model after the other, each alternating its two measures
        data, y, model, loss_fn, opt = _setup(name, args.batch)
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
        rows.append({"model": name, "train": statistics.median(train), "inference": statistics.median(infer),
                     "ratio": statistics.median(ratio), "ratio_min": min(ratio), "ratio_max": max(ratio)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("load", "inference"))
    ap.add_argument("--model", default="lenet5", help="a preset; for inference, several separated by commas")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--settle", type=int, default=0, help="untimed steps at the start of each block (load)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args(argv)
    from fastcnn import tables
    from fastcnn.bench import machine

    command = "python benchmarks/under_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = machine.header_lines(machine.info()) + [f"reproduce: {command}"]
    if args.what == "load":
        rows = load(args)
        cols = [("split", "the kernels run", ""), ("alone", "samples/s alone", ",.0f"),
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
