"""fastcnn.ema: the moving average against a float64 reference loop, swap-in and restore, checkpoints."""
import numpy as np
import pytest

from fastcnn import nn
from fastcnn.ema import EMA


def _model():
    return nn.Sequential(nn.Conv2D(1, 3, 3), nn.ReLU(), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3 * 4 * 4, 2),
                         seed=1, input_shape=(1, 6, 6))


def _arrays(m):
    return [p.data for p in m.parameters()] + [b for l in m.layers for b in l.buffers().values()]


def _perturb(m, rng):
    for a in _arrays(m):
        a += rng.standard_normal(a.shape).astype(a.dtype)


@pytest.mark.parametrize("warmup", [True, False])
def test_average_matches_reference_loop(warmup):
    m, rng = _model(), np.random.default_rng(0)
    ema = EMA(m, 0.9, warmup=warmup)
    ref = [a.astype(np.float64) for a in _arrays(m)]
    for t in range(1, 31):
        _perturb(m, rng)
        ema.update()
        d = min(0.9, (1 + t) / (10 + t)) if warmup else 0.9
        ref = [d * r + (1 - d) * a.astype(np.float64) for r, a in zip(ref, _arrays(m))]
    assert ema.updates == 30 and len(ema.shadow) == len(ref) == 8  # 6 parameters, 2 batch-norm buffers
    for s, r in zip(ema.shadow, ref):
        np.testing.assert_allclose(s, r, rtol=1e-5, atol=1e-5)


def test_constant_weights_stay_put_and_decay_warms_up():
    m = _model()
    ema = EMA(m, 0.999)
    assert ema.current_decay() == pytest.approx(2 / 11)
    before = [a.copy() for a in _arrays(m)]
    for _ in range(5):
        ema.update()
    for s, a in zip(ema.shadow, before):
        np.testing.assert_allclose(s, a, rtol=1e-6, atol=1e-7)


def test_applied_swaps_in_and_restores_even_on_error():
    m, rng = _model(), np.random.default_rng(2)
    ema = EMA(m, 0.5, warmup=False)
    _perturb(m, rng)
    ema.update()
    live = [a.copy() for a in _arrays(m)]
    with ema.applied():
        for a, s in zip(_arrays(m), ema.shadow):
            np.testing.assert_array_equal(a, s)
    for a, b in zip(_arrays(m), live):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError):
        with ema.applied():
            raise RuntimeError("boom")
    for a, b in zip(_arrays(m), live):
        np.testing.assert_array_equal(a, b)


def test_state_dict_round_trip_restores_shadow_live_and_count():
    m, rng = _model(), np.random.default_rng(3)
    ema = EMA(m, 0.9)
    for _ in range(4):
        _perturb(m, rng)
        ema.update()
    st = ema.state_dict()
    live = [a.copy() for a in _arrays(m)]
    m2 = _model()
    with ema.applied():  # as a checkpoint does: model.npz holds the averaged weights
        m2.load_state_dict(m.state_dict())
    e2 = EMA(m2, 0.9)
    e2.load_state_dict(st)
    assert e2.updates == 4
    for a, b in zip(_arrays(m2), live):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(e2.shadow, ema.shadow):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="no EMA state"):
        e2.load_state_dict({})


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1])
def test_bad_decay_is_a_clear_error(decay):
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        EMA(_model(), decay)
