"""Classification metrics: accuracy, confusion matrix, per-class precision / recall / F1.

    cm = confusion_matrix(y_true, y_pred, 10)   # cm[t, p] = samples of class t predicted p
    r = classification_report(y_true, y_pred)    # dict: accuracy, per-class P/R/F1/support, macro
    print(format_table(r))

Conventions (as scikit-learn's ``zero_division=0``): a class never predicted has
precision 0, a class absent from y_true has recall 0, and F1 is 0 when P + R = 0.
Macro averages are plain means over the classes listed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import files, tables
from .backend import as_numpy


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(as_numpy(y_true)).ravel(), np.asarray(as_numpy(y_pred)).ravel()
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """(K, K) int64 counts: row = true class, column = predicted class."""
    t = np.asarray(as_numpy(y_true), np.int64).ravel()
    p = np.asarray(as_numpy(y_pred), np.int64).ravel()
    if len(t) != len(p):
        raise ValueError(f"{len(t)} labels but {len(p)} predictions")
    k = num_classes if num_classes is not None else int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    if len(t) and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= k):
        raise ValueError(f"labels and predictions must lie in 0..{k - 1}")
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def precision_recall_f1(cm: np.ndarray):
    """Per-class (precision, recall, f1, support) arrays of a confusion matrix."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    pred = cm.sum(axis=0)
    true = cm.sum(axis=1)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    s = precision + recall
    f1 = np.divide(2 * precision * recall, s, out=np.zeros_like(tp), where=s > 0)
    return precision, recall, f1, true.astype(np.int64)


def classification_report(y_true, y_pred, num_classes: int = 10, classes=None) -> dict:
    """Accuracy, confusion matrix and per-class / macro precision, recall, F1.

    ``classes`` restricts the per-class rows and the macro average to those labels
    (e.g. the three classes of a ``--classes 0,1,2`` run); default: every class
    that occurs in y_true or y_pred.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    p, r, f, n = precision_recall_f1(cm)
    if classes is None:
        classes = [int(c) for c in np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))]
    classes = [int(c) for c in classes]
    rows = [{"class": c, "precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]),
             "support": int(n[c])} for c in classes]
    macro = {k: float(np.mean([row[k] for row in rows])) if rows else float("nan")
             for k in ("precision", "recall", "f1")}
    total = int(cm.sum())
    return {"accuracy": float(np.trace(cm) / total) if total else float("nan"), "n": total,
            "confusion_matrix": cm.tolist(), "classes": classes, "per_class": rows, "macro": macro}


def format_table(report: dict, markdown: bool = False) -> str:
    """The per-class table and the macro average as text (or Markdown)."""
    head = ("class", "precision", "recall", "F1", "support")
    rows = [(str(r["class"]), f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", str(r["support"]))
            for r in report["per_class"]]
    m = report["macro"]
    rows.append(("macro avg", f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", str(report["n"])))
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * 4) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + f"\n\naccuracy {report['accuracy']:.4f} on {report['n']} images\n"
    w = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    fmt = lambda r: "  ".join([r[0].ljust(w[0])] + [r[i].rjust(w[i]) for i in range(1, 5)])  # noqa: E731
    line = "-" * len(fmt(head))
    return "\n".join([fmt(head), line, *map(fmt, rows[:-1]), line, fmt(rows[-1]),
                      f"accuracy {report['accuracy']:.4f} on {report['n']} images"])


def format_confusion(cm) -> str:
    """The confusion matrix as text: rows true class, columns predicted class."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    w = max(5, len(str(int(cm.max(initial=0)))) + 1)
    lines = ["true\\pred" + "".join(f"{j:>{w}}" for j in range(k))]
    lines += [f"{i:>9}" + "".join(f"{int(v):>{w}}" for v in cm[i]) for i in range(k)]
    return "\n".join(lines)


def write_report(report: dict, out_dir, prefix: str = "eval") -> list:
    """Write ``<prefix>_metrics.json``, ``<prefix>_metrics.csv``, ``<prefix>_metrics.md`` and
    ``<prefix>_confusion.csv`` into ``out_dir`` (each atomically); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [files.save_json(out / f"{prefix}_metrics.json", report)]
    columns = [(k, k, None) for k in ("class", "precision", "recall", "f1", "support")]
    m = report["macro"]
    rows = [{**r, **{k: f"{r[k]:.6f}" for k in ("precision", "recall", "f1")}} for r in report["per_class"]]
    rows.append({"class": "macro", **{k: f"{m[k]:.6f}" for k in ("precision", "recall", "f1")}, "support": report["n"]})
    paths.append(files.write_text(out / f"{prefix}_metrics.csv", tables.csv_text(columns, rows)))
    paths.append(files.write_text(out / f"{prefix}_metrics.md", format_table(report, markdown=True)))
    cm = np.asarray(report["confusion_matrix"])
    corner = "true\\pred"
    columns = [(corner, corner, None)] + [(j, str(j), None) for j in range(cm.shape[1])]
    rows = [{corner: i, **dict(enumerate(row))} for i, row in enumerate(cm.tolist())]
    paths.append(files.write_text(out / f"{prefix}_confusion.csv", tables.csv_text(columns, rows)))
    return paths
