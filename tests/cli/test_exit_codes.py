"""Every command reports bad input through the entry point: exit code 2 and one line on stderr
that names the command and what is wrong; argparse's own errors exit 2 as well."""
import subprocess
import sys

import pytest

from fastcnn import cli


@pytest.mark.parametrize("argv,says", [
    (["train", "--model", "resnet50", "--no-progress"], "unknown model 'resnet50'"),
    (["eval", "--weights", "no/such/run"], "no such file"),
    (["predict", "--weights", "no/such.npz", "--input", "x.npy"], "no such file"),
    (["export", "--weights", "no/such.npz", "--onnx", "m.onnx"], "no such file"),
    (["report", "no/such/run"], "no such run directory"),
    (["baseline", "knn", "--classes", "0,x"], "--classes"),
    (["sweep", "--lr", "-1", "--out", "SWEEP_OUT"], "--lr: '-1' must be > 0"),
    (["bench", "conv", "--backend", "tpu"], "tpu"),
    (["check", "no/such.py:AvgPool"], "no such file"),
])
def test_bad_input_exits_2_with_a_clear_message(argv, says, tmp_path, capsys):
    argv = [str(tmp_path / a) if a.startswith(("no/", "x.npy", "m.onnx", "SWEEP")) else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fastcnn {argv[0]}: error: ") and says in err, err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--epochs", "many"])
    assert e.value.code == 2 and "invalid int value" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["predict"])  # --weights is required
    assert e.value.code == 2


def test_every_command_has_its_module():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(cli.MODULES) == {"train", "eval", "summary", "predict", "check", "bench",
                                                     "report", "baseline", "sweep", "export"}


def test_python_dash_m_fastcnn_is_the_same_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fastcnn", "summary", "--model", "nope"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "fastcnn summary: error: unknown model 'nope'" in r.stderr
