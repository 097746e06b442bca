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
from .nn import ShapeError, SoftmaxCrossEntropy
from .tta import offsets, shift_images


def check_images(model, x, source: str = "the images") -> None:
    """Raise unless ``x`` is uint8 images (N, H, W) or (N, C, H, W) of the size ``model`` takes
    (its ``input_shape``, when it has one); the error names ``source`` (a file, a data set)."""
    dtype, shape = getattr(x, "dtype", None), tuple(getattr(x, "shape", ()))
    if dtype != np.uint8 or len(shape) not in (3, 4):
        raise TypeError(f"{source}: expected uint8 images (N, H, W), got {dtype} {shape}")
    want = getattr(model, "input_shape", None)
    if want is None or len(want) != 3:
        return
    per = (1, *shape[1:]) if len(shape) == 3 else shape[1:]
    if per[1:] != tuple(want[1:]):
        raise ShapeError(f"{source}: the images are {per[1]}×{per[2]} pixels ({shape}) but the model takes "
                         f"{want[1]}×{want[2]} (input {tuple(want)}); resize or crop them to {want[1]}×{want[2]} "
                         "(MNIST's size), or use data of that size")
    if per[0] != want[0]:
        raise ShapeError(f"{source}: the images have {per[0]} channel{'s' if per[0] != 1 else ''} ({shape}) but the "
                         f"model takes {want[0]} (input {tuple(want)})")


def predict_logits(model, x_uint8, batch_size: int = 1000, dtype=np.float32):
    """Logits (N, K) on the model's device for uint8 images (N, H, W), in evaluation mode (a
    Sequential's ``infer``: its batch norms folded into the layers after them, nn/fold.py).
    Images of another size than the model's ``input_shape`` are a ShapeError (check_images)."""
    check_images(model, x_uint8)
    xp = model.xp
    was_training = model.training
    model.eval()
    out = []
    try:
        layers = model.inference_layers() if hasattr(model, "inference_layers") else None  # batch norms folded
        for s in range(0, len(x_uint8), batch_size):
            xb = normalize(backend.to_device(x_uint8[s:s + batch_size], xp), xp, dtype)
            out.append(model.forward(xb) if layers is None else model.infer(xb, layers))
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
