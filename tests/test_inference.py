"""fastcnn.inference: classify agrees with the softmax of predict_logits; evaluate with its parts."""
import numpy as np

from fastcnn import models
from fastcnn.data import load_mnist
from fastcnn.inference import classify, evaluate, predict_logits
from fastcnn.metrics import classification_report


def test_classify_is_the_softmax_of_the_logits_and_its_argmax():
    model = models.build("compact", seed=2)
    x, y = load_mnist().x_test[:64], load_mnist().y_test[:64]
    z = predict_logits(model, x, batch_size=16).astype(np.float64)
    ref = np.exp(z - z.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    pred, probs = classify(model, x, batch_size=16)
    assert pred.dtype == np.int64 and probs.shape == (64, 10)
    np.testing.assert_allclose(probs, ref, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(pred, ref.argmax(axis=1))
    rep = classification_report(y, pred, probs.shape[1])
    assert rep["accuracy"] == evaluate(model, x, y, batch_size=16)["accuracy"]


def test_classify_of_no_images_is_empty():
    pred, probs = classify(models.build("compact"), np.zeros((0, 28, 28), np.uint8))
    assert pred.shape == (0,) and probs.size == 0
