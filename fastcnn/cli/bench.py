"""`fastcnn bench conv|train`: the benchmark suite (fastcnn.bench)."""
from __future__ import annotations

from .options import positive_int


def add_parser(sub):
    p = sub.add_parser("bench", help="benchmarks: conv algorithms or training paths")
    p.add_argument("what", choices=["conv", "train"])
    p.add_argument("--backend", default="numpy")
    p.add_argument("--threads", type=positive_int)
    p.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--algo", action="append", metavar="PATH.py:NAME",
                   help="add your own algorithm (forward/backward as in fastcnn.registry) to the ladder; it is "
                        "checked against naive before it is timed (repeatable)")
    p.add_argument("--steps-to-97", type=positive_int, default=None,
                   help="skip the 97 %% run and use this step count (≥ 1)")


def run(args) -> int:
    from .. import bench

    return bench.main(args)
