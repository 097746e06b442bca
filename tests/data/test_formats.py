import numpy as np
import pytest

from fastcnn.data import DataError
from fastcnn.data import formats as F


def _imgs(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8)


def test_kaggle_csv_round_trip(tmp_path):
    x, y = _imgs(), np.array([3, 1, 4, 1, 5])
    F.write_kaggle_csv(tmp_path / "train.csv", x, y)
    head = (tmp_path / "train.csv").read_text().splitlines()[0]
    assert head.startswith("label,pixel0,pixel1") and head.endswith("pixel783")
    x2, y2 = F.read_kaggle_csv(tmp_path / "train.csv")
    assert np.array_equal(x2, x) and y2.tolist() == [3, 1, 4, 1, 5] and x2.dtype == np.uint8
    F.write_kaggle_csv(tmp_path / "test.csv", x)
    x3, y3 = F.read_kaggle_csv(tmp_path / "test.csv")
    assert y3 is None and np.array_equal(x3, x)


def _bad_csv(tmp_path, edit):
    x, y = _imgs(4), np.array([0, 1, 2, 3])
    p = F.write_kaggle_csv(tmp_path / "train.csv", x, y)
    lines = p.read_text().splitlines()
    edit(lines)
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("edit, msg", [
    (lambda l: l.__setitem__(3, l[3] + ",7"), "line 4 has 786 columns, expected 785"),
    (lambda l: l.__setitem__(2, l[2].rsplit(",", 1)[0]), "line 3 has 784 columns, expected 785"),
    (lambda l: l.__setitem__(2, "1,abc" + l[2][l[2].index(",", 2):]), "line 3, column 'pixel0' (column 2): 'abc' is not an integer"),
    (lambda l: l.__setitem__(4, "12" + l[4][1:]), "line 5, column 'label': label 12 is outside 0–9"),
    (lambda l: l.__setitem__(2, l[2].rsplit(",", 1)[0] + ",300"), "line 3, column 'pixel783' (column 785): pixel value 300 is outside 0–255"),
])
def test_bad_csv_rows_name_file_row_and_column(tmp_path, edit, msg):
    p = _bad_csv(tmp_path, edit)
    with pytest.raises(DataError) as e:
        F.read_kaggle_csv(p)
    assert str(p) in str(e.value) and msg in str(e.value)


def test_bad_csv_header_and_empty(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="line 1 .header. has 3 columns, expected 784"):
        F.read_kaggle_csv(p)
    p.write_text("")
    with pytest.raises(DataError, match="empty"):
        F.read_kaggle_csv(p)
    with pytest.raises(FileNotFoundError):
        F.read_kaggle_csv(tmp_path / "missing.csv")


def test_submission(tmp_path):
    p = F.write_submission(tmp_path / "sub.csv", [7, 2, 1])
    assert p.read_text() == "ImageId,Label\n1,7\n2,2\n3,1\n"


def test_load_kaggle_holds_out_test(tmp_path):
    x, y = _imgs(10), np.arange(10)
    F.write_kaggle_csv(tmp_path / "train.csv", x, y)
    ds = F.load_data(tmp_path / "train.csv")
    assert len(ds.x_train) == 8 and len(ds.x_test) == 2
    assert sorted(ds.y_train.tolist() + ds.y_test.tolist()) == list(range(10))


def test_keras_npz_and_missing_arrays(tmp_path):
    x, y = _imgs(6), np.array([0, 1, 2, 3, 4, 5])
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    ds = F.load_data(tmp_path / "mnist.npz")
    assert np.array_equal(ds.x_train, x) and ds.y_test.tolist() == [0, 1]
    np.savez(tmp_path / "flat.npz", x_train=x.reshape(6, 784).astype(np.float32) / 255, y_train=np.eye(10)[y],
             x_test=x[:2].reshape(2, 784), y_test=y[:2])
    ds = F.load_npz_dataset(tmp_path / "flat.npz")
    assert np.abs(ds.x_train.astype(int) - x).max() <= 1 and ds.y_train.tolist() == y.tolist()
    np.savez(tmp_path / "bad.npz", images=x, labels=y)
    with pytest.raises(DataError) as e:
        F.load_data(tmp_path / "bad.npz")
    assert "bad.npz" in str(e.value) and "x_train" in str(e.value) and "['images', 'labels']" in str(e.value)
    np.savez(tmp_path / "badlab.npz", x_train=x, y_train=y + 5, x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"'y_train'\[5\] = 10 is not a digit label"):
        F.load_data(tmp_path / "badlab.npz")


def test_mat(tmp_path):
    sio = pytest.importorskip("scipy.io")
    x, y = _imgs(6), np.array([0, 1, 2, 3, 4, 5])
    sio.savemat(tmp_path / "m.mat", {"trainX": x.reshape(6, 784), "trainY": y[None], "testX": x[:2].reshape(2, 784),
                                     "testY": y[None, :2]})
    ds = F.load_data(tmp_path / "m.mat")
    assert np.array_equal(ds.x_train, x) and ds.y_train.tolist() == y.tolist()
    sio.savemat(tmp_path / "bad.mat", {"foo": x.reshape(6, 784)})
    with pytest.raises(DataError, match="bad.mat: this .mat file lacks the expected arrays"):
        F.load_data(tmp_path / "bad.mat")


def test_mat_without_scipy_is_a_clear_error(tmp_path, monkeypatch):
    import sys
    (tmp_path / "m.mat").write_bytes(b"MATLAB 5.0")
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(DataError, match="needs SciPy"):
        F.load_data(tmp_path / "m.mat")


def test_classes():
    assert F.parse_classes("2, 0,1") == (0, 1, 2)
    assert F.parse_classes([3, 5]) == (3, 5)
    for bad, msg in (("1,1", "names the digit 1 twice"), ("", "names no class"), (",", "names no class"),
                     ("1,x", "'x' is not a digit"), ("1,10", "'10' is not a digit"), ("4", "only the digit 4")):
        with pytest.raises(ValueError, match="--classes") as e:
            F.parse_classes(bad)
        assert msg in str(e.value)
    from fastcnn.data import Dataset
    y = np.array([0, 1, 2, 3, 1, 0])
    ds = Dataset(_imgs(6), y, _imgs(6, 1), y[::-1].copy())
    sub = F.select_classes(ds, "0,1")
    assert sub.y_train.tolist() == [0, 1, 1, 0] and sub.y_test.tolist() == [0, 1, 1, 0]
    assert np.array_equal(sub.x_train, ds.x_train[[0, 1, 4, 5]]) and sub.name.endswith("[01]")
    with pytest.raises(DataError, match="no such images"):
        F.select_classes(ds, "8,9")
