"""The launch budget of a GPU training step, counted by the CuPy stand-in (issue 20, goal 2).

On a GPU a small network's step costs what it launches: so an ordinary step (one that neither
logs nor evaluates) of LeNet-5 with fast99's recipe issues at most 40 launched operations, the
networks with batch norm (fast99's own — LeNet-5 with a batch norm after each pooling — compact,
lab-best) at most 60, with no host synchronisation and no transfer — through the
Trainer's real loop and through the README's plain loop. The test set is uploaded once per run,
augmentation stays on the device, and every custom kernel is first called in the warm-up (where
CuPy compiles it), never in a timed step. benchmarks/gpu_launches.py writes the table
(benchmarks/results/gpu_launches.md).
"""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn import gpu_kernels, models, nn, optim
from fastcnn.config import TrainConfig
from fastcnn.data import BatchIterator, Dataset, load_mnist
from fastcnn.testing import fake_cupy as fc
from fastcnn.train import Trainer

#: case -> (the recipe's preset, the network's preset, the budget)
CASES = {"lenet5 (fast99's recipe)": ("fast99", "lenet5", 40), "lenet5": ("lenet5", "lenet5", 40),
         "fast99": ("fast99", "fast99", 60), "compact": ("compact", "compact", 60),
         "lab-best": ("lab-best", "lab-best", 60)}


@pytest.fixture(autouse=True)
def stand_in(monkeypatch):
    monkeypatch.setenv("FASTCNN_FAKE_CUPY", "1")


@pytest.fixture(scope="module")
def small():
    d = load_mnist()
    return Dataset(d.x_train[:640], d.y_train[:640], d.x_test[:100], d.y_test[:100])


@pytest.fixture
def kernel_calls(monkeypatch):
    """The custom kernels called so far: (name, dtype) pairs."""
    calls, build = set(), gpu_kernels.kernel

    def kernel(xp, name, dtype=None):
        k = build(xp, name, dtype)

        def call(*args, **kw):
            calls.add((name, dtype))
            return k(*args, **kw)

        return call

    monkeypatch.setattr(gpu_kernels, "kernel", kernel)
    return calls


@pytest.mark.parametrize("case", list(CASES))
def test_an_ordinary_step_keeps_the_budget(case, small, tmp_path, kernel_calls):
    # the preset's recipe (optimizer, batch, smoothing, augmentation, EMA, TTA), evaluated at the epoch's end
    preset, network, budget = CASES[case]
    t = Trainer(TrainConfig(model=preset, backend="cupy", epochs=1, progress=False, target_acc=None, eval_every=0,
                            out=str(tmp_path / "run")), data=small, model=models.build(network))
    marks, orig = [], t.batches.iter_from

    def iter_from(step):
        marks.clear()
        for b in orig(step):
            marks.append(fc.counters())
            yield b
        marks.append(fc.counters())

    t.batches.iter_from = iter_from
    t._warmup()
    warm = set(kernel_calls)
    assert ("adam", None) in warm and ("xent_rows", None) in warm, warm
    t.fit()
    assert kernel_calls == warm, f"kernels first called after the warm-up: {kernel_calls - warm}"
    n, c = t.steps_per_epoch, t.config
    ordinary = [k for k in range(2, n) if k % c.log_every and not t.evaluates_after(k, k)]
    assert len(ordinary) >= 3, (n, t.eval_every)
    for k in ordinary:  # step k: from drawing batch k to drawing batch k + 1
        d = {key: marks[k][key] - marks[k - 1][key] for key in ("launches", "syncs", "h2d", "d2h")}
        assert d["launches"] <= budget and d["syncs"] == d["h2d"] == d["d2h"] == 0, (case, k, d)
    # the test set was uploaded once: another evaluation moves only its two numbers back
    with fc.counting() as ev:
        t.evaluate()
    assert ev["h2d"] == 0 and ev["d2h"] == 2, ev
    if preset == "lab-best":
        assert type(t.batches).__name__ == "AugmentedBatchIterator" and t.batches._on_device()


def test_the_readme_loop_on_the_device_is_lean():
    cp = fc
    model = nn.Sequential(
        nn.Conv2D(1, 6, 5), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(6, 16, 5), nn.ReLU(), nn.MaxPool2D(2),
        nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 10),
        seed=0, input_shape=(1, 28, 28)).to(cp)
    loss_fn, opt = nn.SoftmaxCrossEntropy(), optim.Adam(model.parameters(), lr=1e-3)
    d = load_mnist()
    x, y = cp.asarray(d.x_train[:640]), cp.asarray(d.y_train[:640].astype(np.int64))
    counts = []
    for i, (xb, yb) in enumerate(BatchIterator(x, y, 128, xp=cp)):
        with fc.counting() as c:
            loss = loss_fn(model.forward(xb), yb)
            model.backward(loss_fn.backward())
            opt.step()
        counts.append(c)
    for c in counts[1:]:  # the first step allocates Adam's state
        assert c["launches"] <= 30 and c["syncs"] == c["h2d"] == c["d2h"] == 0, c
    assert np.isfinite(float(loss))
