"""Shared by the workbench tests: the two example user files and a small MNIST as idx files."""
from pathlib import Path

import pytest

FILES = Path(__file__).parent / "files"
GOOD = FILES / "good.py"
BAD = FILES / "bad.py"


@pytest.fixture(scope="session")
def small_idx(tmp_path_factory):
    """A folder with the four MNIST idx files holding 1,000 training and 200 test images."""
    from fastcnn.data import load_mnist, write_idx
    from fastcnn.data.mnist import FILES as NAMES

    d = tmp_path_factory.mktemp("mnist-small")
    ds = load_mnist()
    for name, arr in zip(NAMES, (ds.x_train[:1000], ds.y_train[:1000], ds.x_test[:200], ds.y_test[:200])):
        write_idx(d / name, arr)
    return d
