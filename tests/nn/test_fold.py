"""Inference with the batch norms folded into the layers after them (nn/fold.py, Sequential.infer)
gives what the evaluation-mode forward gives, and leaves the model as it was."""
import numpy as np
import pytest

from fastcnn import inference, models, nn
from fastcnn.nn.fold import fold_batchnorms


def _trained_stats(model, x):
    """Running statistics and norm parameters away from their initial 0, 1."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layer.weight.data[...] = rng.uniform(0.5, 2, layer.num_features)
            layer.bias.data[...] = rng.standard_normal(layer.num_features)
    model.train()
    for _ in range(3):
        model.forward(x * 2 + 0.5)
    model.eval()
    return model


def _net(*layers, shape=(2, 9, 9)):
    return nn.Sequential(*layers, seed=0, input_shape=shape).to("numpy", np.float64)


CASES = {
    "bn2d-conv": lambda: _net(nn.BatchNorm2d(2), nn.Conv2D(2, 3, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4)),
    "bn2d-flatten-linear": lambda: _net(nn.Conv2D(2, 3, 3), nn.ReLU(), nn.MaxPool2D(2), nn.BatchNorm2d(3), nn.Flatten(),
                                        nn.Linear(3 * 3 * 3, 5)),
    "bn1d-linear": lambda: _net(nn.Flatten(), nn.Linear(162, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 3)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_folded_inference_matches_the_evaluation_forward(case):
    model = CASES[case]()
    x = np.random.default_rng(0).standard_normal((7, 2, 9, 9))
    _trained_stats(model, x)
    before = [p.data.copy() for p in model.parameters()]
    layers = model.inference_layers()
    assert not any(isinstance(l, (nn.BatchNorm1d, nn.BatchNorm2d)) for l in layers)
    np.testing.assert_allclose(model.infer(x, layers), model.forward(x), rtol=1e-12, atol=1e-12)
    for a, p in zip(before, model.parameters()):  # the model's own parameters are untouched
        np.testing.assert_array_equal(p.data, a)


def test_the_presets_with_batch_norms_agree_in_float32():
    for name in ("fast99", "compact", "lab-best"):
        model = models.build(name)
        x = np.random.default_rng(0).standard_normal((6, 1, 28, 28)).astype(np.float32)
        _trained_stats(model, x)
        y = model.forward(x)
        np.testing.assert_allclose(model.infer(x), y, rtol=1e-5, atol=1e-5 * float(np.abs(y).max()))


def test_what_does_not_fold_keeps_its_norm():
    """A padded Conv2D (the zeros come after the norm) and a user's subclass keep the norm before them."""
    class MyConv(nn.Conv2D):
        pass

    for conv in (nn.Conv2D(2, 3, 3, padding=1), MyConv(2, 3, 3)):
        bn = nn.BatchNorm2d(2)
        assert fold_batchnorms([bn, conv]) == [bn, conv]
    bn = nn.BatchNorm2d(2)
    model = _net(bn, nn.Conv2D(2, 3, 3, padding=1), nn.Flatten(), nn.Linear(243, 2))
    x = np.random.default_rng(0).standard_normal((4, 2, 9, 9))
    _trained_stats(model, x)
    assert bn in model.inference_layers()
    np.testing.assert_allclose(model.infer(x), model.forward(x), rtol=1e-12, atol=1e-12)


def test_infer_asks_for_evaluation_mode_and_keeps_nothing_for_a_backward():
    model = models.build("fast99")
    x = np.zeros((2, 1, 28, 28), np.float32)
    with pytest.raises(RuntimeError, match="model.eval"):
        model.infer(x)
    model.eval()
    y = model.infer(x)
    with pytest.raises(RuntimeError, match="forward first"):
        model.backward(np.ones_like(y))


def test_predict_logits_folds_and_restores_the_mode():
    model = models.build("fast99")
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    _trained_stats(model, np.random.default_rng(2).standard_normal((8, 1, 28, 28)).astype(np.float32))
    model.train()
    logits = inference.predict_logits(model, x)
    assert model.training
    from fastcnn.data import normalize
    model.eval()
    np.testing.assert_allclose(logits, model.forward(normalize(x, np, np.float32)), rtol=1e-5, atol=1e-4)


def test_an_unfused_model_and_a_norm_at_the_end():
    """fusion=False folds all the same; a norm with nothing after it (or a Dropout between) stays."""
    layers = [nn.Conv2D(2, 3, 3), nn.ReLU(), nn.BatchNorm2d(3), nn.Conv2D(3, 4, 3), nn.ReLU(), nn.Flatten(),
              nn.Linear(100, 6), nn.BatchNorm1d(6), nn.Dropout(0.5), nn.Linear(6, 3), nn.BatchNorm1d(3)]
    model = nn.Sequential(*layers, seed=0, input_shape=(2, 9, 9), fusion=False).to("numpy", np.float64)
    x = np.random.default_rng(0).standard_normal((5, 2, 9, 9))
    _trained_stats(model, x)
    kept = [l for l in model.inference_layers() if isinstance(l, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert kept == [layers[7], layers[10]]
    np.testing.assert_allclose(model.infer(x), model.forward(x), rtol=1e-12, atol=1e-12)
