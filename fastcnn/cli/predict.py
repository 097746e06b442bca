"""`fastcnn predict`: a class per image of an idx / .npy file, or a Kaggle submission for a test.csv."""
from __future__ import annotations

import sys

from .options import add_weights_args, load_weights


def add_parser(sub):
    p = sub.add_parser("predict", help="a class per image of an idx or .npy file")
    add_weights_args(p)
    p.add_argument("--input", help="images: idx file (gzip or raw) or .npy, uint8 (N, 28, 28)")
    p.add_argument("--out", help="write the classes here, one per line (default: print)")
    p.add_argument("--csv", metavar="TEST.csv",
                   help="images from a Kaggle test.csv (784 pixel columns); --out gets a submission "
                        "ImageId,Label (default submission.csv)")


def run(args) -> int:
    from ..backend import as_numpy
    from ..data.formats import read_images, read_kaggle_csv, write_submission
    from ..files import write_text
    from ..inference import check_images, predict_logits

    if not args.input and not args.csv:
        raise ValueError("predict needs --input IMAGES (idx or .npy) or --csv TEST.csv")
    if args.input and args.csv:
        raise ValueError("predict: give --input or --csv, not both")
    model, _ = load_weights(args)
    x = read_images(args.input) if args.input else read_kaggle_csv(args.csv, labeled=False)[0]
    check_images(model, x, args.input or args.csv)  # 28×28 for the presets: named before predicting
    classes = as_numpy(predict_logits(model, x).argmax(axis=1))
    if args.csv:
        out = write_submission(args.out or "submission.csv", classes)
        print(f"wrote {len(classes):,} predictions to {out} (ImageId,Label)")
    elif args.out:
        write_text(args.out, "\n".join(str(int(c)) for c in classes) + "\n")
        print(f"wrote {len(classes)} classes to {args.out}")
    else:
        sys.stdout.write("\n".join(str(int(c)) for c in classes) + "\n")
    return 0
