"""Every layer on CuPy against the same layer on NumPy; needs CuPy and a CUDA device (marked gpu),
or runs on the stand-in under FASTCNN_FAKE_CUPY=1 (see gpu_support.py).

Each test builds the layer twice with the same seed, one on numpy and one moved to cupy,
runs forward and backward on the same data and compares outputs, input gradients and
parameter gradients: relative error max|gpu − cpu| / max|cpu| ≤ 1e-5 in float32
(≤ 1e-10 in float64). Skipped, with the reason, where CuPy or a device is missing.
"""
from __future__ import annotations

import numpy as np
import pytest

from gpu_support import cupy, pytestmark, sim_skip  # noqa: F401  (real CuPy, or the stand-in)

from fastcnn import nn  # noqa: E402
from fastcnn.conv import CONV  # noqa: E402
from fastcnn.pool import POOL  # noqa: E402

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-10}


def rel(got, want) -> float:
    """max |got − want| / max |want|, with got on the device and want on the host."""
    assert isinstance(got, cupy.ndarray), f"expected a CuPy array, got {type(got).__name__}"
    g = cupy.asnumpy(got).astype(np.float64)
    w = np.asarray(want, np.float64)
    assert g.shape == w.shape, (g.shape, w.shape)
    return float(np.abs(g - w).max() / max(np.abs(w).max(), 1e-30))


def both(make, dtype, cpu_kw=None, gpu_kw=None):
    """The same layer twice (same seed): ``make(**cpu_kw)`` on numpy, ``make(**gpu_kw)`` moved to cupy."""
    cpu = make(**(cpu_kw or {}))
    cpu.to("numpy", dtype)
    gpu = make(**(gpu_kw or {}))
    gpu.to("cupy", dtype)
    return cpu, gpu


def run_both(cpu, gpu, x, dy, dtype):
    """Forward and backward on both; assert every output and gradient agrees."""
    tol = TOL[dtype]
    y_gpu = gpu.forward(cupy.asarray(x))
    y_cpu = cpu.forward(x)
    assert y_gpu.dtype == dtype
    assert rel(y_gpu, y_cpu) <= tol
    dx_gpu = gpu.backward(cupy.asarray(dy))
    dx_cpu = cpu.backward(dy)
    assert dx_gpu.dtype == dtype
    assert rel(dx_gpu, dx_cpu) <= tol
    for pg, pc in zip(gpu.parameters(), cpu.parameters()):
        assert rel(pg.grad, pc.grad) <= tol, pg.name


def no_ties(rng, shape, dtype):
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) / n * 4 - 2).astype(dtype)


def test_cuda_algorithms_are_available():
    for table in (CONV, POOL):
        assert "cuda" in table
        assert table["cuda"].available(cupy)
        assert not table["cuda"].available(np)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ["cuda", "im2col"])
@pytest.mark.parametrize("n,c,f,hw,k,s,p,bias", [
    (1, 1, 1, (5, 5), 3, 1, 0, True),
    (2, 3, 4, (7, 6), (3, 2), (2, 1), (1, 0), True),
    (3, 2, 3, (9, 8), 4, 3, 2, False),
    (2, 4, 2, (6, 11), (1, 5), 2, (0, 2), True),
    (8, 16, 32, (14, 14), 3, 1, 1, True),
])
def test_conv2d(algo, dtype, n, c, f, hw, k, s, p, bias):
    rng = np.random.default_rng(7)
    cpu, gpu = both(lambda algo: nn.Conv2D(c, f, k, stride=s, padding=p, bias=bias, algo=algo, seed=3), dtype,
                    {"algo": "im2col"}, {"algo": algo})
    x = rng.standard_normal((n, c) + hw).astype(dtype)
    oh, ow = cpu.output_shape((c,) + hw)[1:]
    sim_skip(algo, n * c * cpu.weight.data[0, 0].size * oh * ow + x.size)  # im2col + col2im threads
    dy = rng.standard_normal((n, f, oh, ow)).astype(dtype)
    run_both(cpu, gpu, x, dy, dtype)
    assert gpu.algo_used == algo


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ["cuda", "vectorised"])
@pytest.mark.parametrize("cls", [nn.MaxPool2D, nn.AvgPool2D])
@pytest.mark.parametrize("n,c,hw,k,s,p", [
    (1, 1, (4, 4), 2, None, 0),
    (2, 3, (7, 6), 3, 2, 1),
    (3, 2, (5, 9), (2, 3), (1, 2), (1, 1)),
    (8, 16, (28, 28), 2, 2, 0),
])
def test_pool(cls, algo, dtype, n, c, hw, k, s, p):
    rng = np.random.default_rng(11)
    cpu, gpu = cls(k, stride=s, padding=p, algo="vectorised"), cls(k, stride=s, padding=p, algo=algo)
    x = no_ties(rng, (n, c) + hw, dtype)
    dy = rng.standard_normal((n,) + cpu.output_shape((c,) + hw)).astype(dtype)
    sim_skip(algo, x.size + dy.size)
    run_both(cpu, gpu, x, dy, dtype)
    assert gpu.algo_used == algo


