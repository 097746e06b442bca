"""``fastcnn report RUN_DIR``: one self-contained HTML page about a run.

The page leads with the result: test accuracy, the time to each accuracy milestone,
the training features used, the learning curves and the confusion matrix; then the
per-class precision / recall / F1 and the other plots of ``fastcnn.viz.plots``; the
resolved configuration and the full metrics are folded at the end (<details>). The PNGs
are written to ``RUN_DIR/report/`` and also embedded in ``RUN_DIR/report.html`` as
base64 data URIs, so the HTML file alone can be mailed or moved and still shows them.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from .. import files, rundir
from .. import metrics as M
from ..inference import classify
from . import plots


def _img(path, alt) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _kv_table(d: dict) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, float):
            v = f"{v:.6g}"
        elif isinstance(v, (dict, list)):
            v = files.json_text(v)
        rows.append(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>")
    return '<table class="kv">' + "".join(rows) + "</table>"


def _milestones_table(fin: dict) -> str:
    """Accuracy level -> seconds of training and step at which it was first seen."""
    ms = fin.get("milestones") or {}
    if not ms:
        return "<p>no accuracy milestone (97 %, 98 %, 98.5 %, 99 %) was reached</p>"
    rows = "".join(f"<tr><td>{float(k):.1%}</td><td>{v['train_seconds']:.2f} s</td><td>{v['step']:,}</td></tr>"
                   for k, v in sorted(ms.items(), key=lambda kv: float(kv[0])))
    return ('<table class="num"><tr><th>accuracy ≥</th><th>first seen after</th><th>step</th></tr>'
            + rows + "</table>")


def features_text(fin: dict) -> str:
    """The training features the run used (metrics.json["features"]), as text ("none" when none)."""
    f = fin.get("features") or {}
    on = []
    for k, v in f.items():
        if k == "schedule":
            if isinstance(v, dict) and v.get("name") not in (None, "none", "constant"):
                extra = ", ".join(f"{a} {b:g}" for a, b in v.items() if a != "name" and b is not None)
                on.append(f"schedule {v['name']}" + (f" ({extra})" if extra else ""))
        elif v not in (None, False, 0, ""):
            on.append(f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}")
    return "; ".join(on) if on else "none"


def _features_line(fin: dict) -> str:
    """The training features the run used, one HTML line."""
    return "<p>features: " + html.escape(features_text(fin)) + "</p>" if fin.get("features") else ""


def _metrics_table(rep: dict) -> str:
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
    rows = [f"<tr><td>{r['class']}</td><td>{r['precision']:.4f}</td><td>{r['recall']:.4f}</td>"
            f"<td>{r['f1']:.4f}</td><td>{r['support']}</td></tr>" for r in rep["per_class"]]
    m = rep["macro"]
    rows.append(f'<tr class="macro"><td>macro avg</td><td>{m["precision"]:.4f}</td><td>{m["recall"]:.4f}</td>'
                f'<td>{m["f1"]:.4f}</td><td>{rep["n"]}</td></tr>')
    return '<table class="num">' + head + "".join(rows) + "</table>"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:24px auto;
padding:0 16px;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.8em}
.sub{color:#666;margin-top:4px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 10px;font-size:0.92em}
table.kv th{text-align:left;background:#f6f6f6;font-weight:600}table.num td{text-align:right}
table.num th{background:#f6f6f6}tr.macro td{font-weight:600;background:#fafafa}
img{max-width:100%;height:auto;display:block;margin:8px 0;border:1px solid #eee}
.cols{display:flex;gap:32px;flex-wrap:wrap;align-items:flex-start}
.big{font-size:1.25em}
details{margin-top:1.8em}summary{font-size:1.2em;font-weight:600;cursor:pointer}
"""


