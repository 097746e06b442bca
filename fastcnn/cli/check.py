"""`fastcnn check PATH.py:NAME`: gradient and agreement checks of a user's own layer or algorithm (fastcnn.check)."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("check", help="check your own layer or conv/pool algorithm: gradients and agreement",
                       description="Check NAME in the Python file PATH: a fastcnn.nn.Layer subclass (float64 "
                                   "central differences of dx and every parameter gradient) or a convolution / "
                                   "pooling algorithm with forward and backward (fastcnn.registry's contract: "
                                   "agreement of y, dx, dW, db with the naive reference, and central differences). "
                                   "Exit code 0 when every check passes, 1 when one fails, 2 when the file "
                                   "cannot be used.")
    p.add_argument("target", metavar="PATH.py:NAME")
    p.add_argument("--args", metavar="JSON|k=v,...",
                   help="arguments of the layer's constructor, e.g. kernel_size=2 or '{\"kernel_size\": [2, 2]}'")
    p.add_argument("--input-shape", metavar="C,H,W|F",
                   help="a layer's per-sample input shape (default: from its in_channels / in_features, else 3,7,9)")
    p.add_argument("--kind", choices=["conv", "pool"], help="an algorithm's kind, when its signature does not tell")
    p.add_argument("--mode", choices=["max", "avg"], help="pooling algorithms: check this mode only (default both)")


def run(args) -> int:
    from ..check import format_report, run as check

    report = check(args.target, args.args, args.kind, (args.mode,) if args.mode else ("max", "avg"),
                   args.input_shape)
    print(format_report(report))
    return 0 if report["ok"] else 1
