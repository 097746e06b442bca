"""Other data formats: the Kaggle digit-recognizer CSV, a MATLAB .mat, a Keras ``mnist.npz``,
and subsets of classes.

    ds = load_data("train.csv")          # Kaggle: label + 784 pixels; 20 % held out as the test set
    ds = load_data("mnist.npz")          # Keras: x_train, y_train, x_test, y_test
    ds = load_data("mnist.mat")          # SciPy (optional): trainX/trainY/testX/testY, data/label, ...
    ds = load_data(None)                 # the bundled MNIST (or $FASTCNN_DATA)
    ds = select_classes(ds, "0,1,2")     # the three-class task; labels keep their digit values
    ds = load_data(None, classes="0,1,2")  # the same in one call
    x = read_kaggle_csv("test.csv")[0]   # (N, 28, 28) uint8, labels None
    x = read_images("imgs.idx.gz")       # (N, 28, 28) uint8 from idx or .npy
    write_submission("submission.csv", predictions)   # ImageId,Label with ImageId from 1

Every error is a DataError (or ValueError for options) naming the file, the row
(1-based line number, the header being line 1) and the column.
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from .idx import DataError, read_idx
from .mnist import Dataset, load_mnist

SIDE = 28
PIXELS = SIDE * SIDE


# --- Kaggle CSV ------------------------------------------------------------------------
def read_kaggle_csv(path, labeled: bool | None = None):
    """Read a Kaggle digit-recognizer CSV: ``(x (N, 28, 28) uint8, y (N,) int64 or None)``.

    ``train.csv`` has a header ``label,pixel0,...,pixel783``; ``test.csv`` has only the
    784 pixel columns. ``labeled`` None decides from the header (a first column named
    ``label``, or 785 columns). Pixels must be integers 0–255 and labels integers 0–9;
    a bad row is an error naming the file, its line and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    _check_text(path)
    with open(path, newline="") as f:
        header = f.readline().strip().split(",")
    if header == [""]:
        raise DataError(f"{path}: the file is empty; expected a header line "
                        "'label,pixel0,...,pixel783' (train.csv) or 'pixel0,...,pixel783' (test.csv)")
    if labeled is None:
        labeled = header[0].strip().lower() == "label" or len(header) == PIXELS + 1
    ncol = PIXELS + (1 if labeled else 0)
    if len(header) != ncol:
        raise DataError(f"{path}: line 1 (header) has {len(header)} columns, expected {ncol} "
                        f"({'label + ' if labeled else ''}{PIXELS} pixels of a 28×28 image)")
    try:  # the fast path: numpy's C parser; on any problem, the slow scan below finds the exact cell
        with np.errstate(all="ignore"):
            data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
        ok = data.shape[1] == ncol if data.size else True
    except ValueError:
        ok = False
    if not ok:
        try:
            _scan_csv(path, header, ncol, labeled)  # raises with row and column
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not a text CSV file (a byte that is not UTF-8 text: {e.reason}); expected "
                            "the Kaggle digit-recognizer CSV") from None
        raise DataError(f"{path}: could not be parsed as {ncol} integer columns")  # pragma: no cover
    if data.size == 0:
        raise DataError(f"{path}: no data rows after the header")
    cols = data[:, 1:] if labeled else data
    y = data[:, 0] if labeled else None
    _check_ranges(path, header, cols, y)
    x = cols.astype(np.uint8).reshape(-1, SIDE, SIDE)
    return x, (y.astype(np.int64) if labeled else None)


