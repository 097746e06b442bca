"""Option types and option groups shared by several commands."""
from __future__ import annotations

import argparse


def positive_int(s):
    """argparse type: an integer ≥ 1."""
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {s}")
    return v


def non_negative_int(s):
    """argparse type: an integer ≥ 0 (a seed)."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 0, got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 0, got {s}")
    return v


def add_weights_args(p):
    """--weights, --model, --backend, --threads: the trained model a command works on."""
    p.add_argument("--weights", required=True, help="a run directory or a model .npz")
    p.add_argument("--model", help="preset of a bare .npz, or your own network PATH.py:FUNC (default: read from "
                                   "the run directory or guessed)")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--threads", type=positive_int)


def load_weights(args):
    """(model, preset name) of --weights / --model on --backend (fastcnn.rundir.load_weights)."""
    from ..rundir import load_weights as load

    return load(args.weights, args.model, args.backend)
