"""The Trainer: run directories, checkpoints, resume, stop rules and bad input."""
import json

import numpy as np
import pytest

from fastcnn import models, nn
from fastcnn.config import TrainConfig
from fastcnn.data import Dataset, load_mnist
from fastcnn.files import load_npz
from fastcnn.train import Trainer, TrainingError


@pytest.fixture(scope="module")
def small():
    d = load_mnist()
    return Dataset(d.x_train[:1536], d.y_train[:1536], d.x_test[:500], d.y_test[:500], name="mnist-small")


def _cfg(tmp_path, **kw):
    base = dict(model="lenet5", epochs=1, batch_size=128, progress=False, out=str(tmp_path / "run"))
    base.update(kw)
    return TrainConfig(**base)


def test_run_directory_and_metrics(tmp_path, small):
    m = Trainer(_cfg(tmp_path, eval_every=6), data=small).fit()
    run = tmp_path / "run"
    for f in ("config.json", "history.json", "metrics.json", "model.npz", "state.npz"):
        assert (run / f).is_file(), f
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("test_accuracy", "train_seconds", "samples_per_second", "epochs", "steps", "params", "backend",
                "conv_algo", "seed", "target_reached_seconds"):
        assert key in saved, key
    assert saved["steps"] == 12 and saved["epochs"] == 1.0 and saved["params"] == 44426
    assert saved["backend"] == "numpy" and saved["status"] == "completed"
    assert saved["samples_per_second"] == pytest.approx(1536 / saved["train_seconds"])
    assert [h["step"] for h in json.loads((run / "history.json").read_text())] == [6, 12]
    assert m["test_accuracy"] == saved["test_accuracy"]


def test_same_seed_same_history(tmp_path, small):
    a = Trainer(_cfg(tmp_path / "a", eval_every=4, deterministic=True), data=small).fit()
    b = Trainer(_cfg(tmp_path / "b", eval_every=4, deterministic=True), data=small).fit()
    ha = json.loads((tmp_path / "a" / "run" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "run" / "history.json").read_text())
    strip = lambda h: [{k: v for k, v in r.items() if k != "train_seconds"} for r in h]  # noqa: E731
    assert strip(ha) == strip(hb)
    assert a["test_accuracy"] == b["test_accuracy"]


def test_resume_continues_exactly(tmp_path, small):
    """A run stopped mid-epoch (here by its time budget) and resumed ends with the weights of
    the same run done in one go: same batches, optimizer state and schedule position."""
    full = Trainer(_cfg(tmp_path / "full", epochs=2, deterministic=True), data=small)
    full.fit()
    cut = Trainer(_cfg(tmp_path / "cut", epochs=2, time_budget=0.02, deterministic=True), data=small)
    cut.fit()
    assert 0 < cut.state["step"] < 24
    resumed = Trainer.resume(tmp_path / "cut" / "run", data=small, time_budget=1e9)
    resumed.fit()
    assert resumed.state["step"] == 24
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)


def test_target_accuracy_stops(tmp_path, small):
    m = Trainer(_cfg(tmp_path, epochs=3, eval_every=2, target_acc=0.5), data=small).fit()
    assert m["status"] == "target_reached"
    assert m["test_accuracy"] >= 0.5 and m["target_reached_seconds"] is not None
    assert m["steps"] < 36


def test_time_budget_stops(tmp_path, small):
    m = Trainer(_cfg(tmp_path, epochs=50, time_budget=0.05), data=small).fit()
    assert m["status"] == "time_budget" and m["epochs"] < 50


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, small):
    t = Trainer(_cfg(tmp_path, optimizer="sgd", lr=1e4, eval_every=1), data=small)
    with pytest.raises(TrainingError, match=r"at step \d+"):
        t.fit()
    state = load_npz(tmp_path / "run" / "model.npz")
    assert all(np.isfinite(v).all() for k, v in state.items() if not k.startswith("__"))
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "diverged"


def test_unwritable_run_directory(tmp_path, small):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(TrainingError, match="cannot write the run directory"):
        Trainer(_cfg(tmp_path, out=str(blocker / "run")), data=small).fit()


@pytest.mark.parametrize("kw,msg", [
    (dict(lr=0), "learning rate must be > 0"), (dict(lr=-1.0), "learning rate"),
    (dict(batch_size=0), "batch size"), (dict(target_acc=0), r"\(0, 1\]"), (dict(target_acc=97), r"\(0, 1\]"),
    (dict(model="resnet"), "unknown model"), (dict(backend="tpu"), "unknown backend"),
    (dict(optimizer="rmsprop"), "unknown optimizer"), (dict(schedule="warmup"), "unknown schedule"),
    (dict(conv_algo="fft"), "unknown conv algorithm"), (dict(time_budget=0), "time budget"),
])
def test_bad_settings_are_clear_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(**kw).resolved()


