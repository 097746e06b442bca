"""Optimizers against trajectories worked out by hand (plain Python, element by element)."""
import io
import math

import numpy as np
import pytest

from fastcnn import optim
from fastcnn.nn.module import Parameter

W0 = [1.0, -2.0, 0.5]
GRADS = [[0.1, -0.2, 0.3], [0.4, 0.0, -0.5], [-0.3, 0.2, 0.1]]


def run(opt_factory, dtype=np.float64, grads=GRADS):
    """Run ``opt`` over GRADS from W0; return the weights after each step (as float64)."""
    p = Parameter(np.array(W0, dtype=dtype))
    opt = opt_factory([p])
    out = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        out.append(p.data.astype(np.float64).copy())
    return np.array(out), p, opt


# --- the formulas, one scalar at a time --------------------------------------
def hand_sgd(lr, mu=0.0, nesterov=False, wd=0.0):
    w, v, traj = list(W0), [0.0] * 3, []
    for g in GRADS:
        for j in range(3):
            gj = g[j] + wd * w[j]
            if mu:
                v[j] = mu * v[j] + gj
                gj = gj + mu * v[j] if nesterov else v[j]
            w[j] -= lr * gj
        traj.append(list(w))
    return np.array(traj)


def hand_adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    w, m, v, traj = list(W0), [0.0] * 3, [0.0] * 3, []
    for t, g in enumerate(GRADS, start=1):
        for j in range(3):
            if decoupled:
                w[j] -= lr * wd * w[j]
                gj = g[j]
            else:
                gj = g[j] + wd * w[j]
            m[j] = b1 * m[j] + (1 - b1) * gj
            v[j] = b2 * v[j] + (1 - b2) * gj * gj
            mhat, vhat = m[j] / (1 - b1 ** t), v[j] / (1 - b2 ** t)
            w[j] -= lr * mhat / (math.sqrt(vhat) + eps)
        traj.append(list(w))
    return np.array(traj)


CASES = {
    "sgd": (lambda ps: optim.SGD(ps, 0.1), hand_sgd(0.1)),
    "sgd_wd": (lambda ps: optim.SGD(ps, 0.1, weight_decay=0.01), hand_sgd(0.1, wd=0.01)),
    "momentum": (lambda ps: optim.SGD(ps, 0.1, momentum=0.9), hand_sgd(0.1, mu=0.9)),
    "momentum_wd": (lambda ps: optim.SGD(ps, 0.1, momentum=0.9, weight_decay=0.05),
                    hand_sgd(0.1, mu=0.9, wd=0.05)),
    "nesterov": (lambda ps: optim.SGD(ps, 0.1, momentum=0.9, nesterov=True),
                 hand_sgd(0.1, mu=0.9, nesterov=True)),
    "nesterov_wd": (lambda ps: optim.SGD(ps, 0.05, momentum=0.5, nesterov=True, weight_decay=0.1),
                    hand_sgd(0.05, mu=0.5, nesterov=True, wd=0.1)),
    "adam": (lambda ps: optim.Adam(ps, 0.01), hand_adam(0.01)),
    "adam_l2": (lambda ps: optim.Adam(ps, 0.01, betas=(0.8, 0.99), weight_decay=0.1),
                hand_adam(0.01, b1=0.8, b2=0.99, wd=0.1)),
    "adamw": (lambda ps: optim.AdamW(ps, 0.01, weight_decay=0.1), hand_adam(0.01, wd=0.1, decoupled=True)),
}


