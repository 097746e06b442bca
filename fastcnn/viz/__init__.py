"""Plots (matplotlib, the ``viz`` extra) and the HTML report of a run directory.

    from fastcnn.viz import plots, report
    report.build_report("runs/lenet5-...")   # -> runs/lenet5-.../report.html
"""
from .plots import require_matplotlib

__all__ = ["require_matplotlib"]
