"""`fastcnn baseline knn|mlp`: k-nearest neighbours on raw pixels, or the mlp preset (fastcnn.baseline)."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("baseline", help="baselines: KNN on raw pixels, or the mlp preset",
                       description="Train and score a baseline; prints test accuracy and time.")
    p.add_argument("method", choices=["knn", "mlp"])
    p.add_argument("--k", type=int, default=3, help="neighbours (knn; default 3)")
    p.add_argument("--batch-size", type=int, default=500, help="queries per distance batch (knn)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (mlp; default: its recipe)")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--threads", type=int)
    p.add_argument("--data-dir", help="idx directory, Kaggle train.csv, mnist.npz or .mat")
    p.add_argument("--classes", metavar="DIGITS")
    p.add_argument("--train-limit", type=int, help="use at most N training images (random subset)")
    p.add_argument("--test-limit", type=int, help="score on the first N test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", metavar="TEST.csv", help="knn: also write a Kaggle submission for this test.csv")
    p.add_argument("--out", help="knn: submission file (default submission.csv); mlp: run directory")


def run(args) -> int:
    from ..backend import get
    from ..baseline import KNN, baseline_data, knn_baseline, mlp_baseline
    from ..data.formats import read_kaggle_csv, write_submission

    ds = baseline_data(args.data_dir, args.classes, args.train_limit, args.test_limit, args.seed)
    if args.method == "mlp":
        m = mlp_baseline(ds, args.backend, args.epochs, args.seed, args.out)
        print(f"MLP (mlp preset) on {len(ds.x_train):,} training images: test accuracy {m['test_accuracy']:.4f} "
              f"on {len(ds.y_test):,} images after {m['epochs']:.2f} epochs, {m['train_seconds']:.1f} s of training "
              f"(run in {m['out']})")
        return 0
    r = knn_baseline(ds.x_train, ds.y_train, ds.x_test, ds.y_test, k=args.k, xp=get(args.backend),
                     batch_size=args.batch_size)
    print(f"KNN (k={args.k}) on {r['n_train']:,} training images: test accuracy {r['accuracy']:.4f} "
          f"on {r['n_test']:,} images in {r['seconds']:.1f} s ({args.backend})")
    if args.csv:
        x, _ = read_kaggle_csv(args.csv, labeled=False)
        pred = KNN(args.k, args.batch_size).fit(ds.x_train, ds.y_train, get(args.backend)).predict(x)
        print(f"wrote {len(pred):,} predictions to {write_submission(args.out or 'submission.csv', pred)}")
    return 0
