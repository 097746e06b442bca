"""Result tables, the one table writer: a list of row dicts as a terminal table, CSV or Markdown.

    print(text(COLUMNS, rows, "title"))
    paths = write_table(out_dir, "conv", COLUMNS, rows, title, header, notes)  # conv.csv, conv.md

A column is ``(key, title, fmt)``: ``fmt`` is a format spec (".2f") or a callable
value -> str. A missing value (None) prints as "—" and is an empty CSV field.
Files are written atomically (fastcnn.files), so an interrupted run never leaves half a table.
Used by the benchmarks (fastcnn.bench), the sweep's table and the metrics report.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .files import write_text

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
    buf = io.StringIO()
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


def write_table(out, name: str, columns, rows, title: str = "", header=(), notes=(), csv_columns=None) -> list:
    """``out/NAME.csv`` (``csv_columns``, default ``columns``; ``header`` as comments) and
    ``out/NAME.md`` (title, header, table, notes), each written atomically; returns both paths."""
    out = Path(out)
    return [write_text(out / f"{name}.csv", csv_text(csv_columns or columns, rows, header)),
            write_text(out / f"{name}.md", markdown(columns, rows, title, header, notes))]
