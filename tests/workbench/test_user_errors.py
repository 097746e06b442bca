"""Clear errors for the usual mistakes in a user file (exit code 2): each names the file and says
what to change; an import that fails shows the user's own traceback lines, nothing of fastcnn's."""
import re
from pathlib import Path

import pytest

from fastcnn import cli

GOOD = Path(__file__).parent / "files" / "good.py"


def _err(capsys, *argv):
    rc = cli.main(list(map(str, argv)))
    out = capsys.readouterr()
    assert rc == 2, out.out + out.err
    return out.err


def _file(tmp_path, text, name="mine.py"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_missing_file(tmp_path, capsys):
    err = _err(capsys, "check", f"{tmp_path}/nope.py:AvgPool")
    assert "nope.py: no such file" in err


def test_not_a_spec(capsys):
    assert "expected PATH.py:NAME" in _err(capsys, "check", "mylayers.AvgPool")


def test_a_syntax_error_shows_the_users_line(tmp_path, capsys):
    p = _file(tmp_path, "import numpy as np\n\ndef forward(x)\n    return x\n")
    err = _err(capsys, "check", f"{p}:forward")
    assert f"{p}: does not import: a syntax error at line 3" in err
    assert "def forward(x)" in err and "SyntaxError" in err
    assert "fastcnn/" not in err and "importlib" not in err


def test_an_exception_at_import_shows_only_the_users_frames(tmp_path, capsys):
    p = _file(tmp_path, "def helper():\n    return 1 / 0\n\nSCALE = helper()\n")
    err = _err(capsys, "check", f"{p}:SCALE")
    assert "does not import: running the file raised ZeroDivisionError" in err
    assert f'File "{p}", line 4' in err and f'File "{p}", line 2, in helper' in err
    assert "return 1 / 0" in err
    frames = re.findall(r'File "([^"]+)"', err)
    assert frames and all(f == str(p) for f in frames)  # nothing of fastcnn's, nothing of importlib's


def test_a_missing_name_lists_what_the_file_defines(capsys):
    err = _err(capsys, "check", f"{GOOD}:AvgPol")
    assert "defines no 'AvgPol' (did you mean AvgPool?)" in err
    assert "AvgPool (class AvgPool)" in err and "small_net (function)" in err and "LoopConv (class LoopConv)" in err
    assert "np (" not in err and "nn (" not in err  # imports are not what it defines


def test_the_wrong_kind_of_object(tmp_path, capsys):
    p = _file(tmp_path, "SIZE = 3\n\nclass Thing:\n    def forward(self, x):\n        return x\n")
    assert "SIZE is a int object; fastcnn check takes a Layer subclass" in _err(capsys, "check", f"{p}:SIZE")
    assert "Thing is a class but not a fastcnn.nn.Layer; write `class Thing(Layer):`" in _err(
        capsys, "check", f"{p}:Thing")


LAYER = '''
import numpy as np
from fastcnn import nn

class Double(nn.Layer):
    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        return {backward}
'''


@pytest.mark.parametrize("backward,message", [
    ("(2 * dy)[:, :, 1:]", r"backward returned dx of shape \(3, 3, 7, 6\) for an input of shape \(3, 3, 8, 6\); "
                           "dx must have exactly the input's shape"),
    ("(2 * dy).astype(np.float64)", r"backward returned dx as float64 for a float32 input; allocate it with the "
                                    r"input's dtype"),
    ("None", r"backward returned None; it must return dx"),
    ("float((2 * dy).sum())", r"backward returned a float; it must return dx"),
])
def test_a_backward_of_the_wrong_shape_or_dtype(tmp_path, capsys, backward, message):
    p = _file(tmp_path, LAYER.format(backward=backward))
    err = _err(capsys, "check", f"{p}:Double")
    assert err.startswith(f"fastcnn check: error: {p}: Double.backward returned")
    assert re.search(message, err), err


def test_signatures_that_do_not_match(tmp_path, capsys):
    p = _file(tmp_path, LAYER.format(backward="2 * dy").replace("def forward(self, x)", "def forward(self, x, y)"))
    err = _err(capsys, "check", f"{p}:Double")
    assert "Double.forward has the signature forward(self, x, y), but fastcnn calls it as forward(x)" in err
    assert "define it as def forward(self, x)" in err
    p = _file(tmp_path, LAYER.format(backward="2 * dy").replace("    def backward(self, dy):\n        return 2 * dy\n",
                                                                 ""), "nobackward.py")
    assert "Double does not define backward" in _err(capsys, "check", f"{p}:Double")
    conv = GOOD.read_text().replace("def backward(dy, cache, need_dx=True):", "def backward(dy, cache):")
    p = _file(tmp_path, conv, "conv2.py")
    err = _err(capsys, "check", f"{p}:LoopConv")
    assert "LoopConv.backward has the signature backward(dy, cache), but fastcnn calls it as " \
           "backward(dy, cache, need_dx)" in err and "need_dx=True" in err


def test_an_exception_in_forward_names_the_call_and_the_users_line(tmp_path, capsys):
    p = _file(tmp_path, LAYER.format(backward="2 * dy").replace("return 2 * x", "return 2 * x.nonexistent"))
    err = _err(capsys, "check", f"{p}:Double")
    assert "Double.forward, given x of shape (3, 3, 8, 6) float32, raised AttributeError" in err
    assert "return 2 * x.nonexistent" in err and "--input-shape" not in err
    assert all(f == str(p) for f in re.findall(r'File "([^"]+)"', err))


def test_an_algorithm_returning_a_float64_gradient(tmp_path, capsys):
    conv = GOOD.read_text().replace("dw = np.zeros_like(w)", "dw = np.zeros(w.shape)")
    p = _file(tmp_path, conv)
    err = _err(capsys, "check", f"{p}:LoopConv")
    assert "LoopConv.backward returned dW as float64 for float32 inputs" in err and "never a bare np.zeros" in err


def test_train_model_errors(tmp_path, capsys):
    p = _file(tmp_path, GOOD.read_text() + '''

def not_a_net(seed=0):
    return AvgPool(2)

def bad_net(seed=0):
    return nn.Sequential(Broken(), nn.Flatten(), nn.Linear(784, 10), seed=seed, input_shape=(1, 28, 28))

def needs_width(width, seed=0):
    return small_net(seed)

class Broken(AvgPool):
    def forward(self, x):
        self.in_shape = x.shape
        return x

    def backward(self, dy):
        return dy[:, :, :-1]

    def output_shape(self, in_shape):
        return in_shape
''')
    out = tmp_path / "run"
    err = _err(capsys, "train", "--model", f"{p}:not_a_net", "--out", out, "--no-progress")
    assert "not_a_net() returned a AvgPool; it must return an nn.Sequential (wrap it" in err
    err = _err(capsys, "train", "--model", f"{p}:bad_net", "--out", out, "--no-progress")
    assert f"{p}: Broken (layer 0).backward returned dx of shape (2, 1, 27, 28)" in err
    err = _err(capsys, "train", "--model", f"{p}:AvgPool", "--out", out, "--no-progress")
    assert "AvgPool is a layer; --model takes a function that returns the network" in err
    err = _err(capsys, "train", "--model", f"{p}:needs_width", "--out", out, "--no-progress")
    assert "needs_width() needs the arguments width" in err
    err = _err(capsys, "train", "--model", f"{p}:nothing", "--out", out, "--no-progress")
    assert "defines no 'nothing'" in err
    assert not out.exists()  # nothing was written for a network that cannot be built


def test_a_layer_on_other_inputs_is_told_about_input_shape(tmp_path, capsys):
    p = _file(tmp_path, """
import numpy as np
from fastcnn import nn

class MyLinear(nn.Layer):
    param_names = ("w",)

    def __init__(self, n_in=5, n_out=3):
        super().__init__()
        self.w = nn.Parameter(np.ones((n_in, n_out), np.float32), "w")

    def forward(self, x):
        self.x = x
        return x @ self.w.data

    def backward(self, dy):
        self.w.grad[...] = self.x.T @ dy
        return dy @ self.w.data.T
""")
    err = _err(capsys, "check", f"{p}:MyLinear")
    assert "MyLinear.forward, given x of shape (3, 3, 8, 6) float32, raised ValueError" in err
    assert "--input-shape" in err
    assert cli.main(["check", f"{p}:MyLinear", "--input-shape", "5"]) == 0
    assert "N=3 in 5" in capsys.readouterr().out
    assert "--input-shape takes the per-sample shape" in _err(capsys, "check", f"{p}:MyLinear", "--input-shape", "a")
