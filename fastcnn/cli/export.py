"""`fastcnn export`: trained weights as an ONNX graph (fastcnn.export_onnx)."""
from __future__ import annotations

from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("export", help="write trained weights as an ONNX graph (for ONNX Runtime and others)",
                       description="Write the model of a run directory (or a model .npz) as ONNX, opset ≥ 17, "
                                   "dynamic batch axis. Needs the onnx package: pip install 'fastcnn[onnx]'.")
    p.add_argument("--weights", required=True, help="a run directory or a model .npz")
    p.add_argument("--model", help="preset of a bare .npz (default: read from the run directory or guessed)")
    p.add_argument("--onnx", required=True, metavar="MODEL.onnx", help="the file to write")
    p.add_argument("--uint8-input", action="store_true",
                   help="input raw uint8 images (batch, C, H, W), normalised inside the graph "
                        "(default: float32 normalised as fastcnn normalises)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17, at least 17)")
    p.set_defaults(backend="numpy")  # the weights are written from the host


def run(args) -> int:
    """Write trained weights as ONNX, with the run's name, preset and accuracy as metadata."""
    from .. import rundir
    from ..export_onnx import export
    from .options import load_weights

    model, name = load_weights(args)
    wpath = Path(args.weights)
    meta = {"run": wpath.name if wpath.is_dir() else wpath.stem, "preset": name,
            "test_accuracy": rundir.run_metrics(wpath).get("test_accuracy")}
    try:
        out = export(model, args.onnx, uint8_input=args.uint8_input, opset=args.opset, metadata=meta)
    except ImportError as e:  # the onnx package is an optional extra
        raise ValueError(str(e)) from None
    kind = "uint8 images (batch, C, H, W)" if args.uint8_input else "normalised float32 (batch, C, H, W)"
    print(f"wrote {out} ({name}, input: {kind}, output: logits; opset {args.opset})")
    return 0
