"""`fastcnn summary`: the layer table of a preset and its share of the lab's parameter budget."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("summary", help="layer table and parameter budget of a preset")
    p.add_argument("--model", default=None)


def run(args) -> int:
    from .. import models

    name = models.DEFAULT if args.model is None else args.model  # "" is a name (unknown), not "the default"
    model = models.build(name)
    print(model.summary())
    n = model.num_params()
    verdict = "fits" if n <= models.LAB_BUDGET else "does NOT fit"
    print(f"{name} {verdict} the lab's budget of 9·9·20 + 2000·100 + 100·10 = {models.LAB_BUDGET:,} parameters "
          f"({n:,} = {n / models.LAB_BUDGET:.1%} of it)")
    return 0
