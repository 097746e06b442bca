"""`fastcnn eval`: accuracy, confusion matrix and per-class precision / recall / F1 of trained weights."""
from __future__ import annotations

from pathlib import Path

from .options import add_weights_args, load_weights


def add_parser(sub):
    p = sub.add_parser("eval", help="test accuracy of trained weights")
    add_weights_args(p)
    p.add_argument("--data-dir")
    p.add_argument("--classes", metavar="DIGITS", help="evaluate on these digits only (default: the run's)")
    p.add_argument("--metrics-out", metavar="DIR",
                   help="write eval_metrics.{json,csv,md} and eval_confusion.csv here (default: the run directory)")


def run(args) -> int:
    import numpy as np

    from .. import metrics, rundir
    from ..data import DataError
    from ..inference import check_images, classify

    model, name = load_weights(args)
    wpath = Path(args.weights)
    cfg = rundir.run_config(wpath)
    if args.classes:
        cfg["classes"] = args.classes
    ds = rundir.load_data_of(cfg, args.data_dir)
    if len(ds.y_test) == 0:  # load_data refuses empty sets; a data set built another way is checked here too
        raise DataError(f"{ds.name}: the test set holds no images: nothing to evaluate")
    check_images(model, ds.x_test, f"the test set of {ds.name}")
    classes = sorted(int(c) for c in np.unique(ds.y_test))
    pred, probs = classify(model, ds.x_test)
    rep = metrics.classification_report(ds.y_test, pred, probs.shape[1], classes)
    print(f"{name}: test accuracy {rep['accuracy']:.4f} on {rep['n']:,} images of {ds.name}")
    print(metrics.format_table(rep))
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    cm = np.asarray(rep["confusion_matrix"])
    print(metrics.format_confusion(cm[np.ix_(classes, classes)] if len(classes) < len(cm) else cm))
    out = args.metrics_out or (wpath if wpath.is_dir() else None)
    if out is not None:
        paths = metrics.write_report(rep, out, prefix="eval")
        print(f"metrics written to {', '.join(str(p) for p in paths)}")
    return 0
