"""``fastcnn check PATH.py:NAME``: check a user's own layer or convolution/pooling algorithm.

A **layer** (a ``fastcnn.nn.Layer`` subclass, built with ``args`` or its defaults; variants with
stride 2 and padding 1 when its constructor takes them and ``args`` leaves them open): one
float32 pass checks the Layer contract (dtypes and shapes of y, dx and every .grad), then on
float64 inputs without ties (batch 1 and 3, several channels, non-square) dx and every
parameter gradient are compared with central differences of Σ forward(x)·g.

An **algorithm** (an object or module with ``forward`` and ``backward`` following
``fastcnn.registry``'s contract): y, dx, dW, db are compared with fastcnn's naive reference on
float64 cases (batch 1, several channels, stride, padding, non-square, a rectangular kernel,
no bias), and dx, dW, db with central differences of the algorithm's own forward; max-pooling
also on an input with ties (fastcnn's rule: the first maximum of a window, row-major).

    report = run("mylayers.py:AvgPool", args={"kernel_size": 2})
    print(format_report(report)); report["ok"]

A failure comes with a diagnosis: which quantity is off, by which factor when it is a
constant one, and the usual causes (a kernel not rotated 180° in dx, dy not dilated by the
stride, a missing 1/N, the max-pool tie rule, the padding not cropped).
"""
from __future__ import annotations

import numpy as np

from .. import tables
from .cases import TOL, conv_checks, layer_checks, pool_checks, agreement, no_ties
from .diagnose import diagnose
from .target import parse_args, resolve

__all__ = ["run", "format_report", "resolve", "agreement", "parse_args", "parse_shape", "no_ties", "TOL"]

COLUMNS = [("case", "case", ""), ("quantity", "quantity", ""), ("against", "against", ""),
           ("error", "rel. error", lambda v: f"{v:.1e}"), ("result", "result", "")]


def parse_shape(text):
    """``--input-shape``: "5" or "3,8,8" (per sample, no batch axis) -> a tuple of ints ≥ 1."""
    if text is None or isinstance(text, tuple):
        return text
    try:
        shape = tuple(int(v) for v in str(text).replace("×", ",").replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ValueError(f"--input-shape takes the per-sample shape as integers ≥ 1, e.g. 5 or 3,8,8; got {text!r}")
    return shape


def run(spec: str, args=None, kind=None, modes=("max", "avg"), input_shape=None) -> dict:
    """Check ``spec`` (PATH.py:NAME). Returns {"target", "rows", "diagnosis", "notes", "ok"};
    raises UserCodeError (exit code 2) when the file or its API is unusable. ``input_shape``: a
    layer's per-sample input shape (default: chosen from its attributes, see _layer_shapes)."""
    input_shape = parse_shape(input_shape)
    target, notes = resolve(spec, args, kind)
    rows = []
    with np.errstate(all="ignore"):
        if target["kind"] == "layer":
            layer_checks(target, rows, notes, input_shape)
        elif target["kind"] == "conv":
            conv_checks(target, rows, notes)
        else:
            pool_checks(target, rows, notes, modes)
    return {"target": target, "rows": rows, "diagnosis": diagnose(rows, target["kind"]), "notes": notes,
            "ok": all(r["result"] == "pass" for r in rows)}


def title(report) -> str:
    t = report["target"]
    what = {"layer": "layer", "conv": "convolution algorithm", "pool": "pooling algorithm"}[t["kind"]]
    built = f" built as {t['built']}" if t.get("built") else ""
    return f"{t['path']}:{t['name']}: {what}{built}, float64"


def format_report(report) -> str:
    """The table, the notes, the diagnosis of any failure and a verdict line."""
    rows = report["rows"]
    out = [tables.text(COLUMNS, rows, title(report))]
    out += [f"note: {n}" for n in report["notes"]]
    bad = [r for r in rows if r["result"] != "pass"]
    if bad:
        out.append("\ndiagnosis:")
        out += [f"- {d}" for d in report["diagnosis"]]
        out.append(f"\n{len(bad)} of {len(rows)} checks FAIL (relative error ≥ {TOL:g})")
    else:
        out.append(f"\nall {len(rows)} checks pass (relative error < {TOL:g})")
    return "\n".join(out)
