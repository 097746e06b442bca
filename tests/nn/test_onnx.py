"""ONNX export: every preset, run in ONNX Runtime, against fastcnn's own logits on the 10,000
MNIST test images; the uint8 input, the fused layers, the metadata, the CLI, and the errors."""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from fastcnn import cli, models, nn
from fastcnn.config import TrainConfig
from fastcnn.data import Dataset, load_mnist, normalize
from fastcnn.export_onnx import OnnxExportError, export
from fastcnn.nn.fused import fuse
from fastcnn.inference import predict_logits
from fastcnn.train import Trainer

TOL = 1e-4  # the bound on |logits_onnxruntime − logits_fastcnn|


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def _run(path, x):
    """Logits of the ONNX file at ``path`` for ``x``, in ONNX Runtime on the CPU."""
    so = ort.SessionOptions()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # a shared 2-core machine
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(["logits"], {s.get_inputs()[0].name: x})[0]


def _fixed_algos(model):
    """Convolutions and pools on the Numba path: no timing of the slower algorithms on 10,000
    images (report-c's forward costs ≈ 3 s of CPU on it, ≈ 19 s on im2col)."""
    for layer in model.layers:
        if isinstance(layer, (nn.Conv2D, nn.MaxPool2D, nn.AvgPool2D)):
            layer.algo = "numba"
    return model


