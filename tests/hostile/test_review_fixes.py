"""Holes found in review after the merge: each a probe that failed before its fix."""
import os
import signal

import numpy as np
import pytest

from fastcnn import models, nn
from fastcnn.config import TrainConfig
from fastcnn.data import Dataset, load_mnist
from fastcnn.kernels.cpu import conv, im2col, norm, optim as optim_kernels, pool
from fastcnn.rundir import RunDirError
from fastcnn.train import Trainer


@pytest.fixture(scope="module")
def small():
    d = load_mnist()
    return Dataset(d.x_train[:640], d.y_train[:640], d.x_test[:100], d.y_test[:100], name="mnist-small")


def test_batch_norm_kernels_pass_nan_through_instead_of_raising():
    """A diverging run's NaN/inf reaches batch norm: NaN out (the Trainer then stops as diverged),
    not a ZeroDivisionError from the compiled 1/√(σ² + ε)."""
    x = np.full((4, 3, 2, 2), np.nan, np.float32)
    y, xhat, mean, var, inv_std = norm.batchnorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), 1e-5)
    assert np.isnan(y).all() and np.isnan(inv_std).all()
    x[...] = np.inf
    y, *_ = norm.batchnorm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), 1e-5)
    assert not np.isfinite(y).any()


def test_a_diverging_batch_norm_run_ends_as_diverged(small, tmp_path):
    from fastcnn.train import TrainingError
    t = Trainer(TrainConfig(model="fast99", optimizer="sgd", lr=1e30, epochs=1, progress=False,
                            out=str(tmp_path / "run")), data=small)
    with pytest.raises(TrainingError, match="became nan|not finite|holds NaN|infinity"):
        t.fit()
    assert t.status == "diverged"


@pytest.mark.parametrize("call", [
    lambda: pool.maxpool_backward(np.ones((1, 1, 2, 2), np.float32), np.full((1, 1, 2, 2), 63, np.int32), 4, 4),
    lambda: pool.maxpool_backward(np.ones((1, 1, 2, 2), np.float32), np.full((1, 1, 2, 2), -1, np.int32), 4, 4),
    lambda: im2col.maxpool_scatter_cnhw(np.ones((1, 1, 2, 2), np.float32), np.full((1, 1, 2, 2), 16, np.int32), 4, 4),
    lambda: conv.conv_relu_maxpool_backward(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1), np.float32),
                                            np.ones((1, 1, 2, 2), np.float32), np.full((1, 1, 2, 2), 99, np.int32),
                                            1, 1, 1, 1, 4, 4, True, 1),
], ids=["pool-over", "pool-negative", "scatter-over", "fused-conv-over"])
def test_an_argmax_of_another_geometry_is_refused_before_any_write(call):
    with pytest.raises(ValueError, match="positions outside"):
        call()


def test_conv_backward_checks_dy_before_reading_it():
    with pytest.raises(ValueError, match="dy must have 4 dimensions"):
        conv.conv_backward(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1), np.float32),
                           np.ones((1, 4, 4), np.float32), 1, 1, 1, 1, True, 1)


def test_adam_kernel_checks_its_arrays():
    w = np.zeros(4, np.float32)
    s = np.zeros(9, np.float32)
    with pytest.raises(ValueError, match="adam_update"):
        optim_kernels.adam_update(w, np.zeros(3, np.float32), w.copy(), w.copy(), s, 0)
    with pytest.raises(ValueError, match="adam_update"):
        optim_kernels.adam_update(w, w.copy(), w.copy(), w.copy(), np.zeros(2, np.float32), 0)


def test_batchnorm_backward_checks_its_arrays():
    with pytest.raises(ValueError, match="batchnorm_backward"):
        norm.batchnorm_backward(np.ones((2, 3), np.int64), np.ones((2, 3), np.int64), np.ones(3), np.ones(3), True)


@pytest.mark.parametrize("kw, says", [({"lr": float("inf")}, "learning rate must be > 0 and finite"),
                                      ({"weight_decay": float("nan")}, "weight decay must be ≥ 0 and finite")])
def test_non_finite_settings_are_refused(kw, says, tmp_path):
    with pytest.raises(ValueError, match=says):
        TrainConfig(model="lenet5", out=str(tmp_path / "r"), **kw).resolved()


def test_a_run_on_given_arrays_resumes_only_with_data(small, tmp_path):
    run = tmp_path / "run"
    Trainer(TrainConfig(model="lenet5", epochs=1, batch_size=128, progress=False, time_budget=1e-3, out=str(run)),
            data=small).fit()
    with pytest.raises(RunDirError, match="pass the same data set"):
        Trainer.resume(run)
    Trainer.resume(run, data=small)  # with it: fine


def test_ctrl_c_inside_a_step_saves_a_whole_step(small, tmp_path, monkeypatch):
    """SIGINT right after the optimizer's update: the step is counted before the interrupt takes
    effect, so the saved optimizer state and loop position agree."""
    import fastcnn.train as train_mod
    real, calls = train_mod.train_step, []

    def step(*a, **kw):
        out = real(*a, **kw)
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return out
    monkeypatch.setattr(train_mod, "train_step", step)
    t = Trainer(TrainConfig(model="lenet5", epochs=1, batch_size=64, progress=False, out=str(tmp_path / "run")),
                data=small)
    t.fit()
    assert t.status == "interrupted" and t.state["step"] == 3 == t.optimizer.steps


def test_a_subclass_of_conv2d_runs_its_own_code_on_the_gpu_plan():
    from fastcnn.nn.gpu_fused import gpu_fuse_layers

    class MyConv(nn.Conv2D):
        pass
    layers = [MyConv(1, 2, 3), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten()]
    assert gpu_fuse_layers(layers)[0] is layers[0]
    assert type(gpu_fuse_layers([nn.Conv2D(1, 2, 3), nn.ReLU(), nn.MaxPool2D(2)])[0]).__name__ == "GpuConvReLUPool"
