"""Files written atomically (temp file + rename) and read without pickle.

    write_text(path, "...")          # also save_json, save_npz, save_bytes, write_atomic(path, write)
    write_group([(path, write), ...])   # several files: all written first, then renamed in order
    arrays = load_npz(path)          # name -> numpy array; pickle refused
    text = json_text(obj)            # strict JSON: NaN and ±inf become null

Every JSON file fastcnn writes goes through ``json_text`` (strict parsers such as JavaScript's
``JSON.parse`` reject NaN and Infinity). A write that fails (a full disk, a read-only folder)
raises ``WriteError``, an OSError whose message names the file and the cause, and leaves the
old file as it was.
"""
from __future__ import annotations

import errno
import json
import math
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
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


class WriteError(OSError):
    """A file could not be written: the message names the file and the cause (``errno`` kept)."""

    def __init__(self, path, cause: OSError):
        why = cause.strerror or str(cause)
        if cause.errno == errno.ENOSPC:
            why += " (the disk is full: free some space)"
        super().__init__(cause.errno, why, str(path))
        self.message = f"cannot write {path}: {why}"

    def __str__(self) -> str:
        return self.message


def temp_prefix(name: str) -> str:
    """The start of the temporary files' names of ``name`` (``.NAME.`` + random + ``.tmp``)."""
    return f".{name}."


def _write_temp(path: Path, write) -> str:
    """``write(f)`` into a new temporary file beside ``path`` (fsynced); returns its name.
    The temporary file is removed again when anything fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as e:  # a read-only or missing folder, a file in the way
        raise WriteError(path, e) from e
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        _unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(path, e) from e
        raise
    return tmp


def _unlink(name) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


@contextmanager
def interrupts_deferred():
    """Ctrl-C (SIGINT) held back for the block and raised as KeyboardInterrupt after it, so that
    a block of renames is never cut in the middle. The handler is restored afterwards; outside
    the main thread, or when someone else handles SIGINT, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    caught = []
    signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


def write_atomic(path, write) -> Path:
    """Write ``path`` through a temporary file in the same folder, then rename it into place, so
    a reader never sees half a file and a crash leaves the old one. The file gets the mode an
    ordinary ``open`` would give it (0o666 less the umask), not the temporary file's 0o600.
    A failure raises WriteError naming ``path``."""
    return write_group([(path, write)])[0]


def write_group(items) -> list:
    """Write several files as one unit: ``items`` is a list of (path, write) pairs. Every file is
    first written in full to a temporary name (a failure here, e.g. a full disk, removes the
    temporary files and changes nothing); only then are they renamed into place, in the given
    order, with Ctrl-C held back (renames need no space and take microseconds). A reader that
    must know whether the group is complete puts its commit record last."""
    done = []
    try:
        for path, write in items:
            path = Path(path)
            done.append((path, _write_temp(path, write)))
    except BaseException:
        for _, tmp in done:
            _unlink(tmp)
        raise
    with interrupts_deferred():
        for i, (path, tmp) in enumerate(done):
            try:
                os.replace(tmp, path)
            except OSError as e:
                for _, rest in done[i:]:
                    _unlink(rest)
                raise WriteError(path, e) from e
    return [p for p, _ in done]


def remove_temporaries(folder, names) -> list:
    """Remove the temporary files a killed writer left in ``folder`` for the files ``names``
    (``.NAME.*.tmp``); returns the paths removed."""
    folder = Path(folder)
    gone = []
    if not folder.is_dir():
        return gone
    prefixes = tuple(temp_prefix(n) for n in names)
    for p in folder.iterdir():
        if p.name.startswith(prefixes) and p.name.endswith(".tmp") and p.is_file():
            _unlink(p)
            gone.append(p)
    return gone


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
    """Write ``obj`` as indented strict JSON (``json_text``) to ``path`` atomically."""
    data = json_text(obj, indent=2).encode()
    return write_atomic(path, lambda f: f.write(data))


def json_text(obj, indent=None) -> str:
    """``obj`` as strict JSON text (ends with a newline when indented): NaN, inf and -inf become
    null (a missing value), NumPy scalars and arrays become numbers and lists, paths strings,
    tuples lists. Every JSON document fastcnn writes is made here."""
    text = json.dumps(_strict(obj), indent=indent, allow_nan=False)
    return text + "\n" if indent is not None else text


def _strict(o):
    """``o`` with every non-finite float replaced by None and NumPy values made plain."""
    if isinstance(o, dict):
        return {str(k) if not isinstance(k, str) else k: _strict(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_strict(v) for v in o]
    if isinstance(o, np.ndarray):
        return _strict(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    if o is None or isinstance(o, str):
        return o
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def save_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomic(path, lambda f: f.write(data))
