"""The bundled MNIST, data directories of fake IDX files, checksums and validation splits."""
import gzip
import hashlib

import numpy as np
import pytest

from fastcnn.data import DataError, Dataset, load_mnist, write_idx
from fastcnn.data.mnist import FILES


def make_dir(d, n_train=12, n_test=5, hw=(6, 7), gz=True, sums=True, seed=0):
    """A fake data directory: four IDX files (+ SHA256SUMS of the decompressed bytes)."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, *hw), dtype=np.uint8),
              rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (n_test, *hw), dtype=np.uint8),
              rng.integers(0, 10, n_test, dtype=np.uint8)]
    lines = ["# comment line"]
    for i, (name, a) in enumerate(zip(FILES, arrays)):
        use_gz = gz if isinstance(gz, bool) else gz[i]
        p = write_idx(d / (name + (".gz" if use_gz else "")), a)
        raw = gzip.decompress(p.read_bytes()) if use_gz else p.read_bytes()
        lines.append(f"{hashlib.sha256(raw).hexdigest()}  {name}")
    if sums:
        (d / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return arrays


def test_bundled_mnist():
    ds = load_mnist()
    assert ds.name == "mnist"
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.y_train.shape == (60000,) and ds.x_test.shape == (10000, 28, 28)
    assert ds.y_test.shape == (10000,)
    counts = np.bincount(ds.y_train, minlength=10)
    assert counts.sum() == 60000 and counts[1] == 6742 and counts[5] == 5421
    assert np.bincount(ds.y_test, minlength=10)[0] == 980
    assert ds.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert ds.x_train.max() == 255 and ds.x_train[0, 0, 0] == 0
    assert not ds.x_train.flags.writeable  # shared by the cache
    again = load_mnist()
    assert again.x_train is ds.x_train and again is not ds  # cached arrays, fresh Dataset


def test_fake_dir_gz_and_raw(tmp_path):
    arrays = make_dir(tmp_path, gz=(True, False, False, True))
    ds = load_mnist(tmp_path)
    for got, want in zip((ds.x_train, ds.y_train, ds.x_test, ds.y_test), arrays):
        np.testing.assert_array_equal(got, want)
    assert ds.name == tmp_path.name and ds.x_train.shape == (12, 6, 7)


def test_env_var(tmp_path, monkeypatch):
    arrays = make_dir(tmp_path, n_train=9)
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path))
    ds = load_mnist()
    np.testing.assert_array_equal(ds.x_train, arrays[0])
    assert len(ds.y_train) == 9
    monkeypatch.setenv("FASTCNN_DATA", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="from FASTCNN_DATA"):
        load_mnist()


def test_missing_and_empty_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        load_mnist(tmp_path / "absent")
    assert all(f in str(e.value) for f in FILES) and "--data-dir" in str(e.value)
    with pytest.raises(DataError, match="is empty") as e:
        load_mnist(tmp_path)
    assert all(f in str(e.value) for f in FILES) and "FASTCNN_DATA" in str(e.value)
    make_dir(tmp_path)
    (tmp_path / (FILES[3] + ".gz")).unlink()
    with pytest.raises(DataError, match=f"lacks {FILES[3]}"):
        load_mnist(tmp_path)


def test_checksum_mismatch(tmp_path):
    arrays = make_dir(tmp_path, gz=False)
    load_mnist(tmp_path)  # verifies, and is cached
    bad = arrays[2].copy()
    bad[0, 0, 0] ^= 1
    write_idx(tmp_path / FILES[2], bad)  # same size: a damaged copy
    good = hashlib.sha256((tmp_path / FILES[2]).read_bytes()).hexdigest()
    with pytest.raises(DataError, match="checksum mismatch: the file is damaged") as e:
        load_mnist(tmp_path)
    msg = str(e.value)
    assert FILES[2] in msg and good in msg
    want = [ln.split()[0] for ln in (tmp_path / "SHA256SUMS").read_text().splitlines()
            if ln.endswith(FILES[2])][0]
    assert want in msg and want != good
    np.testing.assert_array_equal(load_mnist(tmp_path, verify=False).x_test, bad)


def test_no_sums_file_is_not_verified(tmp_path):
    make_dir(tmp_path, sums=False)
    assert load_mnist(tmp_path).x_train.shape == (12, 6, 7)


def test_count_mismatch_and_bad_shapes(tmp_path):
    make_dir(tmp_path, sums=False)
    write_idx(tmp_path / (FILES[1] + ".gz"), np.zeros(11, np.uint8))
    with pytest.raises(DataError, match="holds 12 images but .* holds 11 labels"):
        load_mnist(tmp_path)
    write_idx(tmp_path / (FILES[1] + ".gz"), np.zeros(12, np.uint8))
    write_idx(tmp_path / (FILES[0] + ".gz"), np.zeros((12, 6 * 7), np.uint8))
    with pytest.raises(DataError, match=r"images must be \(N, H, W\) uint8"):
        load_mnist(tmp_path)


def test_split_validation():
    x = np.arange(100, dtype=np.uint8).reshape(100, 1, 1).repeat(2, 1)
    ds = Dataset(x, np.arange(100), x[:10], np.arange(10), "toy")
    v = ds.split_validation(0.2, seed=3)
    assert v.x_val.shape == (20, 2, 1) and v.x_train.shape == (80, 2, 1) and ds.x_val is None
    tr, va = v.x_train[:, 0, 0].tolist(), v.x_val[:, 0, 0].tolist()
    assert set(tr).isdisjoint(va) and sorted(tr + va) == list(range(100))
    np.testing.assert_array_equal(v.y_val, v.x_val[:, 0, 0])  # labels follow their images
    assert v.x_test is ds.x_test and v.name == "toy"
    assert ds.split_validation(0.2, seed=3).y_val.tolist() == v.y_val.tolist()
    assert ds.split_validation(0.2, seed=4).y_val.tolist() != v.y_val.tolist()
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
            ds.split_validation(bad)


def test_split_bundled_mnist():
    v = load_mnist().split_validation(1 / 12, seed=0)
    assert len(v.x_train) == 55000 and len(v.x_val) == 5000 and len(v.y_val) == 5000
