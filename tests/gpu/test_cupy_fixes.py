"""What crashed or misled on real CuPy (issue 20), each reproduced on the stand-in, which now behaves
as CuPy does where it matters (``.data`` is a memory pointer, no ``put_along_axis``, ...)."""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn import backend, nn
from fastcnn.conv import cuda_conv
from fastcnn.testing import fake_cupy


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("FASTCNN_FAKE_CUPY", "1")
    monkeypatch.setattr(cuda_conv, "_reason", [])
    return backend.get("cupy")


def _bn_model():
    return nn.Sequential(nn.Conv2D(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 6 * 6, 4), seed=0, input_shape=(1, 6, 6))


def test_load_state_dict_with_batch_norm_buffers_on_the_device(fake):
    """A CuPy array's ``.data`` is its memory pointer: buffers must not be taken for Parameters."""
    src = _bn_model()
    src.layers[1].running_mean[...] = np.arange(3, dtype=np.float32)
    src.layers[1].running_var[...] = 2.0
    state = src.state_dict()
    model = _bn_model().to(fake)
    assert isinstance(model.layers[1].running_mean, fake.ndarray) and hasattr(model.layers[1].running_mean, "data")
    model.load_state_dict(state)
    np.testing.assert_array_equal(model.layers[1].running_mean.get(), [0, 1, 2])
    np.testing.assert_array_equal(model.layers[1].running_var.get(), [2, 2, 2])
    np.testing.assert_array_equal(model.layers[0].weight.data.get(), src.layers[0].weight.data)
    back = model.state_dict()
    for k, v in state.items():
        np.testing.assert_array_equal(back[k], v, err_msg=k)


def test_naive_max_pool_backward_on_the_device_matches_numpy(fake):
    """pool/naive.py used put_along_axis (CuPy 14 only); now a one-hot both have."""
    from fastcnn.pool import naive

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    dy = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    y, cache = naive.forward(x, (2, 2), (2, 2), (0, 0), "max")
    dx = naive.backward(dy, cache)
    yd, cached = naive.forward(fake.asarray(x), (2, 2), (2, 2), (0, 0), "max")
    dxd = naive.backward(fake.asarray(dy), cached)
    np.testing.assert_array_equal(yd.get(), y)
    np.testing.assert_array_equal(dxd.get(), dx)


def test_stand_in_has_no_put_along_axis():
    assert not hasattr(fake_cupy, "put_along_axis")


# --- timing: every clock read that train_seconds is used at follows a device sync ------------------
def _trainer(tmp_path, **cfg):
    from fastcnn.config import TrainConfig
    from fastcnn.data import Dataset, load_mnist
    from fastcnn.train import Trainer

    d = load_mnist()
    data = Dataset(d.x_train[:160], d.y_train[:160], d.x_test[:32], d.y_test[:32])
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 10), seed=0, input_shape=(1, 28, 28))
    base = dict(backend="cupy", epochs=1, batch_size=16, progress=False, optimizer="sgd", lr=0.01, schedule="none",
                out=str(tmp_path / "run"), tta=0)
    return Trainer(TrainConfig(**{**base, **cfg}), model=model, data=data)


def test_evaluations_and_logs_start_after_a_sync_and_other_steps_do_not_sync(fake, monkeypatch, tmp_path):
    """10 steps, log every 4, evaluate every 3: the device is synchronised on steps 3, 4, 6, 8, 9, 10
    (before their clock read, so queued work is charged to training, not to the evaluation), never on
    the others."""
    import fastcnn.train as train_mod

    events = []
    step = train_mod.train_step
    monkeypatch.setattr(train_mod, "train_step", lambda *a, **k: (events.append("step"), step(*a, **k))[1])
    sync = backend.synchronize
    monkeypatch.setattr(backend, "synchronize", lambda xp: (events.append("sync"), sync(xp))[1])
    t = _trainer(tmp_path, log_every=4, eval_every=3)
    ev = t.evaluate
    monkeypatch.setattr(t, "evaluate", lambda: (events.append("eval"), ev())[1])
    events.clear()  # the warm-up's own steps and sync
    t.fit()
    steps = [i for i, e in enumerate(events) if e == "step"]
    assert len(steps) == 10
    synced = [n + 1 for n, i in enumerate(steps) if "sync" in events[i + 1:(steps[n + 1] if n + 1 < len(steps) else None)]]
    assert synced == [3, 4, 6, 8, 9, 10], events
    for i, e in enumerate(events):
        if e == "eval":
            last_step = max(j for j in steps if j < i)
            assert "sync" in events[last_step:i], f"evaluation at event {i} started on unsynchronised work"


