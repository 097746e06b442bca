"""normalize() against the float64 formula; BatchIterator batching, shuffling and resuming."""
import numpy as np
import pytest

from fastcnn.data import MEAN, STD, BatchIterator, normalize


def data(n=10, hw=(3, 4)):
    """x (n, *hw) uint8 whose first pixel is the sample index; y = index % 7."""
    x = np.random.default_rng(0).integers(0, 256, (n, *hw), dtype=np.uint8)
    x[:, 0, 0] = np.arange(n)
    return x, (np.arange(n) % 7).astype(np.uint8)


def ids(xb):
    """Sample indices of a normalised batch (its first pixel, undone)."""
    return np.rint((xb[:, 0, 0, 0] * STD + MEAN) * 255).astype(int).tolist()


def test_normalize_matches_float64_formula():
    x = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)
    y = normalize(x, np)
    ref = (x.astype(np.float64) / 255.0 - MEAN) / STD
    assert y.dtype == np.float32 and y.shape == (4, 1, 8, 8)
    assert np.abs(y[:, 0] - ref).max() < 1e-6
    assert y[0, 0, 0, 0] == np.float32(-MEAN / STD)


def test_normalize_nchw_float64_and_custom_stats():
    x = np.random.default_rng(1).integers(0, 256, (2, 3, 5, 5), dtype=np.uint8)
    y = normalize(x, np, dtype=np.float64, mean=0.5, std=0.25)
    assert y.dtype == np.float64 and y.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(y, (x / 255.0 - 0.5) / 0.25, rtol=0, atol=1e-12)


def test_normalize_rejects_bad_input():
    with pytest.raises(TypeError, match="uint8"):
        normalize(np.zeros((2, 3, 3), np.float32), np)
    with pytest.raises(ValueError, match="shape"):
        normalize(np.zeros((3, 3), np.uint8), np)


def test_batches_partial_last():
    x, y = data(10)
    it = BatchIterator(x, y, 4, shuffle=False)
    batches = list(it)
    assert len(it) == 3 and len(batches) == 3
    assert [b[0].shape for b in batches] == [(4, 1, 3, 4), (4, 1, 3, 4), (2, 1, 3, 4)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    assert sum((ids(xb) for xb, _ in batches), []) == list(range(10))
    np.testing.assert_array_equal(batches[2][1], [1, 2])
    np.testing.assert_array_equal(batches[1][0], normalize(x[4:8], np))
    dropped = BatchIterator(x, y, 4, shuffle=False, drop_last=True)
    assert len(dropped) == 2 and len(list(dropped)) == 2
    assert len(BatchIterator(x, y, 5)) == 2 and len(BatchIterator(x, y, 11)) == 1


def test_shuffle_epochs():
    x, y = data(23)
    it = BatchIterator(x, y, 5, seed=7)
    epochs = []
    for e in range(3):
        assert it.epoch == e
        order, labels = [], []
        for xb, yb in it:
            order += ids(xb)
            labels += yb.tolist()
        assert sorted(order) == list(range(23))  # each sample exactly once
        assert labels == [i % 7 for i in order]  # labels follow their images
        epochs.append(order)
    assert it.epoch == 3
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(23))
    again = BatchIterator(x, y, 5, seed=7)
    assert sum((ids(xb) for xb, _ in again), []) == epochs[0]  # same seed, same order
    again.set_epoch(2)
    assert sum((ids(xb) for xb, _ in again), []) == epochs[2]
    assert epochs[0] == np.random.default_rng(7).permutation(23).tolist()
    other = BatchIterator(x, y, 5, seed=8)
    assert sum((ids(xb) for xb, _ in other), []) != epochs[0]


def test_iter_from_is_the_tail():
    x, y = data(23)
    it = BatchIterator(x, y, 5, seed=3)
    it.set_epoch(4)
    full = list(it)
    assert it.epoch == 5
    it.set_epoch(4)
    tail = list(it.iter_from(2))
    assert len(tail) == 3 and it.epoch == 5
    for (xa, ya), (xb, yb) in zip(full[2:], tail):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert list(it.iter_from(len(it))) == [] and it.epoch == 6
    with pytest.raises(ValueError, match="step must be in"):
        it.iter_from(6)


def test_errors():
    x, y = data(10)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
            BatchIterator(x, y, bad)
    with pytest.raises(ValueError, match="10 samples but y holds 9"):
        BatchIterator(x, y[:9], 4)
    with pytest.raises(ValueError, match="empty"):
        BatchIterator(x[:0], y[:0], 4)
    with pytest.raises(ValueError, match="leaves no batch"):
        BatchIterator(x, y, 11, drop_last=True)


def test_cupy_matches_numpy():
    cp = pytest.importorskip("cupy")
    try:
        cp.cuda.runtime.getDeviceCount()
    except Exception:
        pytest.skip("no CUDA device")
    x, y = data(23)
    ref = list(BatchIterator(x, y, 5, seed=1))
    for xs in (x, cp.asarray(x)):  # data set on host or already on the device
        got = list(BatchIterator(xs, cp.asarray(y), 5, seed=1, xp=cp))
        for (xa, ya), (xb, yb) in zip(ref, got):
            assert isinstance(xb, cp.ndarray) and xb.dtype == cp.float32 and yb.dtype == cp.int64
            np.testing.assert_array_equal(xa, cp.asnumpy(xb))  # same bits
            np.testing.assert_array_equal(ya, cp.asnumpy(yb))
