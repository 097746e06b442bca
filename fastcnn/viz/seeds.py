"""One page comparing the seeds of a multi-seed run (benchmarks/seeds.py): the summary
(median, min–max), each seed's row and its accuracy curves overlaid, in one self-contained HTML file.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from . import plots


def overlaid_curves(histories: dict, path, title: str = "") -> Path:
    """Test (solid) and validation (dashed) accuracy against seconds of training, one colour per
    seed. ``histories``: seed -> the rows of its history.json."""
    plt = plots.require_matplotlib()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (seed, h) in enumerate(sorted(histories.items())):
        t = np.array([r["train_seconds"] for r in h], float)
        colour = f"C{i % 10}"
        ax.plot(t, [r.get("test_accuracy") for r in h], "-", color=colour, lw=1.2, label=f"seed {seed} test")
        if any(r.get("val_accuracy") is not None for r in h):
            ax.plot(t, [r.get("val_accuracy", np.nan) for r in h], "--", color=colour, lw=1, label=f"seed {seed} val")
    lo = min([min((r.get("test_accuracy") or 1.0) for r in h) for h in histories.values()] + [0.97])
    ax.set_ylim(max(lo, 0.95), 1.0)
    ax.axhline(0.99, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("seconds of training")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title or "accuracy of each seed")
    fig.tight_layout()
    return plots._save(fig, path)


def seeds_page(path, title: str, summary_md: str, rows_md: str, curves_png=None, command: str = "") -> Path:
    """Write the page (atomically); ``*_md`` are the Markdown tables, shown as preformatted text."""
    from ..files import write_text

    img = ""
    if curves_png is not None:
        data = base64.b64encode(Path(curves_png).read_bytes()).decode()
        img = f'<img alt="accuracy curves" style="max-width:100%" src="data:image/png;base64,{data}">'
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px}"
            "pre{background:#f6f6f6;padding:8px;overflow-x:auto}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><h2>Summary over seeds</h2><pre>{html.escape(summary_md)}</pre>"
            f"<h2>Curves, seeds overlaid</h2>{img}<h2>Each seed</h2><pre>{html.escape(rows_md)}</pre>"
            + (f"<p>reproduce: <code>{html.escape(command)}</code></p>" if command else "") + "</body></html>")
    return write_text(path, page)