def test_max_pool_ties_on_device():
    """Ties go to the first maximum in row-major window order, on the GPU as on the CPU."""
    x = np.random.default_rng(1).integers(0, 3, (2, 3, 6, 7)).astype(np.float32)
    cpu, gpu = nn.MaxPool2D(3, stride=1, padding=1, algo="vectorised"), nn.MaxPool2D(3, stride=1, padding=1, algo="cuda")
    dy = np.random.default_rng(2).standard_normal((2, 3, 6, 7)).astype(np.float32)
    run_both(cpu, gpu, x, dy, np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear(dtype):
    rng = np.random.default_rng(3)
    cpu, gpu = both(lambda: nn.Linear(37, 11, seed=5), dtype)
    run_both(cpu, gpu, rng.standard_normal((6, 37)).astype(dtype), rng.standard_normal((6, 11)).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Flatten])
def test_elementwise(cls, dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 5, 4)).astype(dtype)
    x[np.abs(x) < 1e-3] = 0.5  # away from the ReLU kink
    cpu, gpu = cls(), cls()
    dy = rng.standard_normal(cpu.forward(x).shape).astype(dtype)
    run_both(cpu, gpu, x, dy, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm2d, (4, 3, 5, 6)), (nn.BatchNorm1d, (8, 7))])
def test_batchnorm(cls, shape, train, dtype):
    rng = np.random.default_rng(5)
    f = shape[1]

    def make():
        layer = cls(f)
        layer.weight.data[...] = np.linspace(0.5, 1.5, f)
        layer.bias.data[...] = np.linspace(-0.2, 0.3, f)
        layer.running_mean[...] = np.linspace(-0.5, 0.5, f)  # so that evaluation is not the identity
        layer.running_var[...] = np.linspace(0.5, 2.0, f)
        return layer.train(train)

    cpu, gpu = both(make, dtype)
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    run_both(cpu, gpu, x, rng.standard_normal(shape).astype(dtype), dtype)
    assert rel(gpu.running_mean, cpu.running_mean) <= TOL[dtype]
    assert rel(gpu.running_var, cpu.running_var) <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_softmax_cross_entropy(smoothing, dtype):
    rng = np.random.default_rng(6)
    logits = (rng.standard_normal((16, 10)) * 3).astype(dtype)
    labels = rng.integers(0, 10, 16)
    cpu, gpu = nn.SoftmaxCrossEntropy(smoothing), nn.SoftmaxCrossEntropy(smoothing)
    loss_cpu = cpu.forward(logits, labels)
    loss_gpu = gpu.forward(cupy.asarray(logits), cupy.asarray(labels))
    assert isinstance(loss_gpu, cupy.ndarray)
    assert abs(float(loss_gpu) - float(loss_cpu)) <= TOL[dtype] * abs(float(loss_cpu))
    d_gpu = gpu.backward()
    assert d_gpu.dtype == dtype
    assert rel(d_gpu, cpu.backward()) <= TOL[dtype]


def _small_cnn(conv_algo, pool_algo):
    return nn.Sequential(
        nn.Conv2D(1, 4, 3, padding=1, algo=conv_algo), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2D(2, algo=pool_algo),
        nn.Conv2D(4, 6, 3, padding=1, algo=conv_algo), nn.ReLU(), nn.AvgPool2D(2, algo=pool_algo),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 10),
        seed=0, input_shape=(1, 8, 8),
    )


def test_training_steps_match_numpy():
    """A small CNN trained for a few SGD steps on cupy ('cuda' algorithms) tracks the numpy run."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    cpu, gpu = _small_cnn("im2col", "vectorised"), _small_cnn("cuda", "cuda").to("cupy")
    loss_c, loss_g = nn.SoftmaxCrossEntropy(), nn.SoftmaxCrossEntropy()
    xg, lg = cupy.asarray(x), cupy.asarray(labels)
    for _ in range(3):
        lc = float(loss_c.forward(cpu.forward(x), labels))
        lgv = float(loss_g.forward(gpu.forward(xg), lg))
        assert abs(lgv - lc) <= 1e-4 * abs(lc)
        cpu.backward(loss_c.backward())
        gpu.backward(loss_g.backward())
        for pc, pg in zip(cpu.parameters(), gpu.parameters()):
            if np.abs(pc.grad).max() < 1e-6:  # the first conv's bias: batch norm follows, its gradient is 0
                # (both sides are float32 rounding noise, ~1e-8, whose bits depend on summation order)
                assert np.abs(cupy.asnumpy(pg.grad)).max() < 1e-6, pc.name
                continue
            assert rel(pg.grad, pc.grad) <= 1e-4, pc.name
            pc.data -= np.float32(0.1) * pc.grad
            pg.data -= np.float32(0.1) * pg.grad
    assert [l.algo_used for l in gpu.layers if hasattr(l, "algo_used")] == ["cuda"] * 4
