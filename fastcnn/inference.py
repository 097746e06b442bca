"""Inference: a trained model's logits, its accuracy and loss, its predicted classes.

    logits = predict_logits(model, x_uint8)          # (N, K) on the model's device
    r = evaluate(model, x_uint8, y, tta=1)           # {"accuracy", "loss"}
    pred, probs = classify(model, x_uint8)           # (N,) int64 classes, (N, K) float64 softmax

Images are uint8 (N, H, W); they are normalised as in training (fastcnn.data.normalize) batch
by batch, in evaluation mode, and the model's training mode is restored afterwards.
``tta=P`` averages the softmax over the image shifts of up to P pixels (fastcnn.tta).
A classification report (per-class precision / recall / F1) is fastcnn.metrics'
``classification_report(y, pred)``.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .data import normalize
from .nn import SoftmaxCrossEntropy
from .tta import offsets, shift_images


def predict_logits(model, x_uint8, batch_size: int = 1000, dtype=np.float32):
    """Logits (N, K) on the model's device for uint8 images (N, H, W), in evaluation mode."""
    xp = model.xp
    was_training = model.training
    model.eval()
    out = []
    try:
        for s in range(0, len(x_uint8), batch_size):
            xb = normalize(backend.to_device(x_uint8[s:s + batch_size], xp), xp, dtype)
            out.append(model.forward(xb))
    finally:
        model.train(was_training)
        model.clear_cache()
    return xp.concatenate(out) if out else xp.zeros((0, 0), dtype)


def tta_log_probs(model, x_uint8, pixels: int = 1, batch_size: int = 1000, dtype=np.float32):
    """log of the softmax averaged over ``tta.offsets(pixels)`` shifts of uint8 images (N, H, W) -> (N, K).

    Being log-probabilities, softmax of the result gives back the averaged probabilities, so
    SoftmaxCrossEntropy scores it like logits and its argmax is the averaged prediction."""
    if x_uint8.ndim != 3:
        raise ValueError(f"TTA expects images of shape (N, H, W), got {x_uint8.shape}")
    views = offsets(pixels)
    mean = None
    for dy, dx in views:
        z = predict_logits(model, shift_images(x_uint8, dy, dx), batch_size, dtype)
        xp = backend.array_module(z)
        p = xp.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        mean = p if mean is None else mean + p
    mean /= len(views)
    xp = backend.array_module(mean)
    return xp.log(xp.maximum(mean, xp.finfo(mean.dtype).tiny))


def evaluate(model, x_uint8, y, batch_size: int = 1000, tta: int = 0) -> dict:
    """{"accuracy", "loss"} of ``model`` on uint8 images (N, H, W) and integer labels (N,);
    ``tta``: average the softmax over shifts of up to that many pixels (fastcnn.tta)."""
    logits = (tta_log_probs(model, x_uint8, tta, batch_size, model.dtype) if tta
              else predict_logits(model, x_uint8, batch_size, model.dtype))
    xp = backend.array_module(logits)
    if backend.array_module(y) is xp and not isinstance(y, np.ndarray):  # already on the device
        yd = y.astype(np.int64, copy=False)
    else:
        yd = backend.to_device(np.asarray(backend.as_numpy(y), dtype=np.int64), xp)
    loss = float(SoftmaxCrossEntropy().forward(logits, yd))
    acc = float((logits.argmax(axis=1) == yd).mean())
    return {"accuracy": acc, "loss": loss}


def classify(model, x_uint8, batch_size: int = 1000):
    """(predictions, probabilities) of uint8 images (N, H, W): numpy arrays (N,) int64 and (N, K)
    float64, the softmax of the logits; ``probabilities.max(axis=1)`` is each prediction's confidence."""
    logits = backend.as_numpy(predict_logits(model, x_uint8, batch_size, model.dtype)).astype(np.float64)
    if logits.size == 0:
        return np.zeros(0, np.int64), logits
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return p.argmax(axis=1).astype(np.int64), p
