"""`fastcnn report RUN_DIR`: a self-contained HTML page of a run (fastcnn.viz.report);
`fastcnn report RUN RUN ...`: one page comparing several runs (fastcnn.viz.compare)."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("report", help="a self-contained HTML page of a run, or one comparing several runs",
                       description="One run: write RUN_DIR/report.html (plots embedded; PNGs also in "
                                   "RUN_DIR/report/). Several runs: write one comparison page (--out, default "
                                   "comparison.html): a table of model, parameters, accuracy, time to 97 %% and "
                                   "99 %%, training time and features, and the curves overlaid. "
                                   "Needs matplotlib: pip install 'fastcnn[viz]'.")
    p.add_argument("run_dir", nargs="+", metavar="RUN_DIR", help="a run directory; several: compare them")
    p.add_argument("--data-dir", help="the data set (default: the run's)")
    p.add_argument("--image", type=int, default=None, help="test image whose feature maps are shown (default 0)")
    p.add_argument("--max-errors", type=int, default=36, help="misclassified images shown (default 36)")
    p.add_argument("--best", action="store_true", help="report on best.npz (early stopping) instead of model.npz")
    p.add_argument("--out", metavar="PAGE.html", default="comparison.html",
                   help="several runs: the comparison page to write (default comparison.html; its table also "
                        "as .csv and .md beside it)")


def run(args) -> int:
    try:
        if len(args.run_dir) > 1:
            from ..viz.compare import build_comparison

            path = build_comparison(args.run_dir, args.out)
            print(f"comparison of {len(args.run_dir)} runs written to {path} "
                  f"(table also in {path.with_suffix('.md')})")
            return 0
        from ..viz.report import build_report

        path = build_report(args.run_dir[0], data_dir=args.data_dir, image_index=args.image,
                            max_errors=args.max_errors, weights="best.npz" if args.best else "model.npz")
    except ImportError as e:  # matplotlib is an optional extra
        raise ValueError(str(e)) from None
    print(f"report written to {path} (plots in {path.parent / 'report'})")
    return 0
