"""The direct convolution kernels of a git revision against the working tree's, in one process.

    python benchmarks/kernels_ab.py [--base REV] [--batch 128] [--model readme|lenet5|compact] [--rounds 15] [--threads N]

``--base`` (default ``HEAD``) is exported from git (``git archive REV kernels``) into a temporary
folder and imported there under another package name; the working tree's kernels are fastcnn's
own. For each layer of the model, forward (conv + ReLU + 2×2 max-pool) and backward, both
versions run in turn (10 calls each, the order swapped every round) on the same inputs; the
results must agree (float32 tolerance) before anything is timed. Prints, per pass, the median
times and the median of the per-round ratios base/new with its quartiles. Nothing is written:
the figures go into benchmarks/README.md with the command.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHAPES = {  # (C, H = W, F, k, padding, stride, needs dx) of the two conv layers
    "readme": ((1, 28, 6, 5, 0, 1, False), (6, 12, 16, 5, 0, 1, True)),
    "lenet5": ((1, 28, 6, 5, 2, 1, False), (6, 14, 16, 5, 0, 1, True)),
    "compact": ((1, 28, 16, 3, 1, 2, False), (16, 7, 24, 6, 1, 1, True)),
}


def load_base(rev: str, folder: str):
    """kernels/ at ``rev`` as the package ``kernels_base`` (its own __pycache__ in ``folder``)."""
    blob = subprocess.run(["git", "-C", ROOT, "archive", rev, "kernels"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(folder)
    pkg = os.path.join(folder, "kernels")
    spec = importlib.util.spec_from_file_location("kernels_base", os.path.join(pkg, "__init__.py"),
                                                  submodule_search_locations=[pkg])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["kernels_base"] = mod
    spec.loader.exec_module(mod)
    return importlib.import_module("kernels_base.cpu.conv")


def passes(conv, shapes, batch, nt, rng_seed=0):
    """{name: callable} for each layer's forward and backward with ``conv``'s kernels."""
    rng = np.random.default_rng(rng_seed)
    out = {}
    for i, (c, hw, f, k, pad, st, need) in enumerate(shapes):
        xpad = rng.standard_normal((batch, c, hw + 2 * pad, hw + 2 * pad)).astype(np.float32)
        w2 = (rng.standard_normal((f, c * k * k)) * 0.2).astype(np.float32)
        b = (rng.standard_normal(f) * 0.1).astype(np.float32)
        oh = (hw + 2 * pad - k) // st + 1
        po = oh // 2
        y, arg = conv.conv_relu_maxpool_forward(xpad, w2, b, k, k, st, st, oh, oh, 2, 2, 2, 2, po, po, nt)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        out[f"conv{i + 1} forward"] = (lambda xpad=xpad, w2=w2, b=b, k=k, st=st, oh=oh, po=po:
                                       conv.conv_relu_maxpool_forward(xpad, w2, b, k, k, st, st, oh, oh, 2, 2, 2, 2,
                                                                      po, po, nt))
        out[f"conv{i + 1} backward"] = (lambda xpad=xpad, w2=w2, dy=dy, arg=arg, k=k, st=st, oh=oh, need=need:
                                        conv.conv_relu_maxpool_backward(xpad, w2, dy, arg, k, k, st, st, oh, oh, need,
                                                                        nt))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--model", choices=sorted(SHAPES), default="readme")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int)
    a = ap.parse_args(argv)
    import numba

    from fastcnn.kernels.cpu import conv as new, launch

    if a.threads:
        numba.set_num_threads(a.threads)
    launch.ADAPT = False  # all threads in both (the base may not have the timed choice)
    with tempfile.TemporaryDirectory() as folder:
        base = load_base(a.base, folder)
        nt = launch.shares(a.batch)
        fns = {"base": passes(base, SHAPES[a.model], a.batch, nt), "new": passes(new, SHAPES[a.model], a.batch, nt)}
        for name in fns["new"]:  # both return a tuple of arrays: (y, arg) or (dxpad, dW, db)
            for x, y in zip(fns["base"][name](), fns["new"][name]()):
                if x.dtype.kind == "f" and x.size > 1:
                    assert np.allclose(x, y, rtol=1e-4, atol=1e-4 * float(np.abs(x).max() or 1)), name

        def clock(fn, reps=10):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            return (time.perf_counter() - t0) / reps * 1e3

        times = {n: {"base": [], "new": []} for n in fns["new"]}
        for r in range(a.rounds):
            for name in times:
                for who in (("base", "new") if r % 2 == 0 else ("new", "base")):
                    times[name][who].append(clock(fns[who][name]))
    print(f"{a.model} shapes, batch {a.batch}, {numba.get_num_threads()} threads, {a.rounds} rounds; base {a.base}")
    total = {"base": 0.0, "new": 0.0}
    for name, t in times.items():
        ratio = [b / n for b, n in zip(t["base"], t["new"])]
        q = statistics.quantiles(ratio, n=4)
        mb, mn = statistics.median(t["base"]), statistics.median(t["new"])
        total["base"] += mb
        total["new"] += mn
        print(f"  {name:14s} base {mb:6.3f} ms  new {mn:6.3f} ms  base/new {statistics.median(ratio):.2f} "
              f"(quartiles {q[0]:.2f}-{q[2]:.2f})")
    print(f"  all passes     base {total['base']:6.3f} ms  new {total['new']:6.3f} ms  -> {total['base'] / total['new']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
