"""IDX reading/writing: round trips and every malformed-file error."""
import gzip

import numpy as np
import pytest

from fastcnn.data import DataError, read_idx, write_idx


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    p = write_idx(tmp_path / f"a-idx3{suffix}", a)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    b = read_idx(p)
    assert b.dtype == a.dtype and b.shape == (3, 4, 5) and b.dtype.isnative
    np.testing.assert_array_equal(b, a)
    assert b.flags.writeable


def test_header_bytes_are_big_endian(tmp_path):
    p = write_idx(tmp_path / "l", np.array([1, 2, 258], dtype=np.int16))
    assert p.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 3, 0, 1, 0, 2, 1, 2])


def test_uint8_scalars_and_empty(tmp_path):
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "e", np.zeros((0, 28), np.uint8))),
                                  np.zeros((0, 28), np.uint8))
    assert read_idx(write_idx(tmp_path / "s", np.array([7, 9], np.uint8))).tolist() == [7, 9]


def test_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file.*--data-dir.*FASTCNN_DATA") as e:
        read_idx(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)


def test_wrong_magic(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"<!DOCTYPE html>")
    with pytest.raises(DataError, match="wrong magic number: found 3c 21 44 4f, expected 00 00"):
        read_idx(p)
    p.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))  # unknown type code
    with pytest.raises(DataError, match="found 00 00 07 01"):
        read_idx(p)


def test_truncated(tmp_path):
    data = write_idx(tmp_path / "a", np.arange(24, dtype=np.uint8).reshape(2, 3, 4)).read_bytes()
    (tmp_path / "t").write_bytes(data[:-5])
    msg = r"truncated IDX file: for shape \(2, 3, 4\) of uint8 expected 24 bytes of data, found 19"
    with pytest.raises(DataError, match=msg):
        read_idx(tmp_path / "t")
    (tmp_path / "h").write_bytes(data[:9])
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(tmp_path / "h")
    (tmp_path / "t.gz").write_bytes(gzip.compress(data[:-5]))
    with pytest.raises(DataError, match="found 19"):
        read_idx(tmp_path / "t.gz")


def test_trailing_garbage(tmp_path):
    data = write_idx(tmp_path / "a", np.arange(6, dtype=np.int32)).read_bytes()
    (tmp_path / "g").write_bytes(data + b"xyz")
    with pytest.raises(DataError, match="3 bytes of trailing garbage after the 24 bytes"):
        read_idx(tmp_path / "g")
    (tmp_path / "g.gz").write_bytes(gzip.compress(data) + b"junk")
    with pytest.raises(DataError, match="4 unexpected trailing bytes after the gzip data"):
        read_idx(tmp_path / "g.gz")


def test_corrupt_gzip(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    z = bytearray(write_idx(tmp_path / "a.gz", a).read_bytes())
    (tmp_path / "cut.gz").write_bytes(bytes(z[: len(z) // 2]))
    with pytest.raises(DataError, match="gzip stream ends early.*truncated"):
        read_idx(tmp_path / "cut.gz")
    z[len(z) // 2] ^= 0xFF
    (tmp_path / "bad.gz").write_bytes(bytes(z))
    with pytest.raises(DataError, match="corrupt gzip data"):
        read_idx(tmp_path / "bad.gz")


def test_multi_member_gzip(tmp_path):
    data = write_idx(tmp_path / "a", np.arange(10, dtype=np.uint8)).read_bytes()
    (tmp_path / "m.gz").write_bytes(gzip.compress(data[:7]) + gzip.compress(data[7:]))
    assert read_idx(tmp_path / "m.gz").tolist() == list(range(10))
