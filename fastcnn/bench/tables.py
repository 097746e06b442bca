"""Result tables: one list of row dicts, written as a terminal table, CSV, Markdown or a bar chart.

A column is ``(key, title, fmt)``: ``fmt`` is a format spec (".2f") or a callable
value -> str. A missing value (None) prints as "—" and is an empty CSV field.
Files are written atomically (fastcnn.io), so an interrupted run never leaves half a table.
"""
from __future__ import annotations

import csv
import io as _stdio
from pathlib import Path

from .. import io

MISSING = "—"


def _cell(value, fmt) -> str:
    if value is None:
        return MISSING
    if callable(fmt):
        return fmt(value)
    return format(value, fmt) if fmt and not isinstance(value, str) else str(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cells(columns, rows) -> list:
    """Each row as a list of formatted strings, in column order."""
    return [[_cell(r.get(k), fmt) for k, _, fmt in columns] for r in rows]


def text(columns, rows, title: str = "") -> str:
    """An aligned plain-text table (numbers right-aligned) for the terminal."""
    body = cells(columns, rows)
    heads = [t for _, t, _ in columns]
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(heads)]
    right = [any(_is_number(r.get(k)) for r in rows) for k, _, _ in columns]

    def line(vals):
        return "  ".join(v.rjust(w) if ri else v.ljust(w) for v, w, ri in zip(vals, widths, right)).rstrip()

    out = [title] if title else []
    out += [line(heads), "  ".join("-" * w for w in widths)] + [line(b) for b in body]
    return "\n".join(out)


def markdown(columns, rows, title: str = "", header=(), notes=()) -> str:
    """A Markdown table; ``header`` lines (the machine) go above it as a list, ``notes`` below it."""
    body = cells(columns, rows)
    right = [any(_is_number(r.get(k)) for r in rows) for k, _, _ in columns]
    out = [f"## {title}", ""] if title else []
    if header:
        out += [f"- {h}" for h in header] + [""]
    out.append("| " + " | ".join(t for _, t, _ in columns) + " |")
    out.append("|" + "|".join("---:" if ri else "---" for ri in right) + "|")
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in b) + " |" for b in body]
    if notes:
        out += [""] + list(notes)
    return "\n".join(out) + "\n"


def csv_text(columns, rows, header=()) -> str:
    """CSV with the keys as column names; ``header`` lines come first as "# " comments."""
    buf = _stdio.StringIO()
    for h in header:
        buf.write(f"# {h}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([k for k, _, _ in columns])
    for r in rows:
        w.writerow(["" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k])
                    for k, _, _ in columns])
    return buf.getvalue()


def read_csv(path) -> list:
    """The rows of a file written by ``csv_text`` (comment lines skipped), as dicts of strings."""
    lines = [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def write_text(path, content: str) -> Path:
    """Write ``content`` to ``path`` atomically (temp file + rename)."""
    data = content.encode()
    return io._atomic(path, lambda f: f.write(data))


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
    buf = _stdio.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return io._atomic(path, lambda f: f.write(buf.getvalue()))
