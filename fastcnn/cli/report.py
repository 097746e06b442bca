"""`fastcnn report RUN_DIR`: a self-contained HTML page of a run (fastcnn.viz.report)."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("report", help="a self-contained HTML page of a run: config, metrics, plots",
                       description="Write RUN_DIR/report.html (plots embedded; PNGs also in RUN_DIR/report/). "
                                   "Needs matplotlib: pip install 'fastcnn[viz]'.")
    p.add_argument("run_dir")
    p.add_argument("--data-dir", help="the data set (default: the run's)")
    p.add_argument("--image", type=int, default=None, help="test image whose feature maps are shown (default 0)")
    p.add_argument("--max-errors", type=int, default=36, help="misclassified images shown (default 36)")
    p.add_argument("--best", action="store_true", help="report on best.npz (early stopping) instead of model.npz")


def run(args) -> int:
    from ..viz.report import build_report

    path = build_report(args.run_dir, data_dir=args.data_dir, image_index=args.image, max_errors=args.max_errors,
                        weights="best.npz" if args.best else "model.npz")
    print(f"report written to {path} (plots in {path.parent / 'report'})")
    return 0
