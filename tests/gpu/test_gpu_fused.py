"""The lean GPU step's layers, loss, optimizers and EMA (fastcnn/nn/gpu_fused.py, nn/flat.py,
fastcnn/gpu_kernels.py) against the NumPy path, on the CuPy stand-in (the kernels' NumPy twins).

Runs on any machine, no environment variable: the stand-in module is used as ``xp`` directly.
The kernels' CUDA C itself is run on the CPU by tests/gpu/test_gpu_kernels_source.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn import nn, optim
from fastcnn.ema import EMA
from fastcnn.gradcheck import check_layer
from fastcnn.nn import flat as flat_params
from fastcnn.nn.gpu_fused import GpuBatchNorm, GpuConvReLUPool, GpuLinear, gpu_fuse_layers
from fastcnn.nn.module import Layer, Parameter
from fastcnn.testing import fake_cupy as fc


def dev(a):
    return fc.asarray(a)


def host(a):
    return None if a is None else a.get()


class HostView(Layer):
    """A device layer seen from the host, for fastcnn.gradcheck.check_layer (float64)."""

    def __init__(self, layer):
        super().__init__()
        self.dev = layer
        self.hp = [Parameter(p.data.get(), p.name) for p in layer.parameters()]

    def parameters(self):
        return self.hp

    def forward(self, x):
        for h, d in zip(self.hp, self.dev.parameters()):
            d.data[...] = dev(h.data)
        self.dev.needs_input_grad = self.needs_input_grad
        return host(self.dev.forward(dev(x)))

    def backward(self, g):
        dx = self.dev.backward(dev(g))
        for h, d in zip(self.hp, self.dev.parameters()):
            h.grad = host(d.grad)
        return host(dx)


def _pair(layers, dtype):
    """The same layers twice: on numpy (reference, unfused) and on the stand-in."""
    ref = nn.Sequential(*layers("im2col"), seed=3, fusion=False)
    gpu = nn.Sequential(*layers("auto"), seed=3)
    ref.to(np, dtype)
    gpu.to(fc, dtype)
    return ref, gpu


CONVS = [  # (C, F, k, stride, padding, H, pool k, pool stride)
    (1, 3, 3, 1, 0, 8, 2, 2),
    (2, 3, 3, 2, 1, 9, 2, 2),
    (3, 2, (2, 3), 1, 1, 7, 3, 2),
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("c,f,k,s,p,h,pk,ps", CONVS)
def test_conv_relu_pool_matches_the_layers(dtype, tol, c, f, k, s, p, h, pk, ps):
    def layers(algo):
        return nn.Conv2D(c, f, k, stride=s, padding=p, algo=algo), nn.ReLU(), nn.MaxPool2D(pk, ps)

    ref, gpu = _pair(layers, dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, c, h, h + 1)).astype(dtype)
    ref.needs_input_grad = gpu.needs_input_grad = True
    plan = gpu.plan(gpu=True)
    assert len(plan) == 1 and isinstance(plan[0], GpuConvReLUPool)
    y_ref, y = ref.forward(x), gpu.forward(dev(x))
    np.testing.assert_allclose(host(y), y_ref, rtol=tol, atol=tol)
    g = rng.standard_normal(y_ref.shape).astype(dtype)
    dx_ref, dx = ref.backward(g), gpu.backward(dev(g))
    np.testing.assert_allclose(host(dx), dx_ref, rtol=tol, atol=tol)
    for a, b in zip(gpu.parameters(), ref.parameters()):
        np.testing.assert_allclose(host(a.grad), b.grad, rtol=tol, atol=tol * 10)


def test_conv_relu_pool_gradients():
    conv, pool = nn.Conv2D(2, 3, 3, padding=1), nn.MaxPool2D(2)
    for layer in (conv,):
        layer.to(fc, np.float64)
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    errs = check_layer(HostView(GpuConvReLUPool(conv, pool, [conv, pool])), x)
    assert max(errs.values()) < 1e-6, errs


@pytest.mark.parametrize("relu", [True, False])
def test_linear_matches_and_has_correct_gradients(relu):
    lin = nn.Linear(7, 5)
    lin.to(fc, np.float64)
    errs = check_layer(HostView(GpuLinear(lin, relu, [lin])), np.random.default_rng(2).standard_normal((4, 7)))
    assert max(errs.values()) < 1e-6, errs

    def layers(algo):
        return (nn.Linear(7, 5), nn.ReLU()) if relu else (nn.Linear(7, 5),)

    ref, gpu = _pair(layers, np.float32)
    x = np.random.default_rng(3).standard_normal((6, 7)).astype(np.float32)
    ref.needs_input_grad = gpu.needs_input_grad = True
    np.testing.assert_allclose(host(gpu.forward(dev(x))), ref.forward(x), rtol=1e-5, atol=1e-6)
    g = np.random.default_rng(4).standard_normal((6, 5)).astype(np.float32)
    np.testing.assert_allclose(host(gpu.backward(dev(g))), ref.backward(g), rtol=1e-5, atol=1e-6)
    for a, b in zip(gpu.parameters(), ref.parameters()):
        np.testing.assert_allclose(host(a.grad), b.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (6, 4)), (nn.BatchNorm2d, (3, 4, 3, 2))])
def test_batchnorm_matches_and_has_correct_gradients(cls, shape):
    bn = cls(4)
    bn.to(fc, np.float64)
    bn.weight.data[...] = dev(np.linspace(0.5, 1.5, 4))
    errs = check_layer(HostView(GpuBatchNorm(bn)), np.random.default_rng(5).standard_normal(shape))
    assert max(errs.values()) < 1e-6, errs

    ref, gpu = _pair(lambda algo: (cls(4),), np.float32)
    rng = np.random.default_rng(6)
    for _ in range(2):  # running statistics move the same way
        x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
        ref.needs_input_grad = gpu.needs_input_grad = True
        np.testing.assert_allclose(host(gpu.forward(dev(x))), ref.forward(x), rtol=1e-5, atol=1e-5)
        g = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(host(gpu.backward(dev(g))), ref.backward(g), rtol=1e-4, atol=1e-5)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(host(getattr(gpu.layers[0], name)), getattr(ref.layers[0], name), rtol=1e-5)
    gpu.eval()
    ref.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(host(gpu.forward(dev(x))), ref.forward(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_softmax_cross_entropy_matches_numpy(smoothing, dtype, tol):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((9, 5)) * 4).astype(dtype)
    y = rng.integers(0, 5, 9)
    ref, got = nn.SoftmaxCrossEntropy(smoothing), nn.SoftmaxCrossEntropy(smoothing)
    zd, yd = dev(z), dev(y)
    with fc.counting() as c:
        loss = got.forward(zd, yd)
        d = got.backward()
    assert c["launches"] == 2 and c["syncs"] == 0 and c["h2d"] == c["d2h"] == 0, c
    np.testing.assert_allclose(float(loss), float(ref.forward(z, y)), rtol=tol)
    np.testing.assert_allclose(host(d), ref.backward(), rtol=tol, atol=tol)
    assert int(got.correct) == int((z.argmax(axis=1) == y).sum())
    np.testing.assert_allclose(host(got.probabilities()), ref.probabilities(), rtol=1e-5)


def test_out_of_range_label_gives_nan_not_a_wrapped_value():
    z, y = dev(np.zeros((3, 4), np.float32)), dev(np.array([0, 4, 1]))  # 4 is not a class of 4
    loss_fn = nn.SoftmaxCrossEntropy()
    with fc.counting() as c:
        loss = loss_fn.forward(z, y)
        d = loss_fn.backward()
    assert c["syncs"] == 0
    assert np.isnan(float(loss))
    d = host(d)
    assert np.isnan(d[1]).all() and np.isfinite(d[[0, 2]]).all()
    assert np.isnan(float(loss_fn.forward(z, dev(np.array([-1, 0, 0])))))


def _mlp(seed=0):
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.BatchNorm1d(5), nn.Linear(5, 3), seed=seed)


@pytest.mark.parametrize("name,kw", [("adam", {}), ("adam", {"weight_decay": 0.01}), ("adamw", {}),
                                     ("sgd", {}), ("momentum", {"weight_decay": 1e-3}), ("nesterov", {})])
def test_flat_optimizer_matches_the_per_parameter_path(name, kw):
    rng = np.random.default_rng(8)
    ref, gpu = _mlp(), _mlp()
    gpu.to(fc)
    assert flat_params.for_model(gpu) is not None
    o_ref, o_gpu = optim.make(name, ref.parameters(), 0.01, **kw), optim.make(name, gpu.parameters(), 0.01, **kw)
    o_gpu.compile_kernels()  # the Trainer's warm-up: compiles the kernel, allocates the flat state
    for _ in range(3):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in ref.parameters()]
        for p, q, g in zip(ref.parameters(), gpu.parameters(), grads):
            p.grad[...] = g
            q.grad[...] = dev(g)
        o_ref.step()
        with fc.counting() as c:
            o_gpu.step()
        assert c["launches"] == 1 and c["syncs"] == 0 and c["h2d"] == 0, c
        for p, q in zip(ref.parameters(), gpu.parameters()):
            np.testing.assert_allclose(host(q.data), p.data, rtol=1e-6, atol=1e-7)
    # the state round-trips through state_dict, per parameter as before
    st = o_gpu.state_dict()
    for k, v in o_ref.state_dict().items():
        np.testing.assert_allclose(np.asarray(st[k]), np.asarray(v), rtol=1e-6, atol=1e-7)
    o2 = optim.make(name, gpu.parameters(), 0.01, **kw)
    o2.load_state_dict(st)
    o2.step()  # rebuilds its flat state from the loaded arrays
    assert o2.steps == 4


def test_adam_on_the_flat_buffer_is_bit_identical_to_the_cpu_kernel():
    ref, gpu = _mlp(), _mlp()
    gpu.to(fc)
    o_ref, o_gpu = optim.Adam(ref.parameters(), 0.003), optim.Adam(gpu.parameters(), 0.003)
    for p, q in zip(ref.parameters(), gpu.parameters()):
        g = np.random.default_rng(p.size).standard_normal(p.shape).astype(np.float32)
        p.grad[...] = g
        q.grad[...] = dev(g)
    o_ref.step()
    o_gpu.step()
    for p, q in zip(ref.parameters(), gpu.parameters()):
        np.testing.assert_array_equal(host(q.data), p.data)


def test_ema_on_the_flat_buffer_is_one_kernel_and_matches():
    ref, gpu = _mlp(), _mlp()
    gpu.to(fc)
    e_ref, e_gpu = EMA(ref, 0.9), EMA(gpu, 0.9)
    for _ in range(3):
        for p, q in zip(ref.parameters(), gpu.parameters()):
            p.data += 0.5
            q.data += 0.5
        e_ref.update()
        with fc.counting() as c:
            e_gpu.update()
        assert c["launches"] == 1, c
    for a, b in zip(e_gpu.shadow, e_ref.shadow):
        np.testing.assert_allclose(host(a), b, rtol=1e-6)
    with e_gpu.applied():
        np.testing.assert_allclose(host(gpu.parameters()[0].data), e_ref.shadow[0], rtol=1e-6)
    st = e_gpu.state_dict()
    e2 = EMA(gpu, 0.9)
    e2.load_state_dict(st)
    assert e2.updates == 3


def test_flat_buffer_views_and_moving_back():
    model = _mlp()
    want = [p.data.copy() for p in model.parameters()]
    model.to(fc)
    flat = flat_params.for_model(model)
    assert flat is not None and flat.data.size == sum(p.size for p in model.parameters()) + 10  # + BN stats
    for p, w in zip(model.parameters(), want):
        np.testing.assert_array_equal(host(p.data), w)
    flat.params[...] = 0
    assert all(not host(p.data).any() for p in model.parameters())
    model.to(np)  # leaves the flat buffer: the CPU path takes over
    assert flat_params.for_model(model) is None
    assert isinstance(model.parameters()[0].data, np.ndarray)


def test_gpu_plan_keeps_unfusable_layers_and_respects_fusion_off():
    layers = [nn.Conv2D(1, 2, 3), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Linear(18, 4), nn.ReLU(),
              nn.Dropout(0.5) if hasattr(nn, "Dropout") else nn.ReLU(), nn.Linear(4, 2)]
    plan = gpu_fuse_layers(layers)
    kinds = [type(l).__name__ for l in plan]
    assert kinds[:3] == ["GpuConvReLUPool", "Flatten", "GpuLinear"] and kinds[-1] == "GpuLinear"
    m = nn.Sequential(*layers, fusion=False)
    m.to(fc)
    m.forward(dev(np.zeros((2, 1, 8, 8), np.float32)))
    assert m._ran == m.layers


@pytest.mark.parametrize("augment", [None, "translate=2,rotate=10", "shift=0.1,scale=0.1,squeeze=0.1"])
def test_device_batches_are_the_host_batches_in_two_launches(augment):
    """Gathered, augmented and normalised on the device: bit for bit the host's batches; after the
    epoch's one upload (order, maps) every batch is two launches and no transfer."""
    from fastcnn.augment import AugmentedBatchIterator
    from fastcnn.data import BatchIterator, load_mnist

    d = load_mnist()
    x, y = d.x_train[:70], d.y_train[:70].astype(np.int64)
    make = (lambda xx, yy, xp: AugmentedBatchIterator(xx, yy, 16, augment=augment, seed=4, xp=xp)) if augment \
        else (lambda xx, yy, xp: BatchIterator(xx, yy, 16, seed=4, xp=xp))
    host_it, dev_it = make(x, y, np), make(dev(x), dev(y), fc)
    got = []
    batches = iter(dev_it)
    got.append(next(batches))  # the epoch's uploads happen here
    with fc.counting() as c:
        for b in batches:
            got.append(b)
    assert c["launches"] == 2 * (len(got) - 1) and c["h2d"] == c["d2h"] == c["syncs"] == 0, c
    want = list(host_it)
    assert len(got) == len(want) == 5
    for (xb, yb), (xw, yw) in zip(got, want):
        np.testing.assert_array_equal(host(xb), xw)
        np.testing.assert_array_equal(host(yb), yw)


