"""The mission's own limit, as regression tests: 97 % test accuracy within 420 s of training.

The only tests that time anything. The budget is the lab's 7 minutes; fastcnn needs a few
seconds to tens of seconds, so the margin is huge and the tests do not flake.
"""
import pytest

from fastcnn import models
from fastcnn.config import TrainConfig
from fastcnn import registry
from fastcnn.train import Trainer

LAB_LIMIT_S = 420


def _train_to_97(tmp_path, **kw):
    cfg = TrainConfig(target_acc=0.97, time_budget=LAB_LIMIT_S, progress=False, out=str(tmp_path / "run"),
                      eval_every=50, epochs=3, **kw)
    return Trainer(cfg).fit()


@pytest.mark.slow
def test_default_preset_reaches_97_percent_within_the_lab_limit(tmp_path):
    m = _train_to_97(tmp_path, model=models.DEFAULT)
    assert m["status"] == "target_reached", m
    assert m["test_accuracy"] >= 0.97
    assert m["target_reached_seconds"] < LAB_LIMIT_S
    assert m["params"] <= models.LAB_BUDGET


@pytest.mark.slow
def test_numpy_im2col_path_alone_reaches_97_percent_within_the_lab_limit(tmp_path):
    """No Numba anywhere: im2col convolution and vectorised pooling, plain NumPy."""
    with registry.force("pool", "vectorised"):
        # evaluation without TTA: this test is about the plain-NumPy path's training time (and
        # five shifted views of the test set per evaluation on im2col would make it a minute long)
        m = _train_to_97(tmp_path, model=models.DEFAULT, conv_algo="im2col", fuse=False, tta=0)
    assert set(m["conv_algo"].values()) == {"im2col", "vectorised"}
    assert m["status"] == "target_reached", m
    assert m["target_reached_seconds"] < LAB_LIMIT_S
