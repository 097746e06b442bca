"""The GPU path end to end on a machine without a GPU: fastcnn.testing.fake_cupy (FASTCNN_FAKE_CUPY=1).

* the stand-in is strict: implicit host conversions and numpy calls on device arrays raise,
  and a host-side ``np.`` call injected into a layer makes training fail under it;
* ``fastcnn train --backend cupy`` (im2col, deterministic) on a tiny MNIST-format directory gives
  the history of ``--backend numpy``; ``eval``, ``predict`` and resume across backends run on it;
* the gpu-marked tests (test_cupy_device.py, test_cupy_training.py) run on it in a subprocess
  with Numba's CUDA simulator, so the 'cuda' algorithms run too (large cases skip, saying why).

What the stand-in cannot show (real memory limits, launch errors, asynchronous errors,
cuBLAS rounding, speed): scripts/gpu_check.sh on a machine with a GPU.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastcnn import backend, nn
from fastcnn.config import TrainConfig
from fastcnn.conv import cuda_conv
from fastcnn.data import Dataset, load_mnist
from fastcnn.data.idx import write_idx
from fastcnn.testing import fake_cupy
from fastcnn.train import Trainer

ROOT = Path(__file__).resolve().parents[2]
SIM_ENV = {"FASTCNN_FAKE_CUPY": "1", "NUMBA_ENABLE_CUDASIM": "1"}


@pytest.fixture
def fake(monkeypatch):
    """backend.get('cupy') -> the stand-in, in this process; the cuda check is looked up afresh."""
    monkeypatch.setenv("FASTCNN_FAKE_CUPY", "1")
    monkeypatch.setattr(cuda_conv, "_reason", [])
    return backend.get("cupy")


# --- the stand-in itself ---------------------------------------------------------------------------
def test_backend_returns_the_stand_in_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(backend, "_fake_announced", False)
    monkeypatch.setenv("FASTCNN_FAKE_CUPY", "1")
    xp = backend.get("cupy")
    backend.get("cupy")
    assert xp is fake_cupy and backend.name_of(xp) == "cupy"
    assert capsys.readouterr().err.count("no GPU is used") == 1  # one line per run
    a = backend.to_device(np.arange(6, dtype=np.float32).reshape(2, 3), xp)
    assert backend.array_module(a) is xp and not isinstance(a, np.ndarray)
    np.testing.assert_array_equal(backend.as_numpy(a), np.arange(6).reshape(2, 3))
    monkeypatch.delenv("FASTCNN_FAKE_CUPY")
    assert backend.array_module(np.zeros(1)) is np


def test_device_arrays_do_not_turn_into_numpy_arrays(fake):
    a = fake.asarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    for implicit in (np.asarray, np.array, float):  # float() of a 12-element array: not a scalar
        with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed|only 0-dimensional|only length-1"):
            implicit(a)
    with pytest.raises(TypeError, match="numpy.concatenate was called on a device array"):
        np.concatenate([a, a])
    with pytest.raises(TypeError):
        np.exp(a)  # a numpy ufunc on a device array
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(4, np.float32)  # a host array as an operand
    with pytest.raises(TypeError, match="Unsupported type"):
        a[0] = np.ones(4, np.float32)  # a host array as a value
    with pytest.raises(TypeError, match="Unsupported type"):
        fake.matmul(a, np.ones((4, 2), np.float32))
    with pytest.raises(AttributeError, match="add it to fastcnn/testing/fake_cupy.py"):
        fake.fft  # noqa: B018  (not part of the surface fastcnn uses)
    s = a.sum()
    assert isinstance(s, fake.ndarray) and s.shape == () and float(s) == 66.0  # 0-d on the device
    np.testing.assert_array_equal(fake.asnumpy(a[fake.asarray(np.array([2, 0]))]), [[8, 9, 10, 11], [0, 1, 2, 3]])


def test_memory_pool_counts_live_device_bytes(fake):
    pool = fake.get_default_memory_pool()
    before = pool.used_bytes()
    a = fake.zeros((256, 256), dtype=np.float32)
    assert pool.used_bytes() - before == a.nbytes and pool.total_bytes() >= pool.used_bytes()
    del a
    assert pool.used_bytes() == before


def test_scatter_add_and_as_strided(fake):
    a = fake.zeros(4, dtype=np.float32)
    backend.scatter_add(fake, a, fake.asarray(np.array([1, 1, 3])), fake.asarray(np.ones(3, np.float32)))
    np.testing.assert_array_equal(a.get(), [0, 2, 0, 1])
    x = fake.asarray(np.arange(5, dtype=np.float32))
    w = backend.as_strided(fake, x, (3, 3), (4, 4))
    np.testing.assert_array_equal(w.get(), [[0, 1, 2], [1, 2, 3], [2, 3, 4]])


def test_cuda_algorithms_need_the_simulator_under_the_stand_in(fake):
    from numba import cuda

    if "simulator" in getattr(cuda.jit, "__module__", ""):
        pytest.skip("this process runs Numba's simulator: the 'cuda' algorithms are available here")
    with pytest.raises(backend.BackendError, match="NUMBA_ENABLE_CUDASIM=1"):
        cuda_conv.check()


def test_batches_on_the_device_match_numpy(fake):
    """The data set uploaded as uint8 (or left on the host), shuffled and normalised on the
    device: the same batches, bit for bit (tests/data/test_loader.py does this with real CuPy)."""
    from fastcnn.data import BatchIterator

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (23, 6, 5), dtype=np.uint8), rng.integers(0, 10, 23)
    ref = list(BatchIterator(x, y, 5, seed=1))
    for xs in (x, fake.asarray(x)):
        got = list(BatchIterator(xs, fake.asarray(y), 5, seed=1, xp=fake))
        assert len(got) == len(ref) == 5
        for (xa, ya), (xb, yb) in zip(ref, got):
            assert isinstance(xb, fake.ndarray) and xb.dtype == np.float32 and yb.dtype == np.int64
            np.testing.assert_array_equal(xa, fake.asnumpy(xb))
            np.testing.assert_array_equal(ya, fake.asnumpy(yb))


# --- a stray host-side call in a layer fails under the stand-in ------------------------------------
def _tiny_data():
    d = load_mnist()
    return Dataset(d.x_train[:64], d.y_train[:64], d.x_test[:32], d.y_test[:32])


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10), seed=0, input_shape=(1, 28, 28))


@pytest.mark.parametrize("stray", [np.asarray, lambda x: np.maximum(x, 0)], ids=["np.asarray", "np.maximum"])
def test_injected_host_call_in_a_layer_fails_under_the_stand_in(fake, monkeypatch, tmp_path, stray):
    flatten_forward = nn.Flatten.forward  # (ReLU runs fused into the Linear before it on a GPU)

    def forward(self, x):
        stray(x)  # the bug: a host-side numpy call on the layer's input
        return flatten_forward(self, x)

    monkeypatch.setattr(nn.Flatten, "forward", forward)
    data = _tiny_data()
    common = dict(epochs=1, batch_size=32, progress=False, conv_algo="im2col")
    m = Trainer(TrainConfig(backend="numpy", out=str(tmp_path / "n"), **common), model=_mlp(), data=data).fit()
    assert m["status"] == "completed"  # harmless on the CPU, so only the stand-in can catch it
    with pytest.raises(TypeError, match="Implicit conversion|not support"):
        Trainer(TrainConfig(backend="cupy", out=str(tmp_path / "c"), **common), model=_mlp(), data=data).fit()


def test_training_steps_make_no_host_transfers(fake, tmp_path):
    """Device -> host transfers (each a synchronisation on a GPU) do not grow with the number of
    steps: twice the steps over the same data, the same evaluations and logs, the same count."""
    d = load_mnist()
    data = Dataset(d.x_train[:128], d.y_train[:128], d.x_test[:32], d.y_test[:32])
    counts = {}
    for batch in (32, 16):  # 4 and 8 steps; one log and one evaluation at the end of the epoch
        cfg = TrainConfig(backend="cupy", epochs=1, batch_size=batch, eval_every=0, log_every=1000, progress=False,
                          out=str(tmp_path / str(batch)), optimizer="adam", lr=0.01, schedule="none")
        t = Trainer(cfg, model=_mlp(), data=data)
        with fake_cupy.counting() as c:
            t.fit()
        counts[batch] = c["d2h"]
    assert counts[16] == counts[32], counts


# --- the command line end to end -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny MNIST-format directory: 640 training and 200 test images, written as idx files."""
    d, out = load_mnist(), tmp_path_factory.mktemp("tiny-mnist")
    for name, a in (("train-images-idx3-ubyte", d.x_train[:640]), ("train-labels-idx1-ubyte", d.y_train[:640]),
                    ("t10k-images-idx3-ubyte", d.x_test[:200]), ("t10k-labels-idx1-ubyte", d.y_test[:200])):
        write_idx(out / name, a)
    return out


