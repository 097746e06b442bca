"""`fastcnn bench conv`: every registered conv and pool algorithm on every layer shape of the presets.

Conventions (also printed under the Markdown table):
- times: forward, backward and total (forward + backward) milliseconds, the median of
  the repeated runs after a first call; the device is synchronised before each clock reading;
- compile s: the first call's forward + backward minus the median total — Numba's JIT
  compilation (and first-touch allocation) for the numba/cuda paths, ≈ 0 for the others;
- backward computes dx as well as dW and db (need_dx=True), for every layer;
- conv FLOPs: forward 2·N·F·oh·ow·C·kh·kw (a multiply and an add per weight per output),
  backward twice that (dW and dx); GFLOP/s = (forward + backward FLOPs) / total time;
  pooling has no GFLOP/s;
- naive is timed on a small batch first; when that, scaled linearly, predicts at most 1 s
  per forward + backward it is timed again at the full batch (the naive loops run over
  output positions with the batch vectorised, so its time is far from linear in the batch
  and linear scaling would overstate it several times), else its small-batch times are
  scaled linearly to the full batch and the row says "scaled from batch n";
- speed-up: naive's (scaled) total time / this algorithm's total time;
- extra memory: the column (im2col) buffer an algorithm builds, computed from the shape,
  not measured: N·C·kh·kw·oh·ow·itemsize for im2col-like paths (capped by the module's
  MAX_COLS_BYTES chunk bound when it has one), 0 for the others; an algorithm module
  may define ``workspace_bytes(x_shape, w_shape, stride, padding, itemsize)`` to say its own;
- your own algorithms (``--algo PATH.py:NAME``, named file.py:NAME) are first compared with naive
  on each layer's shape (float64, batch 2, y, dx, dW, db within a relative error of 1e-6) and timed
  only when they agree, as naive is timed (small batch first); their extra memory is not known (0).
"""
from __future__ import annotations

import sys

import numpy as np

from .. import models, timing
from ..conv import CONV
from ..geometry import out_size
from ..pool import POOL
from ..nn import Conv2D
from ..nn.pool import _Pool2D

PRESETS = ("lenet5", "compact")
#: Algorithms that build the column matrix, when their module does not say otherwise.
IM2COL_LIKE = {"im2col", "numba", "cuda"}


def layer_shapes(preset: str):
    """(label, layer) for every conv and pool layer of ``preset``, with its per-sample input shape.

    Yields dicts: model, layer (e.g. "conv1"), kind ("conv" | "pool"), layer object, in_shape (C, H, W).
    """
    model = models.build(preset)
    shapes = [model.input_shape] + model.shapes(model.input_shape)
    counts = {"conv": 0, "pool": 0}
    for layer, in_shape in zip(model.layers, shapes):
        kind = "conv" if isinstance(layer, Conv2D) else "pool" if isinstance(layer, _Pool2D) else None
        if kind:
            counts[kind] += 1
            yield {"model": preset, "layer": f"{kind}{counts[kind]}", "kind": kind, "obj": layer,
                   "in_shape": tuple(in_shape)}


def describe(spec) -> str:
    """"conv 16@5×5 s1 p0" or "maxpool 2×2 s2 p0"."""
    l = spec["obj"]
    (kh, kw), (sh, _), (ph, _) = l.kernel_size, l.stride, l.padding
    if spec["kind"] == "conv":
        return f"conv {l.out_channels}@{kh}×{kw} s{sh} p{ph}"
    return f"{l.mode}pool {kh}×{kw} s{sh} p{ph}"


def conv_flops(n, spec) -> int:
    """Forward FLOPs 2·N·F·oh·ow·C·kh·kw of a conv layer at batch ``n``."""
    l = spec["obj"]
    c, h, w = spec["in_shape"]
    (kh, kw), (sh, sw), (ph, pw) = l.kernel_size, l.stride, l.padding
    return 2 * n * l.out_channels * out_size(h, kh, sh, ph) * out_size(w, kw, sw, pw) * c * kh * kw