def _seeded(name, seed=1):
    """Preset ``name`` with He-normal weights from ``seed`` and random batch-norm statistics.

    He weights everywhere (report-b's own N(0, 0.01²) gives logits ≈ 1e-10, where a 1e-4
    bound says nothing), non-zero biases, and non-trivial γ, β, μ, σ² so that
    BatchNormalization is really tested.
    """
    model = models.build(name, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.reset_parameters(rng, "he")
        if getattr(layer, "bias", None) is not None and isinstance(layer, (nn.Conv2D, nn.Linear)):
            layer.bias.data[...] = rng.normal(0, 0.1, layer.bias.shape)
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            f = layer.num_features
            layer.running_mean[...] = rng.normal(0, 1, f)
            layer.running_var[...] = rng.uniform(0.5, 2, f)
            layer.weight.data[...] = rng.uniform(0.5, 1.5, f)
            layer.bias.data[...] = rng.normal(0, 0.5, f)
    return model


def _agree(got, ref):
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() <= TOL
    assert np.array_equal(got.argmax(axis=1), ref.argmax(axis=1))


@pytest.mark.parametrize("name", models.names())
def test_every_preset_gives_fastcnns_logits_in_onnxruntime(name, mnist, tmp_path):
    model = _fixed_algos(_seeded(name))
    x = mnist.x_test  # all 10,000
    ref = predict_logits(model, x, batch_size=250)
    f32 = export(model, tmp_path / "f32.onnx")
    u8 = model.export_onnx(tmp_path / "u8.onnx", uint8_input=True)
    for path in (f32, u8):
        onnx.checker.check_model(onnx.load(path), full_check=True)
    _agree(_run(f32, normalize(x)), ref)
    _agree(_run(u8, x[:, None]), ref)


def test_every_layer_kind_and_geometry(mnist, tmp_path):
    """Rectangular kernels, strides ≠ kernel, both padding conventions (max: −inf, avg: 0 counted),
    no-bias layers, batch-norm 2-D, the four activations and dropout."""
    rng = np.random.default_rng(5)
    model = nn.Sequential(
        nn.Conv2D(1, 4, (3, 5), stride=(2, 1), padding=(1, 2), algo="naive"), nn.BatchNorm2d(4), nn.LeakyReLU(0.1),
        nn.MaxPool2D((3, 2), stride=(2, 1), padding=(1, 1), algo="naive"),
        nn.Conv2D(4, 6, (2, 3), padding=(0, 1), bias=False, algo="naive"), nn.Tanh(),
        nn.AvgPool2D(3, stride=2, padding=1, algo="naive"), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(6 * 3 * 15, 32, bias=False), nn.Sigmoid(), nn.Linear(32, 16), nn.ReLU(),
        nn.Linear(16, 10),
        seed=2, input_shape=(1, 28, 28))
    bn = model[1]
    bn.running_mean[...], bn.running_var[...] = rng.normal(0, 1, 4), rng.uniform(0.5, 2, 4)
    model.train()  # export writes evaluation behaviour whatever the mode
    x = mnist.x_test[:300]
    ref = predict_logits(model, x)
    path = model.export_onnx(tmp_path / "m.onnx")
    ops = [n.op_type for n in onnx.load(path).graph.node]
    for op in ("Conv", "BatchNormalization", "LeakyRelu", "MaxPool", "Tanh", "AveragePool", "Identity", "Flatten",
               "Gemm", "Sigmoid", "Relu"):
        assert op in ops
    _agree(_run(path, normalize(x)), ref)
    assert model.training  # the model's mode is left as it was


def test_a_fused_model_exports_as_its_parts(mnist, tmp_path):
    plain = nn.Sequential(nn.Conv2D(1, 4, 3), nn.ReLU(), nn.Conv2D(4, 6, 3, stride=2), nn.ReLU(), nn.MaxPool2D(2),
                          nn.Flatten(), nn.Linear(6 * 6 * 6, 10), seed=3, input_shape=(1, 28, 28))
    fused = fuse(plain)
    assert [type(l).__name__ for l in fused.layers][:2] == ["ConvReLU", "ConvReLUMaxPool"]
    _fixed_algos(plain)  # the reference; the fused layers are only exported, never run
    path = export(fused, tmp_path / "fused.onnx", input_shape=(1, 28, 28))
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops == ["Conv", "Relu", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Identity"]
    x = mnist.x_test[:500]
    _agree(_run(path, normalize(x)), predict_logits(plain, x))


def test_dynamic_batch_axis(mnist, tmp_path):
    model = _fixed_algos(_seeded("compact"))
    path = export(model, tmp_path / "m.onnx", uint8_input=True)
    inp = onnx.load(path).graph.input[0].type.tensor_type
    assert inp.elem_type == onnx.TensorProto.UINT8 and inp.shape.dim[0].dim_param == "batch"
    for n in (1, 7):
        _agree(_run(path, mnist.x_test[:n, None]), predict_logits(model, mnist.x_test[:n]))


def test_cli_exports_a_trained_run_with_its_metadata(mnist, tmp_path, capsys):
    """A short real training run of compact (batch-norm statistics learned), exported by the command."""
    ds = Dataset(mnist.x_train[:2000], mnist.y_train[:2000], mnist.x_test[:500], mnist.y_test[:500], name="small")
    run = tmp_path / "run-compact"
    Trainer(TrainConfig(model="compact", epochs=1, progress=False, out=str(run)), data=ds).fit()
    acc = json.loads((run / "metrics.json").read_text())["test_accuracy"]
    assert acc > 0.8  # it learned something: the comparison is on a trained model
    out = tmp_path / "model.onnx"
    assert cli.main(["export", "--weights", str(run), "--onnx", str(out), "--uint8-input"]) == 0
    assert "wrote" in capsys.readouterr().out
    proto = onnx.load(out)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["run"] == "run-compact" and meta["preset"] == "compact" and float(meta["test_accuracy"]) == acc
    assert proto.opset_import[0].version >= 17 and proto.producer_name == "fastcnn"
    model = _fixed_algos(models.build("compact").load(run / "model.npz"))
    _agree(_run(out, mnist.x_test[:, None]), predict_logits(model, mnist.x_test, batch_size=250))


def test_a_layer_that_cannot_be_exported_is_a_clear_error_and_writes_nothing(tmp_path):
    class Square(nn.Layer):
        def forward(self, x):
            return x * x

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), Square(), input_shape=(1, 28, 28))
    path = tmp_path / "m.onnx"
    with pytest.raises(OnnxExportError, match=r"layer 2 \(Square#2, a Square\).*add a converter"):
        model.export_onnx(path)
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"old")  # an existing file is left as it was
    with pytest.raises(OnnxExportError):
        export(model, path)
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_bad_settings_are_clear_errors(tmp_path):
    model = models.build("mlp")
    for opset in (13, onnx.defs.onnx_opset_version() + 1):
        with pytest.raises(OnnxExportError, match="opset must be an integer ≥ 17"):
            export(model, tmp_path / "m.onnx", opset=opset)
    model.input_shape = None
    with pytest.raises(OnnxExportError, match="input_shape="):
        export(model, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="cannot take"):
        export(model, tmp_path / "m.onnx", input_shape=(3, 28, 28))
    assert list(tmp_path.iterdir()) == []


def test_without_the_onnx_package_the_error_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'fastcnn\[onnx\]'"):
        models.build("mlp").export_onnx(tmp_path / "m.onnx")
    models.build("mlp").save(tmp_path / "w.npz")
    assert cli.main(["export", "--weights", str(tmp_path / "w.npz"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "fastcnn[onnx]" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
