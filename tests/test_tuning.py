"""One tuning cache per machine: reused without timing, rebuilt when unreadable or foreign."""
import json
import warnings

import numpy as np
import pytest

import fastcnn
from fastcnn import tuning


@pytest.fixture
def cache(tmp_path):
    tuning.clear()
    with fastcnn.settings(tuning_cache=str(tmp_path)):
        yield tmp_path / tuning.FILENAME
    tuning.clear()


def _counting(calls, slow):
    def make(name):
        def run():
            calls[name] = calls.get(name, 0) + 1
            if name == slow:
                sum(range(20000))
        return run
    return {n: make(n) for n in ("a", "b")}


def test_choice_is_written_and_reused_without_timing(cache):
    calls = {}
    assert tuning.choose("demo", (1, "f4"), _counting(calls, slow="a"), fixed="a") == "b"
    assert calls == {"a": 4, "b": 4}  # one compile run + three timed each
    doc = json.loads(cache.read_text())
    assert doc["machine"] == tuning.machine() and list(doc["choices"].values()) == ["b"]
    tuning.clear()  # a new process: memory empty, file kept
    calls.clear()
    assert tuning.choose("demo", (1, "f4"), _counting(calls, slow="b"), fixed="a") == "b"
    assert calls == {}  # read from the file, nothing timed


def test_deterministic_mode_times_nothing(cache):
    calls = {}
    with fastcnn.settings(deterministic=True):
        assert tuning.choose("demo", (2,), _counting(calls, slow="a"), fixed="a") == "a"
    assert calls == {} and not cache.exists()


def test_cache_from_another_machine_is_rebuilt(cache):
    cache.write_text(json.dumps({"version": tuning.VERSION, "machine": {"cpu": "elsewhere"},
                                 "choices": {tuning.key_string("demo", (3,)): "a"}}))
    calls = {}
    assert tuning.choose("demo", (3,), _counting(calls, slow="a"), fixed="a") == "b"
    assert calls  # timed again
    doc = json.loads(cache.read_text())
    assert doc["machine"] == tuning.machine() and doc["choices"] == {tuning.key_string("demo", (3,)): "b"}


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
def test_corrupt_cache_is_a_warning_not_a_crash(cache, content):
    cache.write_text(content)
    calls = {}
    with pytest.warns(UserWarning, match="unreadable"):
        assert tuning.choose("demo", (4,), _counting(calls, slow="a"), fixed="a") == "b"
    assert json.loads(cache.read_text())["choices"]  # rewritten, readable


def test_cache_can_be_switched_off(tmp_path, monkeypatch):
    tuning.clear()
    monkeypatch.setenv(tuning.ENV_DIR, str(tmp_path))
    monkeypatch.setenv(tuning.ENV_SWITCH, "off")
    assert tuning.cache_path() is None
    tuning.choose("demo", (5,), _counting({}, slow="a"), fixed="a")
    assert not (tmp_path / tuning.FILENAME).exists()
    with fastcnn.settings(tuning_cache=False):
        monkeypatch.delenv(tuning.ENV_SWITCH)
        assert tuning.cache_path() is None
    tuning.clear()


def test_env_var_moves_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(tuning.ENV_DIR, str(tmp_path / "elsewhere"))
    assert tuning.cache_path() == tmp_path / "elsewhere" / tuning.FILENAME


def test_a_second_model_reuses_the_conv_choices(cache):
    """A Conv2D on 'auto' times the algorithms once; a fresh process takes them from the file."""
    from fastcnn import nn

    def model():
        return nn.Sequential(nn.Conv2D(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 10, 3),
                             seed=0, input_shape=(1, 12, 12))

    x = np.random.default_rng(0).standard_normal((8, 1, 12, 12)).astype(np.float32)
    m = model()
    y = m.forward(x)
    m.backward(np.ones_like(y))
    first = m.layers[0].algo_used
    choices = json.loads(cache.read_text())["choices"]
    assert [v for k, v in choices.items() if k.startswith("conv-algo:")] == [first]
    tuning.clear()  # a new process: memory empty, file kept
    timed = []
    orig = tuning.record
    tuning.record = lambda *a: timed.append(a) or orig(*a)
    try:
        m2 = model()
        m2.forward(x)
    finally:
        tuning.record = orig
    assert timed == [] and m2.layers[0].algo_used == first
