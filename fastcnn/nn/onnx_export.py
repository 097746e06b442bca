"""Export a Sequential to an ONNX file, for ONNX Runtime and every other ONNX consumer.

    from fastcnn.export_onnx import export      # or model.export_onnx(path, ...), or fastcnn.nn.onnx_export.export
    export(model, "model.onnx")                      # or model.export_onnx("model.onnx")

The graph, layer by layer (each fastcnn layer becomes the ONNX operators that compute
the same function in evaluation mode):

    Conv2D        -> Conv (weight (F, C, kh, kw), bias (F,), strides, pads, any kernel shape)
    MaxPool2D     -> MaxPool (padding acts as −inf, floor output size, as fastcnn)
    AvgPool2D     -> AveragePool count_include_pad=1 (padding counted as 0, as fastcnn)
    ReLU, LeakyReLU, Sigmoid, Tanh -> Relu, LeakyRelu(alpha = slope), Sigmoid, Tanh
    BatchNorm1d/2d -> BatchNormalization with the running statistics (inference mode)
    Linear        -> Gemm (x (N, in) @ W (in, out) + b)
    Flatten       -> Flatten axis=1
    Dropout       -> Identity (dropout is the identity in evaluation)
    ConvReLU(+MaxPool) (nn/fused.py) -> its Conv, Relu (and MaxPool) parts

Input ``input``: float32 (batch, C, H, W) normalised as fastcnn normalises
(``(x/255 − MEAN)/STD``, see fastcnn.data.normalize); with ``uint8_input=True`` the input
``images`` is raw uint8 (batch, C, H, W) and the graph normalises it (Cast, Mul, Add: the same
float32 operations as ``normalize``). Output ``logits``: float32 (batch, K). The batch axis is
dynamic. Parameters are written as float32 whatever the model's dtype or device.

The ``onnx`` package only builds the file (``pip install 'fastcnn[onnx]'``); it is imported
here, lazily, never by the layers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__, backend, files
from ..data.loader import MEAN, STD
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .conv import Conv2D
from .dropout import Dropout
from .fused import ConvReLU, ConvReLUMaxPool
from .linear import Linear
from .norm import BatchNorm1d, BatchNorm2d
from .pool import AvgPool2D, MaxPool2D
from .shape import Flatten

#: The lowest opset written (BatchNormalization without training outputs, current op set).
MIN_OPSET = 17


class OnnxExportError(ValueError):
    """A model (or a layer of it) that cannot be written as ONNX; the message says what to do."""


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise ModuleNotFoundError("exporting to ONNX needs the onnx package: pip install 'fastcnn[onnx]' "
                                  "(or pip install onnx)") from e
    return onnx


class _Graph:
    """Nodes and initializers collected while walking the layers; ``x`` is the current tensor's name."""

    def __init__(self, onnx, x: str):
        self.onnx, self.x = onnx, x
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        arr = np.ascontiguousarray(np.asarray(backend.as_numpy(value), dtype=np.float32))
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, name: str, inputs: list, **attrs) -> str:
        """Append ``op_type`` applied to the current tensor (and ``inputs``); its output becomes current."""
        out = f"{name}:out"
        self.nodes.append(self.onnx.helper.make_node(op_type, [self.x] + inputs, [out], name=name, **attrs))
        self.x = out
        return out


def _conv(g, layer: Conv2D, name: str):
    inputs = [g.const(f"{name}.weight", layer.weight.data)]
    if layer.bias is not None:
        inputs.append(g.const(f"{name}.bias", layer.bias.data))
    (ph, pw) = layer.padding
    g.op("Conv", name, inputs, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
         pads=[ph, pw, ph, pw], dilations=[1, 1], group=1)


def _pool(g, layer, name: str):
    (ph, pw) = layer.padding
    geo = dict(kernel_shape=list(layer.kernel_size), strides=list(layer.stride), pads=[ph, pw, ph, pw], ceil_mode=0)
    if layer.mode == "max":
        g.op("MaxPool", name, [], **geo)
    else:
        g.op("AveragePool", name, [], count_include_pad=1, **geo)


def _batchnorm(g, layer, name: str):
    ins = [g.const(f"{name}.{n}", v) for n, v in (("weight", layer.weight.data), ("bias", layer.bias.data),
                                                    ("running_mean", layer.running_mean),
                                                    ("running_var", layer.running_var))]
    g.op("BatchNormalization", name, ins, epsilon=float(layer.eps))


def _linear(g, layer: Linear, name: str):
    inputs = [g.const(f"{name}.weight", layer.weight.data)]
    if layer.bias is not None:
        inputs.append(g.const(f"{name}.bias", layer.bias.data))
    g.op("Gemm", name, inputs, alpha=1.0, beta=1.0, transA=0, transB=0)


def _fused(g, layer, name: str):
    _conv(g, layer.conv, f"{name}.conv")
    g.op("Relu", f"{name}.relu", [])
    if getattr(layer, "pool", None) is not None:
        _pool(g, layer.pool, f"{name}.pool")