@pytest.mark.parametrize("case", CASES)
def test_trajectory_float64(case):
    factory, expected = CASES[case]
    traj, _, _ = run(factory)
    np.testing.assert_allclose(traj, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", CASES)
def test_float32_stays_float32(case):
    factory, expected = CASES[case]
    traj, p, opt = run(factory, dtype=np.float32)
    assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
    assert all(b.dtype == np.float32 for bufs in opt.state.values() for b in bufs)
    np.testing.assert_allclose(traj, expected, rtol=1e-6, atol=1e-7)


def test_first_steps_by_number():
    # SGD lr 0.1: w1 = w0 - 0.1·g1
    traj, _, _ = run(lambda ps: optim.SGD(ps, 0.1))
    np.testing.assert_allclose(traj[0], [0.99, -1.98, 0.47], rtol=1e-15)
    # momentum 0.9: v2 = 0.9·g1 + g2 = [0.49, -0.18, -0.23]; w2 = w1 - 0.1·v2
    traj, _, _ = run(lambda ps: optim.SGD(ps, 0.1, momentum=0.9))
    np.testing.assert_allclose(traj[1], [0.99 - 0.049, -1.98 + 0.018, 0.47 + 0.023], rtol=1e-14)
    # Adam's first step moves each weight by lr·sign(g) (up to eps)
    traj, _, _ = run(lambda ps: optim.Adam(ps, 0.01))
    np.testing.assert_allclose(traj[0], [0.99, -1.99, 0.49], rtol=1e-8)


def test_adamw_decoupling_differs_from_adam_l2():
    adam_l2, _, _ = run(lambda ps: optim.Adam(ps, 0.01, weight_decay=0.1))
    adamw, _, _ = run(lambda ps: optim.AdamW(ps, 0.01, weight_decay=0.1))
    plain, _, _ = run(lambda ps: optim.Adam(ps, 0.01))
    assert not np.allclose(adam_l2, adamw, rtol=1e-6)
    # AdamW's first step: w·(1 - lr·wd) then the plain Adam move
    np.testing.assert_allclose(adamw[0], np.array(W0) * (1 - 0.001) + (plain[0] - W0), rtol=1e-9)


def test_updates_in_place_and_grads_untouched():
    base = np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32)
    p = Parameter(base[:3])  # a view: the layer and the optimizer share memory
    alias = base[:3]
    for opt in (optim.SGD([p], 0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                optim.Adam([p], 0.1, weight_decay=0.1), optim.AdamW([p], 0.1)):
        data_id, grad_id = id(p.data), id(p.grad)
        p.grad[...] = [0.5, -0.25, 1.0]
        before = alias.copy()
        opt.step()
        assert id(p.data) == data_id and id(p.grad) == grad_id
        assert not np.array_equal(alias, before) and np.shares_memory(p.data, base)
        np.testing.assert_array_equal(alias, p.data)
        np.testing.assert_array_equal(p.grad, np.float32([0.5, -0.25, 1.0]))
        assert base[3] == 3.0


def test_zero_grad_in_place():
    ps = [Parameter(np.ones((2, 3), np.float32)), Parameter(np.ones(4, np.float32))]
    opt = optim.Adam(ps)
    ids = [id(p.grad) for p in ps]
    for p in ps:
        p.grad[...] = 7
    opt.zero_grad()
    assert [id(p.grad) for p in ps] == ids and all(not p.grad.any() for p in ps)


def test_several_parameters_of_different_sizes():
    rng = np.random.default_rng(0)
    big, small = Parameter(rng.standard_normal((4, 5))), Parameter(rng.standard_normal(3))
    one = [Parameter(big.data.copy()), Parameter(small.data.copy())]
    opt = optim.Adam([big, small], 0.01, weight_decay=0.1)
    refs = [optim.Adam([q], 0.01, weight_decay=0.1) for q in one]
    for _ in range(3):
        for p, q in zip((big, small), one):
            p.grad[...] = q.grad[...] = rng.standard_normal(p.shape)
        opt.step()
        for r in refs:
            r.step()
    np.testing.assert_array_equal(big.data, one[0].data)
    np.testing.assert_array_equal(small.data, one[1].data)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_state_dict_round_trip(name):
    def fresh():
        ps = [Parameter(np.array(W0, np.float32)), Parameter(np.full((2, 2), 0.5, np.float32))]
        return ps, optim.make(name, ps, 0.05, weight_decay=0.01)

    grads = [[np.float32(g), np.full((2, 2), g[0], np.float32)] for g in GRADS + GRADS[::-1]]
    ps_ref, ref = fresh()
    for gs in grads:
        for p, g in zip(ps_ref, gs):
            p.grad[...] = g
        ref.step()

    ps, opt = fresh()
    for gs in grads[:3]:
        for p, g in zip(ps, gs):
            p.grad[...] = g
        opt.step()
    buf = io.BytesIO()
    np.savez(buf, **opt.state_dict())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    assert int(state["step"]) == 3 and float(state["lr"]) == pytest.approx(0.05)

    ps2, opt2 = fresh()
    for p, q in zip(ps2, ps):
        p.data[...] = q.data
    opt2.load_state_dict(state)
    for gs in grads[3:]:
        for p, g in zip(ps2, gs):
            p.grad[...] = g
        opt2.step()
    for p, q in zip(ps2, ps_ref):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_keys_and_errors():
    p = Parameter(np.zeros(3, np.float32))
    opt = optim.Adam([p])
    opt.step()
    assert set(opt.state_dict()) == {"step", "lr", "m.0", "v.0"}
    assert set(optim.SGD([p], 0.1).state_dict()) == {"step", "lr"}
    good = opt.state_dict()
    with pytest.raises(ValueError, match="unexpected optimizer state entry 'm.1'"):
        opt.load_state_dict({**good, "m.1": np.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict({**good, "v.0": np.zeros(4)})
    with pytest.raises(ValueError, match="'step'"):
        opt.load_state_dict({"lr": 0.1})


def test_state_follows_a_parameter_recast():
    p = Parameter(np.array(W0, np.float32))
    opt = optim.SGD([p], 0.1, momentum=0.9)
    p.grad[...] = GRADS[0]
    opt.step()
    p.data, p.grad = p.data.astype(np.float64), p.grad.astype(np.float64)  # as Layer.to(dtype=...) does
    p.grad[...] = GRADS[1]
    opt.step()
    assert p.data.dtype == np.float64 and opt.state["v"][0].dtype == np.float64
    np.testing.assert_allclose(p.data, hand_sgd(0.1, mu=0.9)[1], rtol=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda ps: optim.SGD(ps, 0), "learning rate must be a finite number > 0"),
    (lambda ps: optim.SGD(ps, -0.1), "learning rate"),
    (lambda ps: optim.SGD(ps, float("nan")), "learning rate"),
    (lambda ps: optim.SGD(ps, 0.1, momentum=1.0), r"momentum must be in \[0, 1\)"),
    (lambda ps: optim.SGD(ps, 0.1, momentum=-0.1), "momentum"),
    (lambda ps: optim.SGD(ps, 0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda ps: optim.SGD(ps, 0.1, weight_decay=-1e-4), "weight_decay must be a finite number >= 0"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), r"beta1\) must be in \[0, 1\)"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "beta2"),
    (lambda ps: optim.Adam(ps, betas=(0.9,)), "pair"),
    (lambda ps: optim.Adam(ps, eps=0), "eps"),
    (lambda ps: optim.AdamW(ps, weight_decay=-1), "weight_decay"),
    (lambda ps: optim.Adam([]), "empty parameter list"),
])
def test_invalid_hyperparameters(build, message):
    with pytest.raises(ValueError, match=message):
        build([Parameter(np.zeros(2, np.float32))])


def test_registry_and_make():
    ps = [Parameter(np.zeros(2, np.float32))]
    assert set(optim.OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adam", "adamw"}
    m = optim.make("momentum", ps, 0.1)
    assert isinstance(m, optim.SGD) and m.momentum == 0.9 and not m.nesterov
    n = optim.make("Nesterov", ps, 0.1, weight_decay=1e-4)
    assert n.nesterov and n.momentum == 0.9 and n.weight_decay == 1e-4
    assert optim.make("momentum", ps, 0.1, momentum=0.5).momentum == 0.5
    assert optim.make("adamw", ps, 1e-3).weight_decay == 1e-2  # its own default
    assert optim.make("adamw", ps, 1e-3, weight_decay=0).weight_decay == 0
    assert type(optim.make("adam", ps, 1e-3)) is optim.Adam
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop': choose one of sgd, momentum, nesterov"):
        optim.make("rmsprop", ps, 0.1)


TORCH_CASES = [
    ("sgd", dict(lr=0.1, weight_decay=0.01)),
    ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam", dict(lr=0.01, weight_decay=0.1)),
    ("adamw", dict(lr=0.01, weight_decay=0.1)),
]


@pytest.mark.parametrize("name, kw", TORCH_CASES)
def test_matches_torch_optim(name, kw):
    torch = pytest.importorskip("torch")
    ours = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}[name]
    theirs = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((3, 4))
    p, tp = Parameter(w0.copy()), torch.tensor(w0.copy(), requires_grad=True)
    a, b = ours([p], **kw), theirs([tp], **kw)
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        p.grad[...] = g
        tp.grad = torch.tensor(g)
        a.step()
        b.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_step_makes_no_temporaries(name):
    import tracemalloc

    ps = [Parameter(np.ones((256, 256), np.float32)), Parameter(np.ones(300, np.float32))]
    opt = optim.make(name, ps, 0.01, weight_decay=0.01)
    for p in ps:
        p.grad[...] = 0.5
    opt.step()  # allocates the state buffers and the shared scratch
    tracemalloc.start()
    opt.step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 1024, f"a step allocated {peak} bytes (a 256x256 float32 array is 262144)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,wd", [("Adam", 0.0), ("Adam", 1e-2), ("AdamW", 1e-2)])