def test_time_budget_is_checked_on_synchronised_steps_on_the_device(fake, tmp_path):
    t = _trainer(tmp_path, log_every=1000, eval_every=3, time_budget=1e-9)
    m = t.fit()
    assert m["status"] == "time_budget" and m["steps"] == 3  # the first synchronised step
    t = _trainer(tmp_path, backend="numpy", log_every=1000, eval_every=3, time_budget=1e-9, out=str(tmp_path / "np"))
    m = t.fit()
    assert m["status"] == "time_budget" and m["steps"] == 1  # the CPU has nothing queued: every step


# --- labels out of range: CuPy's indexing wraps them around --------------------------------------------
def test_stand_in_indexing_wraps_like_cupy(fake):
    a = fake.asarray(np.array([10.0, 20.0, 30.0], np.float32))
    np.testing.assert_array_equal(a[fake.asarray(np.array([3, -4, 1]))].get(), [10, 30, 20])
    m = fake.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(m[fake.arange(2), fake.asarray(np.array([3, 4]))].get(), [0, 4])
    np.testing.assert_array_equal(fake.take_along_axis(m, fake.asarray(np.array([[3], [5]])), axis=1).get(), [[0], [5]])


def test_trainer_checks_labels_once_on_the_host(tmp_path):
    from fastcnn.config import TrainConfig
    from fastcnn.data import DataError, Dataset, load_mnist
    from fastcnn.train import Trainer

    d = load_mnist()
    y_test = d.y_test[:32].copy()
    y_test[7] = 10
    data = Dataset(d.x_train[:64], d.y_train[:64], d.x_test[:32], y_test)
    with pytest.raises(DataError, match=r"y_test\[7\] = 10 is outside 0–9 .*10 outputs"):
        Trainer(TrainConfig(backend="numpy", epochs=1, progress=False, out=str(tmp_path / "r")), data=data)
    y_train = d.y_train[:64].astype(np.int64)
    y_train[3] = -1
    with pytest.raises(DataError, match=r"y_train\[3\] = -1"):
        Dataset(d.x_train[:64], y_train, d.x_test[:32], d.y_test[:32]).check_labels(10)
    Dataset(d.x_train[:64], d.y_train[:64], d.x_test[:32], d.y_test[:32]).check_labels(10)  # fine


def test_loss_of_an_out_of_range_label_is_nan_on_the_device_without_a_sync(fake):
    """A user's own loop on CuPy: the loss and the bad samples' gradients are NaN (not the loss of the
    class the index wrapped to), the other samples' gradients are untouched, and nothing is read back."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 5)).astype(np.float32)
    good = np.array([0, 4, 2, 1])
    ref = nn.SoftmaxCrossEntropy()
    want_loss, want_grad = float(ref(z, good)), ref.backward()
    for bad_label in (5, -1, 7):
        loss_fn = nn.SoftmaxCrossEntropy()
        labels = good.copy()
        labels[2] = bad_label
        zd, yd = fake.asarray(z), fake.asarray(labels)
        with fake_cupy.counting() as c:
            loss = loss_fn(zd, yd)
            g = loss_fn.backward()
        assert c["syncs"] == 0 and c["d2h"] == 0
        assert np.isnan(float(loss))
        g = g.get()
        assert np.isnan(g[2]).all() and np.isfinite(np.delete(g, 2, axis=0)).all()
        np.testing.assert_allclose(np.delete(g, 2, axis=0), np.delete(want_grad, 2, axis=0), rtol=1e-6)
    loss_fn = nn.SoftmaxCrossEntropy()
    np.testing.assert_allclose(float(loss_fn(fake.asarray(z), fake.asarray(good))), want_loss, rtol=1e-6)
    with pytest.raises(ValueError, match=r"labels\[2\] = -1 is outside 0–4"):
        nn.SoftmaxCrossEntropy()(z, np.array([0, 4, -1, 1]))  # NumPy: an error, said plainly


def test_peak_device_memory_is_a_peak_not_the_pool_now(fake, monkeypatch, tmp_path):
    """Blocks freed late in the run (free_all_blocks, as CuPy does on an out-of-memory retry) do not
    lower the reported peak, which bounds every step's arrays from above."""
    import fastcnn.train as train_mod

    pool = fake.get_default_memory_pool()
    used = []
    step = train_mod.train_step

    def traced(*a, **k):
        out = step(*a, **k)
        used.append(pool.used_bytes())
        return out

    monkeypatch.setattr(train_mod, "train_step", traced)
    t = _trainer(tmp_path, log_every=2, eval_every=5)
    ev = t.evaluate

    def evaluate_then_free():
        r = ev()
        pool.free_all_blocks()
        return r

    monkeypatch.setattr(t, "evaluate", evaluate_then_free)
    m = t.fit()
    assert m["peak_device_memory_bytes"] >= max(used) > 0
    assert m["peak_device_memory_bytes"] > pool.total_bytes()  # the pool now holds less than at its peak
