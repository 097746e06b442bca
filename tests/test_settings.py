"""fastcnn.settings: scoped, restored on exit and on error; importing fastcnn changes nothing."""
import json
import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fastcnn
from fastcnn import scoped_settings
from fastcnn.config import TrainConfig
from fastcnn import registry
from fastcnn.data import Dataset
from fastcnn.train import Trainer


def _blas():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def _state():
    return (numba.get_num_threads(), _blas(), registry.forced("conv"), registry.forced("pool"),
            registry.deterministic(), scoped_settings.current())


def test_importing_fastcnn_leaves_the_environment_alone():
    code = ("import os, json; before = dict(os.environ); import numpy; import fastcnn, fastcnn.train, fastcnn.cli; "
            "import fastcnn.nn, fastcnn.conv; print(json.dumps(dict(os.environ) == before))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) is True


def test_settings_apply_inside_and_restore_after():
    before = _state()
    with fastcnn.settings(threads=1, conv_algo="im2col", pool_algo="vectorised", deterministic=True) as s:
        assert s["threads"] == 1 and numba.get_num_threads() == 1
        assert set(_blas()) == {1}
        assert registry.forced("conv") == "im2col" and registry.forced("pool") == "vectorised"
        assert registry.deterministic()
        with fastcnn.settings(conv_algo="auto"):  # nested: auto lifts the forcing inside only
            assert registry.forced("conv") is None
        assert registry.forced("conv") == "im2col"
    assert _state() == before


def test_settings_restore_when_the_block_raises():
    before = _state()
    with pytest.raises(ZeroDivisionError):
        with fastcnn.settings(threads=1, conv_algo="naive", deterministic=True):
            1 / 0
    assert _state() == before


@pytest.mark.parametrize("bad,match", [(dict(threads=0), "positive integer"), (dict(conv_algo="fft"), "unknown conv"),
                                       (dict(colour="red"), "unknown fastcnn setting")])
def test_bad_settings_are_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        with fastcnn.settings(**bad):
            pass


def test_settings_are_per_thread():
    seen = {}

    def other():
        seen["conv"] = registry.forced("conv")

    with fastcnn.settings(conv_algo="im2col"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["conv"] is None


def _tiny(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.int64)
    return Dataset(x, y, x[:64], y[:64])


def test_trainer_restores_every_setting(tmp_path):
    before = _state()
    cfg = TrainConfig(model="compact", epochs=1, batch_size=64, threads=1, conv_algo="im2col", deterministic=True,
                      progress=False, out=str(tmp_path / "run"))
    Trainer(cfg, data=_tiny()).fit()
    assert _state() == before


def test_trainer_restores_every_setting_when_fit_raises(tmp_path):
    before = _state()
    cfg = TrainConfig(model="compact", epochs=1, batch_size=64, threads=1, conv_algo="im2col", deterministic=True,
                      progress=False, out=str(tmp_path / "run"))
    t = Trainer(cfg, data=_tiny())

    def interrupted(*a, **k):
        assert registry.forced("conv") == "im2col" and numba.get_num_threads() == 1  # in force inside
        raise RuntimeError("stopped from outside")
    t._evaluate_and_check = interrupted
    with pytest.raises(RuntimeError, match="stopped from outside"):
        t.fit()
    assert _state() == before


def test_trainer_interrupted_restores_settings(tmp_path):
    before = _state()
    cfg = TrainConfig(model="compact", epochs=1, batch_size=64, threads=1, deterministic=True, progress=False,
                      out=str(tmp_path / "run"))
    t = Trainer(cfg, data=_tiny())

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt
    t._evaluate_and_check = ctrl_c
    m = t.fit()
    assert m["status"] == "interrupted"
    assert _state() == before


def test_profiler_puts_the_layers_back(tmp_path):
    cfg = TrainConfig(model="compact", epochs=1, batch_size=64, profile=True, progress=False,
                      out=str(tmp_path / "run"))
    t = Trainer(cfg, data=_tiny())
    m = t.fit()
    assert "total" in m["profile"]
    assert all("forward" not in vars(layer) and "backward" not in vars(layer)
               for layer in list(t.model.layers) + list(t.model.plan()))