def test_numba_launches_take_cupy_arrays_without_a_host_sync(monkeypatch):
    """On a GPU, the 'cuda' algorithms hand CuPy arrays to numba-cuda as device arrays made with
    sync=False (numba-cuda before 0.25 would synchronise the host on each one); they run on CuPy's stream."""
    from fastcnn.kernels.cuda import launch

    if launch.simulated():
        pytest.skip("under Numba's simulator the stand-in's arrays are bridged instead")
    made = []
    monkeypatch.setattr(launch.cuda, "from_cuda_array_interface",
                        lambda desc, owner=None, sync=True: made.append((owner, sync)) or "device-array")
    cupy_like = type("ndarray", (), {"__module__": "cupy._core.core", "__cuda_array_interface__": {}})()
    other = np.zeros(2)
    assert launch.sim_args((cupy_like, other, 3)) == ("device-array", other, 3)
    assert made == [(cupy_like, False)]


def test_conv_without_bias_and_first_layer_without_dx():
    def layers(algo):
        return nn.Conv2D(2, 3, 3, padding=1, bias=False, algo=algo), nn.ReLU(), nn.MaxPool2D(2)

    ref, gpu = _pair(layers, np.float64)
    x = np.random.default_rng(9).standard_normal((2, 2, 6, 6))
    y = ref.forward(x)
    np.testing.assert_allclose(host(gpu.forward(dev(x))), y, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(10).standard_normal(y.shape)
    assert ref.backward(g) is None and gpu.backward(dev(g)) is None  # the first layer computes no dx
    np.testing.assert_allclose(host(gpu.parameters()[0].grad), ref.parameters()[0].grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("preset", ["fast99", "compact", "lab-best"])
def test_a_run_on_the_lean_gpu_path_tracks_the_cpu_run(preset, tmp_path, monkeypatch):
    """The Trainer with each preset's recipe (label smoothing, batch norm, augmentation, EMA, TTA):
    the same losses and accuracies on the stand-in's lean path as on NumPy — to 1e-9 in float64.
    In float32 the training losses and accuracies agree to 1e-3, but not the test loss: a Linear's
    bias right before a batch norm has no true gradient (the norm subtracts the mean), so its
    gradient is float32 rounding, which Adam turns into steps of size lr in a direction the
    summation order decides; the norm's running mean, and with it the evaluation's loss, then
    differ by ≈ 1e-3 between any two summation orders (compact: 1.05e-3 between the lean path and
    the CPU kernels, 1.2e-4 between two versions of the CPU kernels; 6e-13 in float64)."""
    from fastcnn.config import TrainConfig
    from fastcnn.data import Dataset, load_mnist
    from fastcnn.train import Trainer

    monkeypatch.setenv("FASTCNN_FAKE_CUPY", "1")
    d = load_mnist()
    data = Dataset(d.x_train[:384], d.y_train[:384], d.x_test[:100], d.y_test[:100])
    for dtype in ("float64", "float32"):
        hist = {}
        for be in ("numpy", "cupy"):
            cfg = TrainConfig(model=preset, backend=be, epochs=1, eval_every=2, log_every=2, progress=False,
                              target_acc=None, out=str(tmp_path / dtype / be), dtype=dtype)
            t = Trainer(cfg, data=data)
            t.fit()
            hist[be] = np.array([[h["loss"], h["test_loss"], h["test_accuracy"]] for h in t.history])
        if dtype == "float64":
            np.testing.assert_allclose(hist["cupy"], hist["numpy"], rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_allclose(hist["cupy"][:, [0, 2]], hist["numpy"][:, [0, 2]], rtol=1e-3, atol=1e-6)
