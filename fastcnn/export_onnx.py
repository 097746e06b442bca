"""Trained models as ONNX graphs: the public name of fastcnn.nn.onnx_export (``fastcnn export``).

    from fastcnn.export_onnx import export
    export(model, "model.onnx", uint8_input=True)   # or model.export_onnx("model.onnx", ...)

The exporter lives with the layers it writes (fastcnn/nn/onnx_export.py), so that
``Sequential.export_onnx`` imports downward; see that module for the graph it builds.
"""
from .nn.onnx_export import MIN_OPSET, OnnxExportError, export

__all__ = ["MIN_OPSET", "OnnxExportError", "export"]
