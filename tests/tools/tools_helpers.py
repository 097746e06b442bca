"""Shared helpers of the tests/tools tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import argparse

import numpy as np


def small_npz(path, n_train=1000, n_test=300):
    """A Keras-style mnist.npz holding the first images of the bundled MNIST."""
    from fastcnn.data import load_mnist

    ds = load_mnist()
    np.savez(path, x_train=ds.x_train[:n_train], y_train=ds.y_train[:n_train],
             x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test])
    return path


def parser():
    """cli.build_parser() with the toolkit wired in (as cli.py does once the lead has added it)."""
    from fastcnn import cli, cli_tools

    ap = cli.build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    if "report" not in sub.choices:
        cli_tools.add_parsers(sub)
        cli_tools.add_train_args(sub.choices["train"])
        cli_tools.add_eval_args(sub.choices["eval"])
        cli_tools.add_predict_args(sub.choices["predict"])
        for a in sub.choices["predict"]._actions:
            if a.dest == "input":
                a.required = False
    return ap


def run_cli(argv):
    """Parse and run like cli.main, with the toolkit's commands; returns the exit code."""
    from fastcnn import cli, cli_tools

    args = parser().parse_args(argv)
    commands = {**cli.COMMANDS, **cli_tools.COMMANDS}
    return commands[args.command](args) or 0