def test_checkpoint_round_trip_without_pickle(tmp_path):
    m = models.build("compact", seed=4)
    m.layers[9].running_mean[...] = 0.25  # a buffer, saved too
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    m2 = models.build("compact", seed=5).load(tmp_path / "m.npz")
    for p, q in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    np.testing.assert_array_equal(m2.layers[9].running_mean, 0.25)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(m.eval().forward(x), m2.eval().forward(x))


def test_loading_another_architecture_names_the_layer(tmp_path):
    models.build("lenet5").save(tmp_path / "l.npz")
    with pytest.raises(ValueError, match="layer 0 is Conv2D in the checkpoint and Flatten in the model"):
        models.build("mlp").load(tmp_path / "l.npz")
    other = nn.Sequential(nn.Conv2D(1, 6, 5), nn.ReLU(), nn.MaxPool2D(2), nn.Conv2D(6, 8, 5), nn.ReLU(),
                          nn.MaxPool2D(2), nn.Flatten(), nn.Linear(128, 120), nn.ReLU(), nn.Linear(120, 84),
                          nn.ReLU(), nn.Linear(84, 10))
    with pytest.raises(ValueError, match=r"layer 3 \(Conv2D#3\) weight has shape \(16, 6, 5, 5\) in the checkpoint"):
        other.load(tmp_path / "l.npz")


def test_shapes_that_do_not_chain_name_the_layer():
    with pytest.raises(nn.ShapeError, match=r"layer 4 \(Linear#4\).*expects 100 features"):
        nn.Sequential(nn.Conv2D(1, 4, 3), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Linear(100, 10),
                      input_shape=(1, 28, 28))
    with pytest.raises(nn.ShapeError, match="layer 1"):
        nn.Sequential(nn.Flatten(), nn.Conv2D(1, 2, 3)).summary((1, 8, 8))


def test_summary_counts_parameters():
    s = models.build("compact").summary()
    assert "total parameters: 20,994" in s
    assert models.build("lenet5").num_params() == 44426


def test_he_and_xavier_initialisation():
    m = models.build("lenet5", seed=0)
    w_relu = m.layers[7].weight.data  # Linear 256 -> 120, followed by ReLU: He, std sqrt(2/256)
    assert w_relu.std() == pytest.approx(np.sqrt(2 / 256), rel=0.05)
    w_last = m.layers[11].weight.data  # Linear 84 -> 10, no activation after: Xavier uniform
    lim = np.sqrt(6 / (84 + 10))
    assert np.abs(w_last).max() <= lim and w_last.std() == pytest.approx(lim / np.sqrt(3), rel=0.1)
    assert w_relu.dtype == np.float32
    a, b = models.build("lenet5", seed=3), models.build("lenet5", seed=3)
    assert all((p.data == q.data).all() for p, q in zip(a.parameters(), b.parameters()))


def test_ctrl_c_stops_cleanly_after_saving(tmp_path, small):
    t = Trainer(_cfg(tmp_path, epochs=2, deterministic=True), data=small)
    real_step, calls = t.optimizer.step, []

    def step():
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real_step()

    t.optimizer.step = step
    m = t.fit()
    assert m["status"] == "interrupted" and m["steps"] == 4
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "interrupted"
    resumed = Trainer.resume(tmp_path / "run", data=small)
    assert resumed.state["step"] == 4
    resumed.fit()
    assert resumed.state["step"] == 24


def test_default_evaluations_fall_on_an_epochs_fifths(tmp_path, small):
    """12 steps an epoch, evaluated at round(k·12/5) = 2, 5, 7, 10, 12: no two evaluations a
    few steps apart at the epoch's end (every 12 // 5 = 2 steps gave 2, 4, 6, 8, 10 and 12)."""
    Trainer(_cfg(tmp_path, epochs=2, target_acc=1.0), data=small).fit()
    steps = [h["step"] for h in json.loads((tmp_path / "run" / "history.json").read_text())]
    assert steps == [2, 5, 7, 10, 12, 14, 17, 19, 22, 24]


def test_tta_is_the_final_evaluations_own_column(tmp_path, small, monkeypatch):
    """Evaluations during training are plain (every stop rule watches them); --tta adds the final
    weights' test-time-augmented accuracy as test_accuracy_tta, computed once."""
    import fastcnn.train as train_mod
    calls = []
    real = train_mod.evaluate

    def counted(model, x, y, tta=0, **kw):
        calls.append(tta)
        return real(model, x, y, tta=tta, **kw)
    monkeypatch.setattr(train_mod, "evaluate", counted)
    m = Trainer(_cfg(tmp_path, eval_every=6, tta=1), data=small).fit()
    assert calls == [0, 0, 1]
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert "test_accuracy_tta" not in hist[0] and hist[-1]["test_accuracy_tta"] == m["test_accuracy_tta"]
    assert 0 < m["test_accuracy_tta"] <= 1 and m["watched"] == "test"


def test_a_validation_split_is_what_the_target_watches(tmp_path, small):
    m = Trainer(_cfg(tmp_path, val_fraction=0.1, eval_every=6), data=small).fit()
    assert m["watched"] == "validation" and m["test_accuracy_tta"] is None
