"""`fastcnn check`: a correct file passes (exit 0); the classic mistakes fail (exit 1) with a
diagnosis naming the quantity and the cause: dx without the 180° rotation, a missing 1/N, dy
not dilated by the stride, the max-pool tie rule, gradients accumulated across calls."""
import re
from pathlib import Path

import numpy as np
import pytest

from fastcnn import cli
from fastcnn import check as C

FILES = Path(__file__).parent / "files"
GOOD, BAD = FILES / "good.py", FILES / "bad.py"


def _check(capsys, *argv):
    rc = cli.main(["check", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _variant(tmp_path, name, old, new):
    """good.py with ``old`` replaced by ``new`` (a mistake of our choosing)."""
    text = GOOD.read_text()
    assert old in text
    p = tmp_path / name
    p.write_text(text.replace(old, new))
    return p


def test_correct_layer_passes(capsys):
    rc, out, _ = _check(capsys, f"{GOOD}:AvgPool")
    assert rc == 0, out
    assert re.search(r"N=1 in 3×7×9\s+dx\s+central diff\s+\S+\s+pass", out)  # batch 1, 3 channels, non-square
    assert "N=3 in 3×8×6" in out and "all 2 checks pass" in out


def test_correct_algorithm_passes_against_naive_and_central_differences(capsys):
    rc, out, _ = _check(capsys, f"{GOOD}:LoopConv")
    assert rc == 0, out
    for case in ("batch 1", "stride 2", "padding 1", "3×2 kernel", "no bias"):
        assert case in out, case
    for q, against in (("y", "naive"), ("dx", "naive"), ("dW", "naive"), ("db", "naive"), ("dx", "central diff"),
                       ("dW", "central diff")):
        assert re.search(rf"\s{q}\s+{against}\s+\S+\s+pass", out), (q, against)
    assert "FAIL" not in out


def test_dx_without_the_rotation_is_found(capsys):
    rc, out, _ = _check(capsys, f"{BAD}:LoopConv")
    assert rc == 1
    assert re.search(r"batch 1\s+dx\s+naive\s+\S+\s+FAIL", out)
    assert re.search(r"batch 1\s+dW\s+naive\s+\S+\s+pass", out) and re.search(r"batch 1\s+y\s+naive\s+\S+\s+pass", out)
    assert "dx is off in all 5 cases" in out and "NOT rotated by 180°" in out


def test_a_missing_one_over_n_is_found(capsys):
    rc, out, _ = _check(capsys, f"{BAD}:AvgPool")
    assert rc == 1
    assert "FAIL" in out and "4 times too large" in out and "a 1/(kh·kw) is missing" in out
    rc, out, _ = _check(capsys, f"{BAD}:AvgPool", "--args", "kernel_size=3")
    assert rc == 1 and "9 times too large" in out


def test_a_stride_not_dilated_is_found(tmp_path, capsys):
    p = _variant(tmp_path, "nodilate.py", "dil[:, :, ::sh, ::sw] = dy",
                 "dil = np.zeros((n, f, oh, ow), dtype=dy.dtype); dil[...] = dy")
    rc, out, _ = _check(capsys, f"{p}:LoopConv")
    assert rc == 1
    assert re.search(r"batch 1\s+dx\s+naive\s+\S+\s+pass", out) and re.search(r"stride 2\s+dx\s+naive\s+\S+\s+FAIL", out)
    assert "right without stride and wrong with it: dilate dy" in out


def test_a_gradient_of_the_mean_over_the_batch_is_found(tmp_path, capsys):
    p = _variant(tmp_path, "mean.py", "db = dy.sum(axis=(0, 2, 3)) if has_b else None",
                 "db = dy.sum(axis=(0, 2, 3)) / n if has_b else None")
    rc, out, _ = _check(capsys, f"{p}:LoopConv")
    assert rc == 1 and "db is off" in out and "too small" in out and "1/(N)" in out


def test_the_max_pool_tie_rule_is_found(tmp_path, capsys):
    p = tmp_path / "ties.py"
    p.write_text('''
import numpy as np
from fastcnn.pool import naive

class SplitTies:
    """Max pooling whose backward splits dy between all maxima of a window."""
    @staticmethod
    def forward(x, kernel, stride, padding, mode):
        return naive.forward(x, kernel, stride, padding, mode)[0], (x, kernel, stride, padding, mode)

    @staticmethod
    def backward(dy, cache):
        x, (kh, kw), (sh, sw), (ph, pw), mode = cache
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        dx = np.zeros_like(xp)
        for i in range(dy.shape[2]):
            for j in range(dy.shape[3]):
                win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                m = win == win.max(axis=(2, 3), keepdims=True)
                share = m / m.sum(axis=(2, 3), keepdims=True)
                dx[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += share * dy[:, :, i, j][:, :, None, None]
        return dx[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
''')
    rc, out, _ = _check(capsys, f"{p}:SplitTies", "--mode", "max")
    assert rc == 1
    assert re.search(r"max: ties \(integers 0..2\)\s+dx\s+naive\s+\S+\s+FAIL", out)
    assert re.search(r"max: batch 1\s+dx\s+naive\s+\S+\s+pass", out)  # no ties: the same gradient
    assert "differs only on an input with ties" in out and "first" in out


def test_gradients_added_up_across_calls_are_found(tmp_path, capsys):
    p = _variant(tmp_path, "accum.py", "dx, self.weight.grad[...], self.bias.grad[...] = LoopConv.backward(",
                 "dx, dw, db = LoopConv.backward(")
    text = p.read_text().replace("        return dx\n\n    def output_shape(self, in_shape):\n        c, h, w = in_shape\n"
                                 "        (sh, sw)",
                                 "        self.weight.grad += dw\n        self.bias.grad += db\n        return dx\n\n"
                                 "    def output_shape(self, in_shape):\n        c, h, w = in_shape\n        (sh, sw)")
    p.write_text(text)
    rc, out, _ = _check(capsys, f"{p}:LoopConv2D", "--args", "in_channels=2,out_channels=2,kernel_size=3")
    assert rc == 1 and ".grad overwritten" in out and "p.grad[...] = ..." in out


def test_layer_variants_and_assumed_arguments(capsys):
    rc, out, _ = _check(capsys, f"{GOOD}:LoopConv2D", "--args", '{"in_channels": 2}')
    assert rc == 0, out
    assert "built as LoopConv2D(in_channels=2, out_channels=4, kernel_size=3)" in out
    assert "stride 2" in out and "padding 1" in out and "out_channels=4 assumed" in out


def test_check_as_a_library():
    report = C.run(f"{GOOD}:AvgPool", args={"kernel_size": 2})
    assert report["ok"] and report["target"]["kind"] == "layer" and len(report["rows"]) == 2
    assert all(r["error"] < 1e-6 for r in report["rows"])


@pytest.mark.parametrize("text,expected", [("kernel_size=2,stride=1", {"kernel_size": 2, "stride": 1}),
                                           ('{"kernel_size": [2, 3]}', {"kernel_size": [2, 3]}),
                                           ("mode=max", {"mode": "max"}), ("", {})])
def test_args_parse(text, expected):
    assert C.parse_args(text) == expected


def test_no_ties_inputs_are_distinct_and_away_from_zero():
    x = C.no_ties(np.random.default_rng(0), (2, 3, 7, 9))
    assert len(np.unique(x)) == x.size and np.abs(x).min() > 0 and np.diff(np.sort(x.ravel())).min() > 1e-3