def build_report(run_dir, data_dir=None, image_index: int | None = None, max_errors: int = 36,
                 weights: str = "model.npz") -> Path:
    """Evaluate the run's model on its test set, draw every plot and write ``RUN_DIR/report.html``.

    ``image_index``: the test image whose feature maps are shown (default: the first one).
    Also writes the test metrics (``test_metrics.json/.csv/.md``, ``test_confusion.csv``).
    """
    plots.require_matplotlib()
    run = Path(run_dir)
    model, cfg = rundir.load_model(run, weights=weights)
    fin = rundir.read_json(run / "metrics.json", {}) or {}
    history = rundir.read_json(run / "history.json", []) or []
    ds = rundir.load_data_of(cfg, data_dir)
    classes = sorted(int(c) for c in np.unique(ds.y_test)) if len(ds.y_test) else None
    pred, probs = classify(model, ds.x_test)
    conf = probs.max(axis=1)
    rep = M.classification_report(ds.y_test, pred, probs.shape[1], classes)
    M.write_report(rep, run, prefix="test")
    out = run / "report"
    out.mkdir(exist_ok=True)
    img_i = 0 if image_index is None else int(image_index)
    if not 0 <= img_i < len(ds.x_test):
        raise ValueError(f"--image {img_i} is outside the test set's 0..{len(ds.x_test) - 1}")

    sections = []
    summary = {k: fin[k] for k in ("status", "test_accuracy", "val_accuracy", "best_accuracy", "best_step",
                                   "epochs", "steps", "train_seconds", "samples_per_second", "params",
                                   "backend", "conv_algo", "target_reached_seconds") if k in fin}
    n_wrong = int((pred != np.asarray(ds.y_test)).sum())
    how = (f"status {fin['status']} after {fin['epochs']:.2f} epochs, {fin['train_seconds']:.1f} s of training"
           if {"status", "epochs", "train_seconds"} <= set(fin) else "no metrics.json")
    sections.append(
        "<h2>Result</h2>"
        f'<p class="big">{weights} on the test set of {html.escape(ds.name)}: accuracy <b>{rep["accuracy"]:.4f}</b> '
        f"on {rep['n']:,} images ({n_wrong:,} misclassified)</p><p>{html.escape(how)}</p>"
        + (f"<p>the run's own last evaluation (metrics.json): test accuracy {fin['test_accuracy']:.4f}"
           f" with test-time augmentation over ±{fin['features']['tta_pixels']} px shifts</p>"
           if (fin.get("features") or {}).get("tta_pixels") and fin.get("test_accuracy") is not None else "")
        + "<h3>Time to each accuracy (" + ("validation" if fin.get("val_accuracy") is not None else "test")
        + " set)</h3>" + _milestones_table(fin) + _features_line(fin))
    if history:
        sections.append("<h2>Training curves</h2>" + _img(plots.training_curves(history, out / "curves.png"),
                                                            "training curves"))
    sections.append("<h2>Confusion matrix and precision, recall and F1 per class (test set)</h2>"
                    '<div class="cols"><div>'
                    + _img(plots.confusion_heatmap(rep["confusion_matrix"], out / "confusion.png", classes),
                           "confusion matrix") + "</div><div>" + _metrics_table(rep) + "</div></div>")
    sections.append("<h2>Misclassified test images</h2>"
                    + _img(plots.misclassified_grid(ds.x_test, ds.y_test, pred, conf, out / "misclassified.png",
                                                    max_errors), "misclassified test images"))
    p = plots.first_layer_filters(model, out / "filters.png")
    if p:
        sections.append("<h2>First-layer filters</h2>" + _img(p, "first-layer filters"))
    fmaps = plots.feature_maps(model, ds.x_test[img_i], out)
    if fmaps:
        inp = plots.image_grid([ds.x_test[img_i]], [f"test image {img_i}: label {int(ds.y_test[img_i])}, "
                                                    f"predicted {int(pred[img_i])}"], out / "input.png", 1)
        sections.append(f"<h2>Feature maps for test image {img_i}</h2>" + _img(inp, "input image")
                        + "".join(_img(f, f.stem) for f in fmaps))
    p = plots.linear_weights(model, out / "linear_weights.png")
    if p:
        sections.append("<h2>Linear-layer weights</h2>" + _img(p, "linear-layer weights"))
    summary_txt = html.escape(model.summary())
    sections.append(f"<h2>Layers</h2><pre>{summary_txt}</pre>")
    sections.append(f"<details><summary>Configuration ({len(cfg)} settings) and final metrics</summary>"
                    '<div class="cols"><div><h2>Configuration</h2>' + _kv_table(cfg) + "</div>"
                    '<div><h2>Final metrics</h2>' + (_kv_table(summary) if summary else "<p>no metrics.json</p>")
                    + "</div></div></details>")
    title = f"fastcnn run {run.resolve().name}"
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='sub'>model <b>{html.escape(str(cfg.get('model')))}</b> · data "
            f"{html.escape(ds.name)} · {html.escape(str(run))}</p>" + "\n".join(sections) + "</body></html>")
    path = run / "report.html"
    files.write_text(path, page)  # atomically
    return path
