"""The benchmarks' bar charts (PNG, when matplotlib is installed); their tables are fastcnn.tables."""
from __future__ import annotations

import io
from pathlib import Path

from ..files import write_atomic


def bar_chart(path, groups, series, values, ylabel: str, title: str, log: bool = False,
              hline: float | None = None, hline_label: str = "") -> Path | None:
    """A grouped bar chart as PNG; returns None (and writes nothing) without matplotlib.

    groups: x-axis labels (G,); series: legend labels (S,); values[s][g]: bar heights (None: no bar).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) + 2), 4.5))
    width = 0.8 / max(len(series), 1)
    for s, name in enumerate(series):
        xs = [g + (s - (len(series) - 1) / 2) * width for g in range(len(groups))]
        hs = [values[s][g] if values[s][g] is not None else 0 for g in range(len(groups))]
        ax.bar(xs, hs, width, label=name)
    if hline is not None:
        ax.axhline(hline, color="red", linestyle="--", linewidth=1, label=hline_label or None)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_atomic(path, lambda f: f.write(buf.getvalue()))
