"""Batch norms folded into the layer after them, for inference (Sequential.inference_layers).

In evaluation a batch norm is an affine map per channel (or feature), with its running statistics:
    y = a ⊙ x + s,     a = γ / √(σ²_run + ε),   s = β − μ_run · a
so a Conv2D without padding, or a Linear, that takes y computes
    W·(a ⊙ x + s) + b = (W · diag(a))·x + (W·s + b)
(a Flatten between them only repeats a and s over each channel's H·W features). The pair becomes
one layer: its weights scaled per input channel, its bias shifted; one pass over the activations
fewer, and a fused Conv → ReLU → pool after it stays fused. With padding the border sums would
differ (the zeros come after the norm), so a padded Conv2D keeps its norm; so does any layer of
another (or a user's sub-) type. The fold is computed in float64 and cast back.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import backend
from .conv import Conv2D
from .linear import Linear
from .module import Parameter
from .norm import BatchNorm1d, BatchNorm2d
from .shape import Flatten


def _affine(bn):
    """(a, s) of the norm in evaluation, float64: y = a ⊙ x + s."""
    xp = backend.array_module(bn.weight.data)
    f8 = np.float64
    a = bn.weight.data.astype(f8) / xp.sqrt(bn.running_var.astype(f8) + bn.eps)
    return a, bn.bias.data.astype(f8) - bn.running_mean.astype(f8) * a


def _foldable(bn, between, layer) -> bool:
    """Whether ``layer`` (after ``bn`` and, when not None, the Flatten ``between``) takes the fold."""
    if type(bn) is BatchNorm2d and type(layer) is Conv2D:
        return between is None and layer.padding == (0, 0) and layer.in_channels == bn.num_features
    if type(layer) is not Linear:
        return False
    if type(bn) is BatchNorm1d:
        return between is None and layer.in_features == bn.num_features
    return type(bn) is BatchNorm2d and between is not None and layer.in_features % bn.num_features == 0


def _folded(bn, layer):
    """A copy of ``layer`` with ``bn`` folded into new weight and bias Parameters (its own untouched)."""
    a, s = _affine(bn)
    w = layer.weight.data
    w8 = w.astype(np.float64)
    b8 = layer.bias.data.astype(np.float64) if layer.bias is not None else 0
    if type(layer) is Conv2D:  # W (F, C, kh, kw)
        weight = w8 * a[None, :, None, None]
        bias = b8 + w8.sum(axis=(2, 3)) @ s
    else:  # W (in, out); after a Flatten each channel's a, s covers its in/C features
        w3 = w8.reshape(bn.num_features, -1, layer.out_features)  # (C, in/C, out)
        weight = (w3 * a[:, None, None]).reshape(w.shape)
        bias = b8 + s @ w3.sum(axis=1)
    new = copy.copy(layer)
    new.weight = Parameter(weight.astype(w.dtype), "weight")
    new.bias = Parameter(bias.astype(w.dtype), "bias")
    new.name = f"{bn.name}+{layer.name}"
    new.clear_cache()
    return new.train(False)


def fold_batchnorms(layers: list) -> list:
    """The layers with each BatchNorm → [Flatten →] Conv2D (no padding) or Linear replaced by
    [Flatten →] one folded copy of the second layer; the other layers are the same objects.
    Exact only with the running statistics: for evaluation."""
    out, i = [], 0
    while i < len(layers):
        bn = layers[i]
        if type(bn) in (BatchNorm1d, BatchNorm2d) and i + 1 < len(layers):
            between = layers[i + 1] if type(layers[i + 1]) is Flatten else None
            j = i + 1 + (between is not None)
            if j < len(layers) and _foldable(bn, between, layers[j]):
                out += ([between] if between is not None else []) + [_folded(bn, layers[j])]
                i = j + 1
                continue
        out.append(bn)
        i += 1
    return out
