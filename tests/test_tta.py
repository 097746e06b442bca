"""fastcnn.tta: shifts against np.roll with a zeroed border, averaged softmax against a reference."""
import numpy as np
import pytest

from fastcnn import nn
from fastcnn.inference import evaluate, predict_logits, tta_log_probs
from fastcnn.tta import offsets, shift_images


def _ref_shift(x, dy, dx):
    y = np.roll(x, (dy, dx), axis=(1, 2))
    if dy > 0:
        y[:, :dy] = 0
    elif dy < 0:
        y[:, dy:] = 0
    if dx > 0:
        y[:, :, :dx] = 0
    elif dx < 0:
        y[:, :, dx:] = 0
    return y


def test_offsets():
    assert offsets(0) == [(0, 0)]
    assert offsets(1) == [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0)]
    assert len(offsets(2)) == 9 and (0, -2) in offsets(2) and (2, 0) in offsets(2)
    with pytest.raises(ValueError, match="largest shift"):
        offsets(-1)


@pytest.mark.parametrize("dy,dx", [(0, 0), (1, 0), (-2, 0), (0, 1), (0, -2), (2, -1)])
def test_shift_matches_roll_with_zero_border(dy, dx):
    x = np.random.default_rng(0).integers(1, 256, (3, 7, 6)).astype(np.uint8)
    y = shift_images(x, dy, dx)
    assert y.dtype == np.uint8 and y.shape == x.shape
    np.testing.assert_array_equal(y, _ref_shift(x, dy, dx))


def _net():
    return nn.Sequential(nn.Conv2D(1, 4, 3), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(), nn.Linear(4 * 13 * 13, 10),
                         seed=5, input_shape=(1, 28, 28))


@pytest.mark.parametrize("pixels", [1, 2])
def test_tta_is_the_log_of_the_mean_softmax(pixels):
    x = np.random.default_rng(1).integers(0, 256, (7, 28, 28)).astype(np.uint8)
    m = _net()
    probs = []
    for dy, dx in offsets(pixels):
        z = predict_logits(m, _ref_shift(x, dy, dx)).astype(np.float64)
        e = np.exp(z - z.max(1, keepdims=True))
        probs.append(e / e.sum(1, keepdims=True))
    ref = np.log(np.mean(probs, axis=0))
    got = tta_log_probs(m, x, pixels, batch_size=3)
    assert got.shape == (7, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_evaluate_with_tta_scores_the_averaged_prediction():
    x = np.random.default_rng(2).integers(0, 256, (20, 28, 28)).astype(np.uint8)
    y = np.arange(20) % 10
    m = _net()
    logp = tta_log_probs(m, x, 1)
    r = evaluate(m, x, y, tta=1)
    assert r["accuracy"] == pytest.approx(float((logp.argmax(1) == y).mean()))
    assert r["loss"] == pytest.approx(float(-logp[np.arange(20), y].mean()), rel=1e-5)