def _check_text(path) -> None:
    """A DataError naming ``path`` unless it is ASCII/UTF-8 text without NUL bytes (a CSV)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    what = None
    nul = head.find(b"\0")
    if nul >= 0:
        what = f"it holds a NUL byte at offset {nul}"
    else:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            if len(head) < 1 << 16 or e.start < len(head) - 4:  # not merely a character cut by the block end
                what = f"byte 0x{head[e.start]:02x} at offset {e.start} is not UTF-8 text"
    if what:
        raise DataError(f"{path}: not a text CSV file ({what}); expected the Kaggle digit-recognizer CSV: a header "
                        "'label,pixel0,...,pixel783' and one image per line")


def _check_ranges(path, header, pixels, y):
    off = 1 if y is not None else 0
    if y is not None:
        bad = np.flatnonzero((y < 0) | (y > 9))
        if bad.size:
            r = int(bad[0])
            raise DataError(f"{path}: line {r + 2}, column '{header[0]}': label {int(y[r])} is outside 0–9")
    bad = np.argwhere((pixels < 0) | (pixels > 255))
    if bad.size:
        r, c = (int(v) for v in bad[0])
        raise DataError(f"{path}: line {r + 2}, column '{header[c + off]}' (column {c + off + 1}): "
                        f"pixel value {int(pixels[r, c])} is outside 0–255")


def _scan_csv(path, header, ncol, labeled):
    """Find the first bad row of a CSV and raise a DataError naming line and column."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != ncol:
                raise DataError(f"{path}: line {line} has {len(row)} columns, expected {ncol} "
                                f"(like the header)")
            for c, cell in enumerate(row):
                name = header[c] if c < len(header) else f"#{c + 1}"
                try:
                    v = int(cell.strip())
                except ValueError:
                    raise DataError(f"{path}: line {line}, column '{name}' (column {c + 1}): "
                                    f"{cell!r} is not an integer") from None
                if labeled and c == 0 and not 0 <= v <= 9:
                    raise DataError(f"{path}: line {line}, column '{name}': label {v} is outside 0–9")
                if (c > 0 or not labeled) and not 0 <= v <= 255:
                    raise DataError(f"{path}: line {line}, column '{name}' (column {c + 1}): "
                                    f"pixel value {v} is outside 0–255")


def write_kaggle_csv(path, x, y=None) -> Path:
    """Write images (N, 28, 28) uint8 (and labels) in the Kaggle layout; the inverse of read_kaggle_csv."""
    x = np.asarray(x).reshape(len(x), -1)
    if x.shape[1] != PIXELS:
        raise ValueError(f"Kaggle CSV images are 28×28 = {PIXELS} pixels, got {x.shape[1]}")
    header = ",".join(f"pixel{i}" for i in range(PIXELS))
    if y is not None:
        x = np.column_stack([np.asarray(y, np.int64), x])
        header = "label," + header
    path = Path(path)
    np.savetxt(path, x.astype(np.int64), fmt="%d", delimiter=",", header=header, comments="")
    return path


def write_submission(path, labels) -> Path:
    """Write a Kaggle submission: ``ImageId,Label`` with ImageId counted from 1 (atomically)."""
    from ..files import write_text

    labels = np.asarray(labels, np.int64).ravel()
    text = "ImageId,Label\n" + "".join(f"{i},{int(v)}\n" for i, v in enumerate(labels, start=1))
    return write_text(Path(path), text)  # atomically: an interrupted write keeps the old file whole


