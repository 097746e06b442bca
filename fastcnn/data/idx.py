"""The IDX file format of MNIST (raw or gzip-compressed), read and written.

Layout, all big-endian: two zero bytes, a dtype code, the number of dimensions
``ndim``, then ``ndim`` uint32 sizes, then the data in C order. A file that
starts with the gzip magic (1f 8b) is decompressed first.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..backend import as_numpy
from ..files import write_atomic

GZIP_MAGIC = b"\x1f\x8b"
# IDX dtype code -> big-endian dtype of the data on disk
CODES = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in CODES.items()}
_HOW_TO_FIX = ("point fastcnn at the directory that holds the IDX files with "
               "--data-dir DIR or the FASTCNN_DATA environment variable")


class DataError(ValueError):
    """A data file or directory is missing, malformed or damaged."""


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a writable numpy array of its own dtype and shape.

    uint8 data stay uint8 (no float conversion); multi-byte types come back native-endian.
    """
    arr = parse_idx(read_bytes(path), str(path))
    return arr if arr.flags.writeable else arr.copy()


def write_idx(path, array) -> Path:
    """Write ``array`` (any shape; uint8, int8, int16, int32, float32 or float64) as IDX.

    Gzip-compressed when ``path`` ends in ``.gz``, raw otherwise; written atomically.
    """
    a = np.ascontiguousarray(as_numpy(array))
    code = _CODE_OF.get((a.dtype.kind, a.dtype.itemsize))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {a.dtype}: use uint8, int8, int16, int32, "
                         "float32 or float64 (e.g. labels.astype(np.int32))")
    if a.ndim > 255 or any(s >= 2**32 for s in a.shape):
        raise ValueError(f"IDX cannot store shape {a.shape} (at most 255 dims of < 2**32)")
    data = (bytes([0, 0, code, a.ndim]) + np.array(a.shape, ">u4").tobytes()
            + a.astype(CODES[code], copy=False).tobytes())
    if str(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return write_atomic(path, lambda f: f.write(data))


def read_bytes(path) -> bytes:
    """The file's bytes, decompressed when it starts with the gzip magic."""
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "no such file"
        raise DataError(f"{p}: {what}; {_HOW_TO_FIX}")
    raw = p.read_bytes()
    return _gunzip(raw, p) if raw[:2] == GZIP_MAGIC else raw


def _gunzip(raw: bytes, p: Path) -> bytes:
    """Decompress all gzip members of ``raw`` (zlib: much faster than gzip on Python 3.11)."""
    out = []
    while True:
        d = zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(raw))
        except zlib.error as e:
            raise DataError(f"{p}: corrupt gzip data ({e}); the file is damaged: "
                            "download or copy it again") from e
        if not d.eof:
            raise DataError(f"{p}: the gzip stream ends early: the file is truncated; "
                            "download or copy it again")
        raw = d.unused_data
        if raw[:2] == GZIP_MAGIC:
            continue  # another gzip member
        if raw.strip(b"\0"):
            raise DataError(f"{p}: {len(raw)} unexpected trailing bytes after the gzip data")
        return b"".join(out)


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array (read-only view of ``data`` for 1-byte types)."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in CODES:
        found = data[:4].hex(" ") or "an empty file"
        raise DataError(
            f"{source}: not an IDX file: wrong magic number: found {found}, expected "
            "00 00 <type> <ndim> with type 08 (uint8), 09 (int8), 0b (int16), 0c (int32), "
            "0d (float32) or 0e (float64), e.g. 00 00 08 03 for MNIST images")
    dtype, ndim = CODES[data[2]], data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(f"{source}: truncated IDX header: {ndim} dimensions need "
                        f"{start} header bytes, found {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, 4))
    need, have = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, len(data) - start
    what = f"shape {shape} of {dtype.newbyteorder('=')}"
    if have < need:
        raise DataError(f"{source}: truncated IDX file: for {what} expected {need} bytes of "
                        f"data, found {have}; the file is damaged or incompletely copied")
    if have > need:
        raise DataError(f"{source}: {have - need} bytes of trailing garbage after the {need} "
                        f"bytes of data for {what}")
    arr = np.frombuffer(data, dtype, need // dtype.itemsize, start).reshape(shape)
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))
