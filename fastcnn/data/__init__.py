"""Data: IDX files, the bundled MNIST, and mini-batches normalised on the fly.

    ds = load_mnist().split_validation(0.1, seed=0)  # uint8 (N, 28, 28) arrays
    for xb, yb in BatchIterator(ds.x_train, ds.y_train, 128, seed=0):
        ...  # xb (128, 1, 28, 28) float32, yb (128,) int64
"""
from .idx import DataError, read_idx, write_idx
from .loader import MEAN, STD, BatchIterator, normalize
from .mnist import Dataset, load_mnist

__all__ = ["DataError", "read_idx", "write_idx", "load_mnist", "Dataset",
           "BatchIterator", "normalize", "MEAN", "STD"]