def test_adam_cpu_kernel_equals_the_array_path_bit_for_bit(cls, wd, dtype):
    from fastcnn import optim
    from fastcnn.nn.module import Parameter

    rng = np.random.default_rng(0)
    shapes = [(7, 5), (5,), (3, 2, 4, 4)]
    ws = [rng.standard_normal(s).astype(dtype) for s in shapes]
    runs = []
    for kernel in (True, False):
        params = [Parameter(w.copy(), f"p{i}") for i, w in enumerate(ws)]
        opt = getattr(optim, cls)(params, lr=3e-3, weight_decay=wd)
        opt.cpu_kernel = kernel
        for step in range(5):
            for p in params:
                p.grad[...] = np.random.default_rng(step).standard_normal(p.data.shape).astype(dtype)
            opt.step()
        runs.append(([p.data for p in params], opt.state_dict()))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    for k in runs[0][1]:
        np.testing.assert_array_equal(runs[0][1][k], runs[1][1][k])


def test_adam_cpu_kernel_after_load_state_dict_uses_the_loaded_buffers():
    """step() keeps flat views of each parameter's buffers; loading a state replaces the buffers,
    and the next step must use the loaded ones (as the array path does)."""
    from fastcnn import optim
    from fastcnn.nn.module import Parameter

    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(4)]
    results = []
    for kernel in (True, False):
        p = Parameter(w0.copy(), "w")
        opt = optim.Adam([p], lr=1e-2)
        opt.cpu_kernel = kernel
        for g in grads[:2]:
            p.grad[...] = g
            opt.step()
        saved = opt.state_dict()
        p.grad[...] = grads[2]
        opt.step()  # moves m and v on
        opt.load_state_dict(saved)
        p.grad[...] = grads[3]
        opt.step()
        results.append((p.data.copy(), opt.state_dict()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for k in results[0][1]:
        np.testing.assert_array_equal(results[0][1][k], results[1][1][k])
