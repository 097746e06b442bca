"""Files written atomically (temp file + rename) and read without pickle.

    write_text(path, "...")          # also save_json, save_npz, save_bytes, write_atomic(path, write)
    arrays = load_npz(path)          # name -> numpy array; pickle refused
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _umask() -> int:
    """The process umask, read without changing it where the system tells it (Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read-and-restore
    os.umask(mask)
    return mask


def write_atomic(path, write) -> Path:
    """Write ``path`` through a temporary file in the same folder, then rename it into place, so
    a reader never sees half a file and a crash leaves the old one. The file gets the mode an
    ordinary ``open`` would give it (0o666 less the umask), not the temporary file's 0o600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode()
    return write_atomic(path, lambda f: f.write(data))


def save_npz(path, arrays: dict) -> Path:
    """Write ``arrays`` (name -> numpy array, no object dtype) to ``path`` atomically."""
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def load_npz(path) -> dict:
    """Read an .npz written by ``save_npz`` (pickle refused) into a dict of arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        raise ValueError(f"{path} is not a fastcnn checkpoint (it needs pickle or is damaged): {e}") from e
    except Exception as e:  # zipfile.BadZipFile, OSError ...
        raise ValueError(f"{path} is not a readable .npz checkpoint: {e}") from e


def save_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    data = (json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n").encode()
    return write_atomic(path, lambda f: f.write(data))


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def save_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomic(path, lambda f: f.write(data))