def fastcnn(*args, fake: bool):
    env = {k: v for k, v in os.environ.items() if k not in SIM_ENV}
    env.update(SIM_ENV if fake else {})
    r = subprocess.run([sys.executable, "-m", "fastcnn", *map(str, args)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"fastcnn {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}"
    assert r.stderr.count("no GPU is used") == (1 if fake else 0), r.stderr
    return r.stdout


def history(run: Path) -> dict:
    h = json.loads((run / "history.json").read_text())
    return {k: np.array([row[k] for row in h], np.float64) for k in ("step", "loss", "test_loss", "test_accuracy")}


def assert_same_history(got: Path, want: Path):
    g, w = history(got), history(want)
    np.testing.assert_array_equal(g["step"], w["step"])
    for k in ("loss", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(g[k], w[k], rtol=1e-3, equal_nan=True, err_msg=k)


def test_train_eval_predict_resume_on_the_stand_in(tiny_dir, tmp_path):
    runs = {}
    for be in ("numpy", "cupy"):
        runs[be] = tmp_path / be
        fastcnn("train", "--backend", be, "--data-dir", tiny_dir, "--epochs", 1, "--batch-size", 64,
                "--conv-algo", "im2col", "--deterministic", "--no-progress", "--out", runs[be],
                "--tta", 0, fake=be == "cupy")  # no TTA: `fastcnn eval` of model.npz must give the run's accuracy
    assert_same_history(runs["cupy"], runs["numpy"])
    m = json.loads((runs["cupy"] / "metrics.json").read_text())
    assert m["backend"] == "cupy" and m["status"] == "completed" and m["peak_device_memory_bytes"] > 0

    acc = m["test_accuracy"]
    out = fastcnn("eval", "--weights", runs["cupy"], "--backend", "cupy", "--data-dir", tiny_dir, fake=True)
    assert f"test accuracy {acc:.4f}" in out
    classes = tmp_path / "classes.txt"
    fastcnn("predict", "--weights", runs["cupy"], "--backend", "cupy", "--input",
            tiny_dir / "t10k-images-idx3-ubyte", "--out", classes, fake=True)
    pred = np.array(classes.read_text().split(), np.int64)
    assert pred.shape == (200,) and np.mean(pred == load_mnist().y_test[:200]) == pytest.approx(acc)

    # checkpoint on one backend -> resume on the other: the same second epoch either way
    for src, be in (("cupy", "numpy"), ("numpy", "cupy")):
        shutil.copytree(runs[src], tmp_path / f"{src}-then-{be}")
        fastcnn("train", "--resume", tmp_path / f"{src}-then-{be}", "--backend", be, "--epochs", 2,
                "--no-progress", fake=be == "cupy")
    assert_same_history(tmp_path / "numpy-then-cupy", tmp_path / "cupy-then-numpy")
    assert len(history(tmp_path / "numpy-then-cupy")["step"]) > len(history(runs["numpy"])["step"])


# --- the gpu-marked tests on the stand-in ----------------------------------------------------------
def test_gpu_tests_run_on_the_stand_in():
    """test_cupy_device.py and test_cupy_training.py (not the slow full-MNIST run) with
    FASTCNN_FAKE_CUPY=1 NUMBA_ENABLE_CUDASIM=1; they pass, or skip a case saying why."""
    files = [str(ROOT / "tests/gpu" / f) for f in ("test_cupy_device.py", "test_cupy_training.py")]
    cmd = [sys.executable, "-m", "pytest", *files, "-q", "-rs", "-m", "not slow", "-p", "no:cacheprovider",
           "-o", "addopts="]
    r = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, **SIM_ENV), capture_output=True, text=True, timeout=1200)
    out = r.stdout[-20000:] + r.stderr[-5000:]
    assert r.returncode == 0 and " passed" in out, \
        f"gpu tests on the stand-in failed (FASTCNN_FAKE_CUPY=1 NUMBA_ENABLE_CUDASIM=1 {' '.join(cmd)}):\n{out}"
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all("simulator" in line for line in skips), "\n".join(skips)  # only the simulator's size limit