def _is_sequential(m) -> bool:
    """A fastcnn.nn.Sequential (known by its parts: this module sits below sequential.py, which
    offers ``Sequential.export_onnx``)."""
    return isinstance(getattr(m, "layers", None), list) and callable(getattr(m, "plan", None))


def _converters() -> dict:
    """Layer class -> converter. Exact classes only: a subclass may compute something else."""
    act = lambda op, **attrs: lambda g, layer, name: g.op(op, name, [], **attrs)  # noqa: E731
    return {
        Conv2D: _conv, MaxPool2D: _pool, AvgPool2D: _pool,
        ReLU: act("Relu"), Sigmoid: act("Sigmoid"), Tanh: act("Tanh"),
        LeakyReLU: lambda g, layer, name: g.op("LeakyRelu", name, [], alpha=float(layer.slope)),
        BatchNorm1d: _batchnorm, BatchNorm2d: _batchnorm, Linear: _linear,
        Flatten: act("Flatten", axis=1), Dropout: act("Identity"),
        ConvReLU: _fused, ConvReLUMaxPool: _fused,
    }


def _walk(g, model, converters: dict, prefix: str = ""):
    for i, layer in enumerate(model.layers):
        where = f"{prefix}{i}"
        if _is_sequential(layer):
            _walk(g, layer, converters, f"{where}.")
            continue
        convert = converters.get(type(layer))
        if convert is None:
            supported = ", ".join(sorted(c.__name__ for c in converters))
            raise OnnxExportError(
                f"cannot export layer {where} ({layer.name}, a {type(layer).__name__}) to ONNX: fastcnn has no "
                f"ONNX converter for it. Build the model from the layers that export (Sequential, {supported}), "
                f"or add a converter for {type(layer).__name__} to fastcnn/nn/onnx_export.py. Nothing was written.")
        convert(g, layer, f"{where}.{type(layer).__name__}")


def build(model, input_shape=None, uint8_input: bool = False, opset: int = MIN_OPSET, metadata: dict | None = None):
    """The ONNX ModelProto of ``model`` (a Sequential), checked with ``onnx.checker.check_model``.

    input_shape: per-sample (C, H, W); default ``model.input_shape``. metadata: str -> value,
    stored (as strings) in the model's ``metadata_props`` beside the normalisation used.
    Raises OnnxExportError naming the first layer that cannot be exported.
    """
    onnx = _onnx()
    helper, TP = onnx.helper, onnx.TensorProto
    if not _is_sequential(model):
        raise OnnxExportError(f"export_onnx takes a fastcnn.nn.Sequential, got a {type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise OnnxExportError(f"opset must be an integer ≥ {MIN_OPSET} and ≤ {newest} (the newest this onnx "
                              f"{onnx.__version__} knows), got {opset!r}")
    shape = tuple(input_shape) if input_shape is not None else model.input_shape
    if shape is None or len(shape) != 3:
        raise OnnxExportError(f"the exported graph needs the per-sample input shape (C, H, W), e.g. (1, 28, 28); "
                              f"got {shape!r}: pass input_shape=")
    out_shape = model.output_shape(shape)  # ShapeError (a ValueError) names the layer that cannot take it

    g = _Graph(onnx, "images" if uint8_input else "input")
    if uint8_input:
        # the float32 operations of fastcnn.data.normalize: x · (1 / (255 std)) + (−mean / std)
        g.op("Cast", "normalize.cast", [], to=TP.FLOAT)
        g.op("Mul", "normalize.scale", [g.const("normalize.a", np.float32(1.0 / (255.0 * STD)))])
        g.op("Add", "normalize.shift", [g.const("normalize.b", np.float32(-MEAN / STD))])
    _walk(g, model, _converters())
    g.nodes.append(helper.make_node("Identity", [g.x], ["logits"], name="logits"))

    x_info = helper.make_tensor_value_info("images" if uint8_input else "input",
                                           TP.UINT8 if uint8_input else TP.FLOAT, ["batch", *shape])
    y_info = helper.make_tensor_value_info("logits", TP.FLOAT, ["batch", *out_shape])
    graph = helper.make_graph(g.nodes, "fastcnn", [x_info], [y_info], initializer=g.inits)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="fastcnn", producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    meta = {"input": ("uint8 images (batch, C, H, W), normalised inside the graph" if uint8_input else
                      f"float32 (batch, C, H, W) = (pixels / 255 - {MEAN}) / {STD}"),
            "normalize_mean": MEAN, "normalize_std": STD, **(metadata or {})}
    helper.set_model_props(proto, {str(k): str(v) for k, v in meta.items() if v is not None})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model, path, input_shape=None, uint8_input: bool = False, opset: int = MIN_OPSET,
           metadata: dict | None = None) -> Path:
    """Write ``model`` to ``path`` as ONNX (see ``build``), atomically: an error leaves no file behind
    (and an existing file untouched). Returns the path."""
    proto = build(model, input_shape, uint8_input, opset, metadata)
    return files.write_atomic(path, lambda f: f.write(proto.SerializeToString()))
