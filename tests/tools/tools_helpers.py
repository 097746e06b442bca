"""Shared helpers of the tests/tools tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import numpy as np


def small_npz(path, n_train=1000, n_test=300):
    """A Keras-style mnist.npz holding the first images of the bundled MNIST."""
    from fastcnn.data import load_mnist

    ds = load_mnist()
    np.savez(path, x_train=ds.x_train[:n_train], y_train=ds.y_train[:n_train],
             x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test])
    return path


def parser():
    """The fastcnn command's parser."""
    from fastcnn import cli

    return cli.build_parser()


def run_cli(argv):
    """Run ``fastcnn ARGV`` through its entry point; returns the exit code."""
    from fastcnn import cli

    return cli.main(argv)