def load_kaggle(path, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """A Dataset from a labelled Kaggle train.csv: ``test_fraction`` of it held out as the test set."""
    x, y = read_kaggle_csv(path, labeled=True)
    if y is None:  # pragma: no cover - labeled=True
        raise DataError(f"{path}: no label column")
    whole = Dataset(x, y, x[:0], y[:0], name=Path(path).stem)
    held = whole.split_validation(test_fraction, seed)
    return dataclasses.replace(held, x_test=held.x_val, y_test=held.y_val, x_val=None, y_val=None)


# --- Keras mnist.npz and MATLAB .mat ---------------------------------------------------------
_KEYS = {
    "x_train": ("x_train", "X_train", "train_x", "trainX", "train_images", "train_X", "xtrain", "Xtrain"),
    "y_train": ("y_train", "Y_train", "train_y", "trainY", "train_labels", "train_Y", "ytrain", "Ytrain"),
    "x_test": ("x_test", "X_test", "test_x", "testX", "test_images", "test_X", "xtest", "Xtest"),
    "y_test": ("y_test", "Y_test", "test_y", "testY", "test_labels", "test_Y", "ytest", "Ytest"),
}


def _images(a, path, key) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 4 and 1 in (a.shape[1], a.shape[-1]):  # (N, 1, 28, 28) or (N, 28, 28, 1)
        a = a.reshape(a.shape[0], SIDE, SIDE) if a.size == a.shape[0] * PIXELS else a
    if a.ndim == 2 and a.shape[1] == PIXELS:
        a = a.reshape(-1, SIDE, SIDE)
    elif a.ndim == 2 and a.shape[0] == PIXELS:  # MATLAB's column-per-image layout
        a = a.T.reshape(-1, SIDE, SIDE)
    elif a.ndim == 3 and a.shape[:2] == (SIDE, SIDE) and a.shape[2] != SIDE:  # (28, 28, N)
        a = np.moveaxis(a, 2, 0)
    if a.ndim != 3 or a.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{path}: array {key!r} has shape {a.shape}; expected images (N, 28, 28) or (N, 784)")
    if a.dtype != np.uint8:
        a = pixels_to_uint8(a, f"{path}: array {key!r}")
    return np.ascontiguousarray(a)


_CONVERT = ("convert them to uint8 0–255 first, e.g. np.clip(np.rint(x * 255), 0, 255).astype(np.uint8) for "
            "images in [0, 1] (undo a normalisation first: x * std + mean)")


def pixels_to_uint8(a, where: str) -> np.ndarray:
    """Images of another dtype as uint8 0–255, or a DataError naming ``where``. Accepted: integers
    0–255; floats in [0, 1] (scaled by 255) or 0–255 (rounded); booleans (0 or 255). NaN/inf, values
    outside those ranges, and floats reaching just above 1 (is it [0, 1] or 0–255?) are errors,
    never clipped: a silent clip would train or predict on other images than the user's."""
    if a.dtype.kind == "b":
        return a.astype(np.uint8) * np.uint8(255)
    if a.dtype.kind not in "iuf":
        raise DataError(f"{where} holds {a.dtype} values, not pixel values; {_CONVERT}")
    if a.size == 0:
        return a.astype(np.uint8)
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            i = tuple(int(v) for v in np.argwhere(bad)[0])
            raise DataError(f"{where} holds a non-finite pixel value ({a[i]} at index {i}); images must be finite "
                            f"pixel values; {_CONVERT}")
    lo, hi = a.min().item(), a.max().item()
    if a.dtype.kind == "f" and lo >= 0 and hi <= 1:
        return np.rint(a.astype(np.float64) * 255.0).astype(np.uint8)  # images scaled to [0, 1]
    if lo < 0 or hi > 255 or (a.dtype.kind == "f" and hi < 2):
        scale = "0–255 (uint8, or integers / floats 0–255), or floats in [0, 1]"
        raise DataError(f"{where} holds pixel values from {lo:g} to {hi:g}; expected {scale}; {_CONVERT}")
    return np.rint(a).astype(np.uint8) if a.dtype.kind == "f" else a.astype(np.uint8)


def _labels(a, path, key, n) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2 and a.shape[1] == 10 and a.shape[0] == n:  # one-hot
        a = a.argmax(axis=1)
    a = a.reshape(-1)
    if len(a) != n:
        raise DataError(f"{path}: {key!r} holds {len(a)} labels for {n} images")
    if a.size and (not np.all(np.isfinite(a)) or np.any(a != np.round(a)) or a.min() < 0 or a.max() > 9):
        bad = next(int(i) for i, v in enumerate(a) if not (np.isfinite(v) and v == round(v) and 0 <= v <= 9))
        raise DataError(f"{path}: {key!r}[{bad}] = {a[bad].item()!r} is not a digit label 0–9")
    return a.astype(np.int64)


def _from_arrays(arrays: dict, path, kind: str) -> Dataset:
    found = {}
    for role, names in _KEYS.items():
        found[role] = next((k for k in names if k in arrays), None)
    if all(found.values()):
        x_tr = _images(arrays[found["x_train"]], path, found["x_train"])
        x_te = _images(arrays[found["x_test"]], path, found["x_test"])
        y_tr = _labels(arrays[found["y_train"]], path, found["y_train"], len(x_tr))
        y_te = _labels(arrays[found["y_test"]], path, found["y_test"], len(x_te))
        return Dataset(x_tr, y_tr, x_te, y_te, name=Path(path).stem)
    if "data" in arrays and "label" in arrays:  # mldata's mnist-original.mat: 70,000 images, first 60,000 train
        x = _images(arrays["data"], path, "data")
        y = _labels(arrays["label"], path, "label", len(x))
        cut = 60000 if len(x) == 70000 else int(round(len(x) * 6 / 7))
        return Dataset(x[:cut], y[:cut], x[cut:], y[cut:], name=Path(path).stem)
    have = sorted(k for k in arrays if not k.startswith("__"))
    missing = [f"{role} (e.g. {names[0]!r})" for role, names in _KEYS.items() if not found[role]]
    raise DataError(f"{path}: this {kind} file lacks the expected arrays: missing {', '.join(missing)}; "
                    f"it holds {have or 'no arrays'} (expected x_train, y_train, x_test, y_test "
                    f"— or 'data' and 'label' as in mnist-original.mat)")


def load_npz_dataset(path) -> Dataset:
    """A Dataset from a Keras-style ``mnist.npz`` (x_train, y_train, x_test, y_test); no pickle."""
    from ..files import load_npz

    path = Path(path)
    try:
        arrays = load_npz(path)  # FileNotFoundError when missing; pickle refused
    except ValueError as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        raise DataError(f"{path}: not a readable data .npz: it holds Python objects (which need pickle, never "
                        f"loaded by fastcnn) or is damaged ({cause}); save plain arrays: "
                        "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)") from e
    return _from_arrays(arrays, path, ".npz")


def load_mat(path) -> Dataset:
    """A Dataset from a MATLAB ``.mat`` file, read with SciPy (``pip install scipy``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        from scipy.io import loadmat
    except ImportError as e:
        raise DataError(f"{path}: reading .mat files needs SciPy: pip install 'fastcnn[mat]' "
                        "(or pip install scipy)") from e
    try:
        arrays = loadmat(str(path))
    except Exception as e:
        raise DataError(f"{path}: not a readable .mat file ({e})") from e
    return _from_arrays(arrays, path, ".mat")


def load_data(source=None, test_fraction: float = 0.2, seed: int = 0, classes=None) -> Dataset:
    """A Dataset from ``source``: None or a directory (MNIST idx files), ``.csv`` (Kaggle
    train.csv; ``test_fraction`` held out as the test set), ``.npz`` (Keras) or ``.mat``;
    restricted to ``classes`` (e.g. "0,1,2", see select_classes) when given. A training or test
    set without images is a DataError (every run is trained and scored on them)."""
    ds = _load(source, test_fraction, seed)
    if classes:
        return select_classes(ds, classes)
    where = source if source is not None else ds.name
    for part, x in (("training", ds.x_train), ("test", ds.x_test)):
        if len(x) == 0:
            raise DataError(f"{where}: the {part} set holds no images; fastcnn trains on the training set and "
                            "reports accuracy on the test set, so both need images")
    return ds


def _load(source, test_fraction: float, seed: int) -> Dataset:
    if source is None:
        return load_mnist()
    p = Path(source)
    suffix = p.suffix.lower()
    if p.is_dir() or suffix not in (".csv", ".npz", ".mat"):
        return load_mnist(p)
    if suffix == ".csv":
        return load_kaggle(p, test_fraction, seed)
    if suffix == ".npz":
        return load_npz_dataset(p)
    return load_mat(p)


# --- images to classify ----------------------------------------------------------------
def read_images(path) -> np.ndarray:
    """uint8 images (N, H, W) from an idx file (gzip or raw) or a ``.npy`` file; at least one image.
    (Whether H×W fits a model is the caller's check: fastcnn.inference.check_images.)"""
    src = Path(path)
    x = _read_npy(src) if src.suffix == ".npy" else read_idx(src)
    if x.dtype != np.uint8 or x.ndim != 3:
        hint = f"; {_CONVERT}" if x.ndim == 3 and x.dtype.kind in "fiu" else ""
        raise DataError(f"{src}: expected uint8 images of shape (N, 28, 28), got {x.dtype} {x.shape}{hint}")
    if len(x) == 0:
        raise DataError(f"{src}: holds no images (shape {x.shape})")
    return x


def _read_npy(src: Path) -> np.ndarray:
    """The one array of a .npy file, or a DataError saying what the file is instead."""
    if not src.is_file():
        raise FileNotFoundError(f"no such file: {src}")
    with open(src, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"PK":
        raise DataError(f"{src}: this is an .npz archive (several arrays), not a .npy array; save the images "
                        "alone with np.save('images.npy', x) (uint8, shape (N, 28, 28))")
    if magic != b"\x93NUMPY":
        what = "an empty file" if not magic else f"it starts with {magic.hex(' ')}, not the .npy magic 93 4e 55 4d 50 59"
        raise DataError(f"{src}: not a .npy file ({what}); save images with np.save('images.npy', x) "
                        "(uint8, shape (N, 28, 28)) or pass an idx file")
    try:
        return np.load(src, allow_pickle=False)
    except ValueError as e:
        raise DataError(f"{src}: not a plain .npy array ({e}); fastcnn never loads pickled objects") from None
    except (EOFError, OSError) as e:
        raise DataError(f"{src}: a damaged or truncated .npy file ({type(e).__name__}: {e})") from None


# --- class subsets ---------------------------------------------------------------------
def parse_classes(spec, option: str = "--classes") -> tuple:
    """``"0,1,2"`` (or a list of ints) -> (0, 1, 2); duplicates, non-digits or an empty list are errors."""
    if spec is None:
        return ()
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    items = [s for s in items if s != ""]
    if not items:
        raise ValueError(f"{option} names no class: give digits separated by commas, e.g. {option} 0,1,2")
    out = []
    for s in items:
        try:
            v = int(s)
        except (TypeError, ValueError):
            raise ValueError(f"{option}: {s!r} is not a digit 0–9") from None
        if isinstance(s, float) and s != v or not 0 <= v <= 9:
            raise ValueError(f"{option}: {s!r} is not a digit 0–9")
        if v in out:
            raise ValueError(f"{option} names the digit {v} twice: each class once, e.g. {option} 0,1,2")
        out.append(v)
    if len(out) < 2:
        raise ValueError(f"{option} names only the digit {out[0]}: a classifier needs at least two classes")
    return tuple(sorted(out))


def select_classes(ds: Dataset, classes) -> Dataset:
    """The samples of ``ds`` whose label is in ``classes`` (labels keep their digit values)."""
    keep = np.asarray(parse_classes(classes))

    def sub(x, y):
        if x is None:
            return None, None
        m = np.isin(np.asarray(y), keep)
        return x[m], y[m]

    x_tr, y_tr = sub(ds.x_train, ds.y_train)
    x_te, y_te = sub(ds.x_test, ds.y_test)
    x_va, y_va = sub(ds.x_val, ds.y_val)
    for part, y in (("training", y_tr), ("test", y_te)):
        if len(y) == 0:
            present = sorted(int(c) for c in np.unique(np.asarray(ds.y_train if part == "training" else ds.y_test)))
            raise DataError(f"--classes {','.join(map(str, keep))}: the {part} set of {ds.name} holds no such images "
                            f"(its classes: {', '.join(map(str, present)) or 'none, it is empty'})")
    name = f"{ds.name}[{''.join(map(str, keep))}]"
    return dataclasses.replace(ds, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
                               x_val=x_va, y_val=y_va, name=name)


def subset(ds: Dataset, fraction: float = 1.0, limit: int | None = None, seed: int = 0) -> Dataset:
    """A random ``fraction`` (or at most ``limit`` samples) of the training set, order kept."""
    n = len(ds.x_train)
    m = n if limit is None else min(n, int(limit))
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    m = min(m, max(1, int(round(fraction * n))))
    if m == n:
        return ds
    idx = np.sort(np.random.default_rng(seed).permutation(n)[:m])
    return dataclasses.replace(ds, x_train=ds.x_train[idx], y_train=ds.y_train[idx])
