"""`fastcnn summary`: the layer table of a preset and its share of the lab's parameter budget."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("summary", help="layer table and parameter budget of a preset")
    p.add_argument("--model", default=None, help="a preset, or your own network as PATH.py:FUNC")


def run(args) -> int:
    from .. import models

    name = models.DEFAULT if args.model is None else args.model  # "" is a name (unknown), not "the default"
    model = models.build(name)
    print(model.summary())
    n = model.num_params()
    print(models.budget_line(name, n))
    return 0
