"""Learning-rate schedules against the closed forms in the torch.optim.lr_scheduler docs."""
import io
import math

import numpy as np
import pytest

from fastcnn import optim, schedule
from fastcnn.nn.module import Parameter


def sgd(lr=0.1):
    return optim.SGD([Parameter(np.zeros(2, np.float32))], lr)


def lrs(sched, n, metrics=None):
    """lr before any step, then after each of ``n`` steps; checks the optimizer follows."""
    out = [sched.lr]
    for t in range(n):
        sched.step(None if metrics is None else metrics[t])
        assert sched.optimizer.lr == sched.lr
        out.append(sched.lr)
    return out


def test_constant():
    s = schedule.ConstantLR(sgd(0.1))
    assert lrs(s, 5) == [0.1] * 6 and not s.per_batch
    warm = schedule.ConstantLR(sgd(0.1), factor=0.5, total_iters=2)
    np.testing.assert_allclose(lrs(warm, 4), [0.05, 0.05, 0.1, 0.1, 0.1], rtol=1e-15)


def test_step_lr():
    s = schedule.StepLR(sgd(0.1), step_size=3, gamma=0.5)
    expected = [0.1 * 0.5 ** (t // 3) for t in range(11)]
    np.testing.assert_allclose(lrs(s, 10), expected, rtol=1e-15)
    assert expected[:4] == [0.1, 0.1, 0.1, 0.05]


def test_multistep_lr():
    s = schedule.MultiStepLR(sgd(0.1), milestones=[2, 5], gamma=0.1)
    np.testing.assert_allclose(lrs(s, 7), [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001], rtol=1e-12)


def test_exponential_lr():
    s = schedule.ExponentialLR(sgd(0.1), gamma=0.9)
    np.testing.assert_allclose(lrs(s, 6), [0.1 * 0.9 ** t for t in range(7)], rtol=1e-15)


def test_cosine_annealing():
    s = schedule.CosineAnnealingLR(sgd(0.1), T_max=8, eta_min=0.001)
    got = lrs(s, 8)
    expected = [0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(9)]
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    assert got[0] == pytest.approx(0.1) and got[4] == pytest.approx(0.0505) and got[8] == pytest.approx(0.001)


def test_one_cycle_endpoints_and_shape():
    opt = sgd(0.5)  # its own lr is replaced: the cycle starts at max_lr/div_factor
    s = schedule.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    assert s.per_batch and opt.lr == pytest.approx(0.1 / 25)
    got = lrs(s, 105)
    assert got[0] == pytest.approx(0.004, rel=1e-12)
    assert got[29] == pytest.approx(0.1, rel=1e-12)  # peak at pct_start·total - 1
    assert max(got) == got[29]
    assert got[99] == pytest.approx(0.004 / 1e4, rel=1e-12)
    assert got[100:] == [got[99]] * 6  # past the end it stays at the final rate
    assert all(a < b for a, b in zip(got[:29], got[1:30])) and all(a > b for a, b in zip(got[29:99], got[30:100]))

    def cos(start, end, pct):
        return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)

    for t in (5, 17, 29):
        assert got[t] == pytest.approx(cos(0.004, 0.1, t / 29), rel=1e-12)
    for t in (30, 64, 99):
        assert got[t] == pytest.approx(cos(0.1, 4e-7, (t - 29) / 70), rel=1e-12)


def test_one_cycle_custom_factors():
    s = schedule.OneCycleLR(sgd(), max_lr=1.0, total_steps=10, pct_start=0.5, div_factor=10, final_div_factor=100)
    got = lrs(s, 9)
    assert got[0] == pytest.approx(0.1) and got[4] == pytest.approx(1.0) and got[9] == pytest.approx(0.001)


def test_plateau_reduces_after_patience():
    s = schedule.ReduceLROnPlateau(sgd(0.1), mode="max", factor=0.5, patience=2)
    got = lrs(s, 8, [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6])
    # bad epochs from step 3; the third one (> patience) halves the rate, then counting restarts
    np.testing.assert_allclose(got, [0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025], rtol=1e-15)


def test_plateau_threshold_cooldown_min_lr_and_min_mode():
    # improvements smaller than threshold (relative) count as bad epochs
    s = schedule.ReduceLROnPlateau(sgd(0.1), factor=0.1, patience=0, threshold=0.1)
    np.testing.assert_allclose(lrs(s, 2, [1.0, 1.05]), [0.1, 0.1, 0.01])
    # cooldown: after a reduction, bad epochs are not counted for `cooldown` steps
    s = schedule.ReduceLROnPlateau(sgd(0.1), mode="min", factor=0.1, patience=0, cooldown=2, min_lr=0.0005)
    got = lrs(s, 7, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(got, [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001], rtol=1e-12)
    got = lrs(s, 6, [1.0] * 6)
    assert min(got) == 0.0005  # clipped at min_lr
    # mode min: a falling loss is improvement
    s = schedule.ReduceLROnPlateau(sgd(0.1), mode="min", patience=0)
    assert lrs(s, 3, [3.0, 2.0, 1.0]) == [0.1] * 4


def test_level_schedule():
    s = schedule.LevelSchedule(sgd(0.01), [(0.95, 0.005), (0.97, 0.002)])
    got = lrs(s, 6, [0.90, 0.955, 0.96, 0.94, 0.975, 0.5])
    assert got == [0.01, 0.01, 0.005, 0.005, 0.005, 0.002, 0.002]  # never raised back
    s = schedule.LevelSchedule(sgd(0.01), [(0.95, 0.005), (0.97, 0.002)])
    assert lrs(s, 1, [0.99]) == [0.01, 0.002]  # jumps straight to the lowest level reached
    s = schedule.LevelSchedule(sgd(0.01), [(0.5, 0.005), (0.2, 0.001)], mode="min")
    assert lrs(s, 3, [0.6, 0.4, 0.1]) == [0.01, 0.01, 0.005, 0.001]
    s = schedule.LevelSchedule(sgd(0.001), [(0.95, 0.005)])
    assert lrs(s, 1, [0.99]) == [0.001, 0.001]  # a level above the current rate does not raise it


@pytest.mark.parametrize("cls", [schedule.ReduceLROnPlateau, schedule.LevelSchedule])
def test_metric_required(cls):
    s = cls(sgd()) if cls is schedule.ReduceLROnPlateau else cls(sgd(), [(0.9, 0.01)])
    with pytest.raises(ValueError, match="needs the monitored metric"):
        s.step()


def test_per_batch_flags():
    assert schedule.OneCycleLR.per_batch
    for name in schedule.SCHEDULES:
        s = schedule.make(name, sgd(), epochs=10, steps_per_epoch=5)
        assert s.per_batch is (name == "onecycle")


def test_make_defaults_from_run_length():
    opt = sgd(0.1)
    s = schedule.make("step", opt, epochs=9, steps_per_epoch=100)
    assert isinstance(s, schedule.StepLR) and s.step_size == 3 and s.gamma == 0.1
    assert schedule.make("step", sgd(), epochs=2, steps_per_epoch=1).step_size == 1
    assert schedule.make("multistep", sgd(), epochs=20, steps_per_epoch=1).milestones == [10, 15]
    assert schedule.make("multistep", sgd(), epochs=2, steps_per_epoch=1).milestones == [1]
    assert schedule.make("exponential", sgd(), 5, 1).gamma == 0.9
    c = schedule.make("cosine", sgd(), 12, 1, eta_min=0.001)
    assert c.T_max == 12 and c.eta_min == 0.001
    o = schedule.make("onecycle", sgd(0.2), epochs=3, steps_per_epoch=50)
    assert o.total_steps == 150 and o.max_lr == 0.2
    p = schedule.make("plateau", sgd(), epochs=30, steps_per_epoch=1)
    assert p.mode == "max" and p.patience == 3
    lv = schedule.make("level", sgd(0.01), epochs=10, steps_per_epoch=1)
    assert lv.levels == [(0.95, 0.005), (0.97, 0.002)]
    assert type(schedule.make("none", sgd(), 3, 1)) is schedule.ConstantLR
    assert schedule.make("step", sgd(), 9, 1, step_size=2, gamma=0.5).step_size == 2
    with pytest.raises(ValueError, match="unknown schedule 'linear': choose one of none, constant, step"):
        schedule.make("linear", sgd(), 3, 1)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        schedule.make("step", sgd(), 0, 1)


@pytest.mark.parametrize("name, metrics", [
    ("step", None), ("multistep", None), ("exponential", None), ("cosine", None), ("onecycle", None),
    ("plateau", [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7]),
    ("level", [0.9, 0.96, 0.9, 0.98, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]),
])
def test_state_dict_round_trip(name, metrics):
    kw = {"patience": 1, "cooldown": 1} if name == "plateau" else {}
    ref = schedule.make(name, sgd(0.1), epochs=10, steps_per_epoch=2, **kw)
    full = lrs(ref, 10, metrics)
    s = schedule.make(name, sgd(0.1), epochs=10, steps_per_epoch=2, **kw)
    first = lrs(s, 4, metrics)
    buf = io.BytesIO()
    np.savez(buf, **s.state_dict())
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    opt2 = sgd(0.1)
    s2 = schedule.make(name, opt2, epochs=10, steps_per_epoch=2, **kw)
    s2.load_state_dict(state)
    assert opt2.lr == s.lr and s2.last_epoch == 4
    rest = lrs(s2, 6, None if metrics is None else metrics[4:])
    assert first + rest[1:] == full
    assert all(isinstance(v, (int, float)) for v in s.state_dict().values())
    with pytest.raises(ValueError, match="lacks"):
        s2.load_state_dict({})


@pytest.mark.parametrize("build, message", [
    (lambda o: schedule.StepLR(o, 0), "step_size must be an integer >= 1"),
    (lambda o: schedule.StepLR(o, 2.5), "step_size"),
    (lambda o: schedule.StepLR(o, 2, gamma=0), "gamma must be a finite number > 0"),
    (lambda o: schedule.ExponentialLR(o, -0.5), "gamma"),
    (lambda o: schedule.MultiStepLR(o, [5, 3]), "strictly increasing"),
    (lambda o: schedule.MultiStepLR(o, [3, 3]), "strictly increasing"),
    (lambda o: schedule.MultiStepLR(o, []), "non-empty"),
    (lambda o: schedule.MultiStepLR(o, [0, 3]), "milestone"),
    (lambda o: schedule.CosineAnnealingLR(o, 0), "T_max"),
    (lambda o: schedule.CosineAnnealingLR(o, 10, eta_min=1.0), "eta_min"),
    (lambda o: schedule.OneCycleLR(o, 0.0, 100), "max_lr"),
    (lambda o: schedule.OneCycleLR(o, 0.1, 0), "total_steps"),
    (lambda o: schedule.OneCycleLR(o, 0.1, 100, pct_start=1.5), "pct_start"),
    (lambda o: schedule.OneCycleLR(o, 0.1, 100, div_factor=0), "div_factor"),
    (lambda o: schedule.ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: schedule.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: schedule.ReduceLROnPlateau(o, patience=-1), "patience"),
    (lambda o: schedule.ReduceLROnPlateau(o, min_lr=-1), "min_lr"),
    (lambda o: schedule.LevelSchedule(o, []), "at least one"),
    (lambda o: schedule.LevelSchedule(o, [0.95]), "pairs"),
    (lambda o: schedule.LevelSchedule(o, [(0.95, 0)]), "level lr"),
    (lambda o: schedule.ConstantLR(o, factor=0), "factor"),
])
def test_invalid_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build(sgd())


TORCH_CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5), 12),
    ("MultiStepLR", dict(milestones=[2, 5, 9], gamma=0.3), 12),
    ("ExponentialLR", dict(gamma=0.8), 12),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.002), 10),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=40, pct_start=0.25), 39),
]


@pytest.mark.parametrize("cls, kw, n", TORCH_CASES)
def test_matches_torch_lr_scheduler(cls, kw, n):
    torch = pytest.importorskip("torch")
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    extra = {"cycle_momentum": False} if cls == "OneCycleLR" else {}
    ts = getattr(torch.optim.lr_scheduler, cls)(topt, **kw, **extra)
    s = getattr(schedule, cls)(sgd(0.1), **kw)
    theirs = [topt.param_groups[0]["lr"]]
    for _ in range(n):
        topt.step()
        ts.step()
        theirs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs(s, n), theirs, rtol=1e-10, atol=1e-15)


def test_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    metrics = [0.5, 0.6, 0.6, 0.60001, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    kw = dict(mode="max", factor=0.5, patience=1, threshold=1e-3, cooldown=1, min_lr=0.02)
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    theirs = [0.1]
    for m in metrics:
        ts.step(m)
        theirs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs(schedule.ReduceLROnPlateau(sgd(0.1), **kw), len(metrics), metrics), theirs)
