"""MNIST (or any data set in its four-file IDX layout, e.g. Fashion-MNIST), checked and cached.

A copy of MNIST ships in ``fastcnn/data/mnist/`` with a SHA256SUMS of the
decompressed files. ``load_mnist()`` reads it (or ``$FASTCNN_DATA``, or a given
directory), verifies it, and keeps the decoded arrays in memory for the process.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .idx import DataError, parse_idx, read_bytes

BUNDLED = Path(__file__).parent / "mnist"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SUMS = "SHA256SUMS"


@dataclasses.dataclass
class Dataset:
    """Images and labels, as stored: x_* (N, H, W) uint8, y_* (N,) integer labels.

    ``x_val``/``y_val`` are None until ``split_validation`` carves them from the
    training set. Arrays from ``load_mnist`` are read-only (they are shared by a cache).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "mnist"
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def split_validation(self, fraction: float = 0.1, seed: int = 0) -> "Dataset":
        """A new Dataset whose x_val/y_val are ``round(fraction * N)`` training samples
        chosen by a permutation from ``np.random.default_rng(seed)``; the rest stay in
        x_train/y_train (both keep their original order)."""
        n = len(self.x_train)
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
        n_val = int(round(fraction * n))
        if not 0 < n_val < n:
            raise ValueError(f"validation fraction {fraction} of {n} training samples "
                             f"leaves {n_val} for validation and {n - n_val} for training")
        perm = np.random.default_rng(seed).permutation(n)
        val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        return dataclasses.replace(
            self, x_train=self.x_train[train], y_train=self.y_train[train],
            x_val=self.x_train[val], y_val=self.y_train[val])

    def check_labels(self, num_classes: int) -> None:
        """DataError unless every label (train, validation, test) is an integer in [0, num_classes).

        Checked once per data set on the host: on a GPU an out-of-range label would not raise
        (CuPy's integer indexing wraps around) but silently train against another class."""
        for split in ("y_train", "y_val", "y_test"):
            y = getattr(self, split)
            if y is None or not len(y):
                continue
            y = np.asarray(y)
            if y.dtype.kind not in "iu":
                raise DataError(f"{self.name}: {split} holds {y.dtype} labels; labels must be integers 0–{num_classes - 1}")
            bad = np.flatnonzero((y < 0) | (y >= num_classes))
            if bad.size:
                raise DataError(f"{self.name}: {split}[{bad[0]}] = {y[bad[0]]} is outside 0–{num_classes - 1} "
                                f"({bad.size} such labels), but the model has {num_classes} outputs: "
                                "fix the labels or give the model one output per class")

    def __repr__(self) -> str:
        parts = [f"{f}={getattr(self, f).shape}" for f in
                 ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
                 if getattr(self, f) is not None]
        return f"Dataset({self.name!r}, {', '.join(parts)})"


def load_mnist(data_dir=None, verify: bool = True) -> Dataset:
    """Load the four IDX files of ``data_dir`` into a Dataset.

    ``data_dir`` None means ``$FASTCNN_DATA`` when set, else the bundled MNIST.
    Each file may be gzipped (``name.gz``) or raw (``name``). With ``verify``, the
    SHA-256 of each decompressed file is checked against the directory's SHA256SUMS
    when there is one. Decoded arrays are cached per directory (and file inode/size/mtime).
    """
    if data_dir is not None:
        d, origin = Path(data_dir), "--data-dir"
    elif os.environ.get("FASTCNN_DATA"):
        d, origin = Path(os.environ["FASTCNN_DATA"]), "FASTCNN_DATA"
    else:
        d, origin = BUNDLED, "the bundled copy"
    paths = tuple(p.resolve() for p in _find(d, origin))
    sums = d.resolve() / SUMS
    stamp = tuple((s.st_ino, s.st_size, s.st_mtime_ns)
                  for s in (p.stat() for p in [*paths, sums] if p.exists()))
    name = "mnist" if d == BUNDLED else d.resolve().name
    return dataclasses.replace(_load(paths, sums if verify else None, stamp, name))


def _find(d: Path, origin: str) -> list[Path]:
    """The path of each of FILES in ``d`` (``name.gz`` preferred over ``name``)."""
    expected = ", ".join(f"{f}[.gz]" for f in FILES)
    fix = ("pass --data-dir DIR or set FASTCNN_DATA=DIR to a directory holding them "
           "(unset FASTCNN_DATA to use the MNIST bundled with fastcnn)")
    if not d.is_dir():
        raise DataError(f"data directory {d} (from {origin}) does not exist; it should hold "
                        f"{expected}; {fix}")
    found = [next((p for p in (d / f"{f}.gz", d / f) if p.is_file()), None) for f in FILES]
    missing = [f for f, p in zip(FILES, found) if p is None]
    if missing:
        what = "is empty" if not any(d.iterdir()) else f"lacks {', '.join(missing)}"
        raise DataError(f"data directory {d} (from {origin}) {what}; it should hold "
                        f"{expected}; {fix}")
    return found


def _read_sums(path: Path) -> dict[str, str]:
    """file name -> lower-case hex sha256, from a ``sha256sum``-style file (# comments)."""
    sums = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{path}:{i}: expected '<sha256>  <file name>', found {line!r}")
        sums[parts[1].lstrip("*").removeprefix("./")] = parts[0].lower()
    return sums


@lru_cache(maxsize=4)
def _load(paths: tuple, sums_file: Path | None, stamp: tuple, name: str) -> Dataset:
    """Decode the four files ``paths``, verified against ``sums_file`` if it exists;
    ``stamp`` (inodes, sizes, mtimes) is only part of the cache key."""
    sums = _read_sums(sums_file) if sums_file is not None and sums_file.is_file() else {}
    arrays = []
    for f, p in zip(FILES, paths):
        data = read_bytes(p)
        if f in sums:
            got = hashlib.sha256(data).hexdigest()
            if got != sums[f]:
                raise DataError(
                    f"{p}: checksum mismatch: the file is damaged (or not the expected data): "
                    f"sha256 of its decompressed bytes is {got}, {sums_file} expects "
                    f"{sums[f]}; download or copy it again")
        arrays.append(parse_idx(data, str(p)))
    for x, y, px, py in ((*arrays[:2], *paths[:2]), (*arrays[2:], *paths[2:])):
        if x.ndim != 3 or x.dtype != np.uint8:
            raise DataError(f"{px}: images must be (N, H, W) uint8, found {x.shape} {x.dtype}")
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise DataError(f"{py}: labels must be (N,) integers, found {y.shape} {y.dtype}")
        if len(x) != len(y):
            raise DataError(f"{px.name} holds {len(x)} images but {py.name} holds "
                            f"{len(y)} labels (in {px.parent})")
    if arrays[0].shape[1:] != arrays[2].shape[1:]:
        raise DataError(f"{px.parent}: train images are {arrays[0].shape[1:]} but test "
                        f"images {arrays[2].shape[1:]}")
    for a in arrays:
        a.flags.writeable = False
    return Dataset(*arrays, name)
