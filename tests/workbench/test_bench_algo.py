"""`fastcnn bench conv|train --algo PATH.py:NAME`: the user's algorithm on the ladder, checked
against naive before it is timed (one that disagrees is reported, not timed)."""
from pathlib import Path

import numpy as np
import pytest

from fastcnn import cli
from fastcnn.bench import conv, user_algorithms
from fastcnn.bench import train as bench_train
from fastcnn.conv import CONV
from fastcnn.registry import registered
from fastcnn.usercode import UserCodeError

FILES = Path(__file__).parent / "files"


def test_the_users_algorithm_joins_the_ladder(capsys):
    extra = user_algorithms([f"{FILES / 'good.py'}:LoopConv", f"{FILES / 'bad.py'}:LoopConv"])
    rows = conv.run(np, batch=4, naive_batch=2, repeats=1, naive_repeats=1, naive_full_ms=0, extra=extra,
                    log=lambda *a: None)
    convs = {(r["model"], r["layer"]) for r in rows if r["op"].startswith("conv")}
    good = [r for r in rows if r["algo"] == "good.py:LoopConv"]
    bad = [r for r in rows if r["algo"] == "bad.py:LoopConv"]
    assert {(r["model"], r["layer"]) for r in good} == convs == {(r["model"], r["layer"]) for r in bad}
    for r in good:  # the same columns as every algorithm: ms, GFLOP/s, × naive
        assert r["total_ms"] > 0 and r["gflops"] > 0 and r["speedup"] > 0 and "agrees with naive" in r["note"]
    for r in bad:
        assert r["total_ms"] is None and r["speedup"] is None
        assert "disagrees with naive (dx rel. error" in r["note"] and "not timed" in r["note"]
    assert not any("LoopConv" in r["algo"] for r in rows if r["op"].startswith(("maxpool", "avgpool")))


def test_bench_conv_cli_takes_algo(tmp_path, capsys, monkeypatch):
    calls = {}
    monkeypatch.setattr(conv, "run", lambda xp, extra=(), **kw: calls.setdefault("extra", extra) and [])
    monkeypatch.setattr("fastcnn.bench.charts.bar_chart", lambda *a, **k: None)
    assert cli.main(["bench", "conv", "--quick", "--out", str(tmp_path), "--algo",
                     f"{FILES / 'good.py'}:LoopConv"]) == 0
    assert [t["algo"].name for t in calls["extra"]] == ["good.py:LoopConv"]
    assert "and yours: good.py:LoopConv" in capsys.readouterr().out


def test_a_layer_is_not_an_algorithm(capsys):
    with pytest.raises(UserCodeError, match="AvgPool is a layer; --algo takes a convolution or pooling algorithm"):
        user_algorithms([f"{FILES / 'good.py'}:AvgPool"])
    assert cli.main(["bench", "conv", "--algo", f"{FILES / 'good.py'}:AvgPool"]) == 2


def test_bench_train_registers_only_an_agreeing_algorithm_and_only_for_the_run():
    good, bad = user_algorithms([f"{FILES / 'good.py'}:LoopConv", f"{FILES / 'bad.py'}:LoopConv"])
    assert bench_train.disagreement(good) is None
    assert "disagrees with naive on conv1 (dx rel. error" in bench_train.disagreement(bad)
    with registered(CONV, good["algo"]):
        assert CONV["good.py:LoopConv"] is good["algo"]
        with pytest.raises(ValueError, match="already registered"):
            with registered(CONV, good["algo"]):
                pass
    assert "good.py:LoopConv" not in CONV


def test_bench_train_times_the_users_algorithm_beside_the_others(tmp_path, monkeypatch, capsys):
    from fastcnn import bench

    seen = {}

    def fake_run(xp, **kw):
        seen["algos"] = list(CONV)
        return [], 350, "given"

    monkeypatch.setattr(bench_train, "run", fake_run)
    monkeypatch.setattr("fastcnn.bench.charts.bar_chart", lambda *a, **k: None)
    extra = user_algorithms([f"{FILES / 'good.py'}:LoopConv", f"{FILES / 'bad.py'}:LoopConv"])
    bench.bench_train(np, tmp_path, True, ["machine"], extra=extra)
    assert "good.py:LoopConv" in seen["algos"] and "bad.py:LoopConv" not in seen["algos"]
    assert "bad.py:LoopConv: disagrees with naive on conv1" in capsys.readouterr().out
    assert "good.py:LoopConv" not in CONV  # registered for the benchmark only