def extra_bytes(algo, spec, n, itemsize) -> int:
    """The column buffer ``algo`` builds for this layer at batch ``n`` (see the module docstring)."""
    if spec["kind"] != "conv":
        return 0
    l = spec["obj"]
    c, h, w = spec["in_shape"]
    (kh, kw), (sh, sw), (ph, pw) = l.kernel_size, l.stride, l.padding
    mod = sys.modules.get(getattr(algo.forward, "__module__", ""), None)
    if hasattr(mod, "workspace_bytes"):
        return int(mod.workspace_bytes((n, c, h, w), (l.out_channels, c, kh, kw), l.stride, l.padding, itemsize))
    if algo.name not in IM2COL_LIKE:
        return 0
    row = c * kh * kw * out_size(h, kh, sh, ph) * out_size(w, kw, sw, pw) * itemsize
    cap = getattr(mod, "MAX_COLS_BYTES", None)
    rows = n if cap is None else max(1, min(n, cap // row))
    return rows * row


def _passes(algo, spec, n, xp, dtype):
    """Two closures, forward() -> state and backward(state), on random inputs of batch ``n``."""
    rng = np.random.default_rng(0)
    l = spec["obj"]
    x = xp.asarray(rng.standard_normal((n,) + spec["in_shape"]).astype(dtype))
    if spec["kind"] == "conv":
        w = xp.asarray(l.weight.data.astype(dtype))
        b = xp.asarray(l.bias.data.astype(dtype))

        def fwd():
            return algo.forward(x, w, b, l.stride, l.padding)

        def bwd(state):
            algo.backward(dy, state[1], True)
    else:
        geo = (l.kernel_size, l.stride, l.padding, l.mode)

        def fwd():
            return algo.forward(x, *geo)

        def bwd(state):
            algo.backward(dy, state[1])
    y_shape = (n,) + tuple(l.output_shape(spec["in_shape"]))  # not fwd(): its first call is timed
    dy = xp.asarray(rng.standard_normal(y_shape).astype(dtype))
    return fwd, bwd


def time_passes(fwd, bwd, xp, repeats: int) -> dict:
    """First-call seconds and median forward/backward milliseconds over ``repeats`` runs."""
    first = timing.seconds(lambda: bwd(fwd()), xp=xp)[1]
    tf, tb = [], []
    for _ in range(repeats):
        state, t = timing.seconds(fwd, xp=xp)
        tf.append(t)
        tb.append(timing.seconds(bwd, state, xp=xp)[1])
    f, b = timing.median(tf) * 1e3, timing.median(tb) * 1e3
    return {"first_s": first, "fwd_ms": f, "bwd_ms": b}


def run(xp, batch=128, naive_batch=8, repeats=7, naive_repeats=3, naive_full_ms=1000.0, dtype=np.float32,
        log=print, extra=()) -> list:
    """One row per (layer shape, available algorithm) of both presets; see the module docstring.

    Naive is first timed at ``naive_batch``; when that, scaled linearly to ``batch``, is at most
    ``naive_full_ms`` per forward + backward, it is timed again at the full batch (no scaling);
    ``naive_full_ms=0`` always scales. ``extra``: the user's own algorithms (``fastcnn.check.resolve``
    targets, ``bench conv --algo``), each checked against naive on the layer's shape first
    (``fastcnn.check.agreement``): one that disagrees gets a row saying so and is not timed;
    one that agrees is timed as naive is (it may be as slow).
    """
    from ..check import TOL, agreement

    itemsize = np.dtype(dtype).itemsize
    rows = []
    for preset in PRESETS:
        for spec in layer_shapes(preset):
            table = CONV if spec["kind"] == "conv" else POOL
            naive_total = None
            candidates = [(a, a.name == "naive", None) for a in table.values() if a.available(xp)]
            candidates += [(t["algo"], True, t) for t in extra if t["kind"] == spec["kind"] and xp is np]
            for algo, slow, user in candidates:
                base = {"model": preset, "layer": spec["layer"], "op": describe(spec),
                        "input": "×".join(map(str, (batch,) + spec["in_shape"])), "algo": algo.name}
                if user is not None:
                    errs = agreement(user, spec["in_shape"], _geometry(spec))
                    off = {k: e for k, e in errs.items() if k == "error" or not e < TOL}
                    if off:
                        why = off.get("error") or ", ".join(f"{k} rel. error {e:.1e}" for k, e in off.items())
                        rows.append({**base, "batch_timed": None, "fwd_ms": None, "bwd_ms": None, "total_ms": None,
                                     "compile_s": None, "gflops": None, "speedup": None, "extra_bytes": None,
                                     "note": f"disagrees with naive ({why}): not timed; run fastcnn check "
                                             f"{user['path'].name}:{user['name']}"})
                        log(f"  {preset} {spec['layer']:<6} {algo.name:<11} disagrees with naive ({why}): not timed")
                        continue
                n = naive_batch if slow else batch
                fwd, bwd = _passes(algo, spec, n, xp, dtype)
                t = time_passes(fwd, bwd, xp, naive_repeats if slow else repeats)
                if slow and n < batch and (t["fwd_ms"] + t["bwd_ms"]) * batch / n <= naive_full_ms:
                    n = batch  # cheap enough: measure the full batch instead of scaling
                    fwd, bwd = _passes(algo, spec, n, xp, dtype)
                    t = time_passes(fwd, bwd, xp, naive_repeats)
                scale = batch / n
                f, b = t["fwd_ms"] * scale, t["bwd_ms"] * scale
                total = f + b
                note = f"scaled from batch {n}" if n != batch else ""
                if user is not None:
                    note = "; ".join(filter(None, ["yours, agrees with naive", note]))
                row = {**base, "batch_timed": n, "fwd_ms": f, "bwd_ms": b, "total_ms": total,
                       "compile_s": max(0.0, t["first_s"] - (t["fwd_ms"] + t["bwd_ms"]) / 1e3),
                       "gflops": None, "speedup": None,
                       "extra_bytes": 0 if user is not None else extra_bytes(algo, spec, batch, itemsize),
                       "note": note}
                if spec["kind"] == "conv":
                    row["gflops"] = 3 * conv_flops(batch, spec) / (total / 1e3) / 1e9
                if algo.name == "naive":
                    naive_total = total
                rows.append(row)
                log(f"  {preset} {spec['layer']:<6} {algo.name:<11} total {total:9.3f} ms"
                    + (f" ({row['note']})" if row["note"] else ""))
            for r in rows:
                if r["model"] == preset and r["layer"] == spec["layer"] and naive_total and r["total_ms"]:
                    r["speedup"] = naive_total / r["total_ms"]
    return rows


def _geometry(spec) -> tuple:
    """The layer's geometry as ``fastcnn.check.agreement`` takes it."""
    l = spec["obj"]
    if spec["kind"] == "conv":
        return (tuple(l.weight.data.shape), l.stride, l.padding)
    return (l.kernel_size, l.stride, l.padding, l.mode)


COLUMNS = [
    ("model", "model", ""), ("layer", "layer", ""), ("op", "op", ""), ("input", "input N×C×H×W", ""),
    ("algo", "algo", ""), ("fwd_ms", "fwd ms", ".3f"), ("bwd_ms", "bwd ms", ".3f"),
    ("total_ms", "total ms", ".3f"), ("compile_s", "compile s", ".2f"), ("gflops", "GFLOP/s", ".2f"),
    ("speedup", "× naive", ".1f"), ("extra_bytes", "extra MiB", lambda v: f"{v / 2**20:.2f}"),
    ("note", "note", ""),
]
CSV_COLUMNS = [(k, t, f) for k, t, f in COLUMNS] + [("batch_timed", "batch timed", "")]


def notes() -> list:
    """The conventions of the module docstring, one Markdown bullet each."""
    items = []
    for line in __doc__.split("Conventions", 1)[1].splitlines()[1:]:
        line = line.strip()
        if line.startswith("- "):
            items.append(line.replace("``", "`"))
        elif line and items:
            items[-1] += " " + line.replace("``", "`")
    return items
