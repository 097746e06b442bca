"""`fastcnn train --model PATH.py:FUNC`: the user's own network trained as a preset is (budget
line, --target-acc, --time-budget, checkpoints, resume, eval, predict, report), its file recorded
in the run with its SHA-256 and a copy; a changed file is refused, naming it and both hashes."""
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastcnn import cli, models
from fastcnn.models import user

GOOD = Path(__file__).parent / "files" / "good.py"


def _main(capsys, *argv):
    rc = cli.main(list(map(str, argv)))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def net(tmp_path):
    """A copy of good.py the test may change."""
    p = tmp_path / "net.py"
    shutil.copy(GOOD, p)
    return p


def test_train_eval_predict_and_the_record(tmp_path, net, small_idx, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = _main(capsys, "train", "--model", "net.py:small_net", "--data-dir", small_idx, "--epochs", "2",
                         "--target-acc", "0.5", "--lr", "0.01", "--no-progress")
    assert rc == 0, err
    assert "net.py:small_net fits the lab's budget of 9·9·20 + 2000·100 + 100·10 = 202,620 parameters " \
           "(5,874 = 2.9% of it)" in out
    run = next((tmp_path / "runs").glob("net-small_net-*"))  # the default run directory, named after the file
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "target_reached" and m["test_accuracy"] >= 0.5 and m["params"] == 5874
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == f"{net.resolve()}:small_net"  # absolute: the run works from any folder
    rec = json.loads((run / "model_source.json").read_text())
    assert rec == {"spec": f"{net.resolve()}:small_net", "path": str(net.resolve()), "function": "small_net",
                   "sha256": hashlib.sha256(net.read_bytes()).hexdigest(), "copy": "model_source.py"}
    assert (run / "model_source.py").read_bytes() == net.read_bytes()
    # eval and predict rebuild the network from the file (here from another folder)
    monkeypatch.chdir(small_idx)
    rc, out, err = _main(capsys, "eval", "--weights", run)
    assert rc == 0, err
    acc = float(re.search(r"test accuracy (0\.\d+) on 200 images", out).group(1))
    assert acc == pytest.approx(m["test_accuracy"], abs=1e-4)
    np.save(tmp_path / "digits.npy", np.zeros((3, 28, 28), np.uint8))
    rc, out, err = _main(capsys, "predict", "--weights", run, "--input", tmp_path / "digits.npy")
    assert rc == 0 and len(out.split()) == 3, err
    # export: the user's layers have no ONNX equivalent, said clearly
    pytest.importorskip("onnx")
    rc, out, err = _main(capsys, "export", "--weights", run, "--onnx", tmp_path / "m.onnx")
    assert rc == 2 and "cannot export layer 0 (LoopConv2D#0" in err and not (tmp_path / "m.onnx").exists()


def test_a_changed_file_is_refused_and_the_copy_can_be_named(tmp_path, net, small_idx, capsys):
    run = tmp_path / "run"
    rc, _, err = _main(capsys, "train", "--model", f"{net}:small_net", "--data-dir", small_idx, "--epochs", "2",
                       "--time-budget", "0.05", "--out", run, "--no-progress")
    assert rc == 0, err
    before = json.loads((run / "metrics.json").read_text())
    assert before["status"] == "time_budget" and before["epochs"] < 2
    old = hashlib.sha256(net.read_bytes()).hexdigest()
    net.write_text(net.read_text() + "\n# a change\n")
    new = hashlib.sha256(net.read_bytes()).hexdigest()
    for argv in (["eval", "--weights", run], ["train", "--resume", run, "--no-progress"],
                 ["predict", "--weights", run, "--input", tmp_path / "x.npy"]):
        rc, _, err = _main(capsys, *argv)
        assert rc == 2, argv
        assert f"{net.resolve()} has changed since {run} was trained with it" in err
        assert old in err and new in err and "model_source.py" in err
    rc, out, err = _main(capsys, "eval", "--weights", run, "--model", f"{run}/model_source.py:small_net")
    assert rc == 0, err
    shutil.copy(run / "model_source.py", net)  # put back: the run resumes where it stopped
    rc, out, err = _main(capsys, "train", "--resume", run, "--time-budget", "1000", "--no-progress")
    assert rc == 0, err
    after = json.loads((run / "metrics.json").read_text())
    assert after["status"] == "completed" and after["epochs"] == 2.0
    net.unlink()
    rc, _, err = _main(capsys, "eval", "--weights", run)
    assert rc == 2 and "which no longer exists" in err


def test_report_of_a_user_network(tmp_path, net, small_idx, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    assert _main(capsys, "train", "--model", f"{net}:small_net", "--data-dir", small_idx, "--epochs", "1",
                 "--out", run, "--no-progress")[0] == 0
    rc, out, err = _main(capsys, "report", run)
    assert rc == 0, err
    page = (run / "report.html").read_text()
    assert "LoopConv2D" in page and "Training curves" in page
    assert not list(run.glob(".report.html.*"))  # written atomically: no temporary file left
    from fastcnn import files
    from fastcnn.viz.report import build_report

    def fail(*a):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError):
        build_report(run)
    assert (run / "report.html").read_text() == page and not list(run.glob(".report.html.*"))


def test_build_with_record_and_summary(net, capsys):
    model, rec = user.build_with_record(f"{net}:small_net", seed=3)
    assert model.num_params() == 5874 and rec["sha256"] == hashlib.sha256(net.read_bytes()).hexdigest()
    assert models.build(f"{net}:small_net", seed=3).state_dict()["0.weight"].tolist() == \
        model.state_dict()["0.weight"].tolist()  # the seed reaches the user's function
    assert models.recipe(f"{net}:small_net") == user.RECIPE
    rc, out, _ = _main(capsys, "summary", "--model", f"{net}:small_net")
    assert rc == 0 and "total parameters: 5,874" in out and "fits the lab's budget" in out


def test_a_subclass_of_a_fusable_layer_runs_its_own_code():
    """The fused Conv→ReLU(→MaxPool) plan takes fastcnn's exact classes only: a user's subclass that
    overrides forward/backward must run its own code."""
    from fastcnn import nn

    class Mine(nn.Conv2D):
        calls = 0

        def forward(self, x):
            Mine.calls += 1
            return super().forward(x)

    model = nn.Sequential(Mine(1, 2, 3), nn.ReLU(), nn.MaxPool2D(2), input_shape=(1, 8, 8))
    model.forward(np.zeros((1, 1, 8, 8), np.float32))
    assert Mine.calls == 1 and model.plan() == model.layers


def test_export_where_the_layers_allow(tmp_path, capsys):
    """A user network of built-in layers exports to ONNX like a preset (with --model PATH.py:FUNC)."""
    pytest.importorskip("onnx")
    p = tmp_path / "plain.py"
    p.write_text("from fastcnn import nn\n\n\ndef net(seed=0):\n    return nn.Sequential(nn.Conv2D(1, 4, 5), nn.ReLU(), "
                 "nn.AvgPool2D(2), nn.Flatten(), nn.Linear(576, 10), seed=seed, input_shape=(1, 28, 28))\n")
    models.build(f"{p}:net", seed=1).save(tmp_path / "w.npz")
    rc, out, err = _main(capsys, "export", "--weights", tmp_path / "w.npz", "--model", f"{p}:net",
                         "--onnx", tmp_path / "m.onnx")
    assert rc == 0, err
    assert (tmp_path / "m.onnx").stat().st_size > 0 and "plain.py:net" in out
