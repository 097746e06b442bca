"""``fastcnn report RUN RUN ...``: one self-contained HTML page comparing several runs.

A table, one row per run (model, parameters and the lab's budget, test accuracy, time to 97 %
and to 99 %, training time, epochs, status, features), then the runs' curves overlaid (test
accuracy against seconds of training and against epochs, test loss), the PNG embedded as a
base64 data URI. Read from each run directory's config.json, metrics.json and history.json:
nothing is evaluated again, so comparing is instant. The table is also written as
``NAME.csv`` and ``NAME.md`` beside the page (fastcnn.tables); every file atomically.
"""
from __future__ import annotations

import html
from pathlib import Path

from .. import files, models, rundir, tables
from . import plots
from .report import CSS, _img, features_text

COLUMNS = [
    ("run", "run", ""), ("model", "model", ""), ("params", "parameters", ",d"),
    ("budget", "lab budget", ""), ("test_accuracy", "test accuracy", ".4f"),
    ("best_accuracy", "best accuracy", ".4f"),
    ("s_to_97", "time to 97 % (s)", ".2f"), ("s_to_99", "time to 99 % (s)", ".2f"),
    ("train_seconds", "training time (s)", ".1f"), ("epochs", "epochs", ".2f"), ("status", "status", ""),
    ("features", "features", ""),
]


def model_label(name) -> str:
    """A preset's name, or ``mynet.py:net`` for the user's own network."""
    name = str(name)
    return models.user.short_name(name) if models.user.is_spec(name) else name


def run_row(run_dir, label: str) -> dict:
    """The table row of one run directory (a FileNotFoundError when it is not one)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"no such run directory: {run}")
    cfg = rundir.read_json(run / "config.json")
    if cfg is None:
        raise FileNotFoundError(f"{run} is not a fastcnn run directory: it has no config.json (written by fastcnn train)")
    fin = rundir.read_json(run / "metrics.json", {}) or {}
    history = rundir.read_json(run / "history.json", []) or []
    last = history[-1] if history else {}
    ms = fin.get("milestones") or {}
    params = fin.get("params")
    return {
        "run": label, "model": model_label(fin.get("model", cfg.get("model"))), "params": params,
        "budget": None if params is None else ("fits" if params <= models.LAB_BUDGET else "over"),
        "test_accuracy": fin.get("test_accuracy", last.get("test_accuracy")),
        "best_accuracy": fin.get("best_accuracy"),
        "s_to_97": (ms.get("0.97") or {}).get("train_seconds"),
        "s_to_99": (ms.get("0.99") or {}).get("train_seconds"),
        "train_seconds": fin.get("train_seconds", last.get("train_seconds")),
        "epochs": fin.get("epochs", last.get("epoch")),
        "status": fin.get("status", "no metrics.json (unfinished?)"),
        "features": features_text(fin) if fin.get("features") else None,
        "_history": history, "_path": str(run),
    }


def labels(run_dirs) -> list:
    """Short distinct names: each run directory's name, with parent folders added where two clash."""
    paths = [Path(p).resolve() for p in run_dirs]
    depth = [1] * len(paths)
    while True:
        names = ["/".join(p.parts[-d:]) for p, d in zip(paths, depth)]
        clash = {n for n in names if names.count(n) > 1}
        if not clash:
            return names
        grown = False
        for i, n in enumerate(names):
            if n in clash and depth[i] < len(paths[i].parts):
                depth[i] += 1
                grown = True
        if not grown:  # the same directory named twice
            return [f"{n} ({i + 1})" if n in clash else n for i, n in enumerate(names)]


def build_comparison(run_dirs, out="comparison.html") -> Path:
    """Write the comparison page of ``run_dirs`` to ``out`` (and ``out`` with .csv and .md, its
    table; the curves' PNG in ``out``'s folder as NAME_curves.png); returns the page's path."""
    run_dirs = list(run_dirs)
    if len(run_dirs) < 2:
        raise ValueError("a comparison needs at least two run directories")
    plots.require_matplotlib()
    out = Path(out)
    if out.suffix != ".html":
        raise ValueError(f"--out names the comparison page, an .html file; got {out}")
    rows = [run_row(r, lab) for r, lab in zip(run_dirs, labels(run_dirs))]
    png = plots.compared_curves({f"{r['run']} ({r['model']})": r["_history"] for r in rows},
                                out.with_name(out.stem + "_curves.png"))
    title = f"fastcnn: {len(rows)} runs compared"
    best = max((r for r in rows if r["test_accuracy"] is not None), key=lambda r: r["test_accuracy"], default=None)
    fastest = min((r for r in rows if r["s_to_97"] is not None), key=lambda r: r["s_to_97"], default=None)
    lead = []
    if best:
        lead.append(f"most accurate: <b>{html.escape(best['run'])}</b> ({html.escape(best['model'])}), "
                    f"test accuracy {best['test_accuracy']:.4f}")
    if fastest:
        lead.append(f"first to 97 %: <b>{html.escape(fastest['run'])}</b> after {fastest['s_to_97']:.2f} s "
                    "of training")
    table = _html_table(rows)
    notes = ["- time to 97 % / 99 %: seconds of training when the test (or validation) accuracy was first seen "
             "at that level (evaluations only happen every few steps, so an upper bound); — : never reached.",
             f"- lab budget: the lab's {models.LAB_BUDGET:,} parameters (9·9·20 + 2000·100 + 100·10)."]
    tables.write_table(out.parent, out.stem, COLUMNS, rows, title, (), notes)
    where = "".join(f"<li>{html.escape(r['run'])}: {html.escape(r['_path'])}</li>" for r in rows)
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            + (f"<p class='big'>{'<br>'.join(lead)}</p>" if lead else "")
            + "<h2>The runs</h2>" + table + "".join(f"<p class='sub'>{html.escape(n[2:])}</p>" for n in notes)
            + "<h2>Curves</h2>" + _img(png, "the runs' curves overlaid")
            + f"<details><summary>Run directories</summary><ul>{where}</ul></details></body></html>")
    return files.write_text(out, page)


def _html_table(rows) -> str:
    body = tables.cells(COLUMNS, rows)
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t, _ in COLUMNS)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in b) + "</tr>" for b in body)
    return f'<table class="num"><tr>{head}</tr>{trs}</table>'
