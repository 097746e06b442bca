"""kernels.cpu.precompile: the helper process that compiles the backward shares while the caller
compiles the forward ones. What it compiles must be what a real backward runs (the same
argument types, so the caller loads it from the cache), and it must cost nothing when it
cannot help."""
import numpy as np
import pytest

from fastcnn import models
from fastcnn.kernels.cpu import conv, precompile
from fastcnn.nn import SoftmaxCrossEntropy
from fastcnn.nn.fused import backward_specs


def test_specs_of_the_presets():
    for name, want in (("lenet5", ["s1:float32:maxpool"]), ("fast99", ["s1:float32:maxpool"]),
                       ("compact", ["any:float32:maxpool", "w4:float32:maxpool"])):
        m = models.build(name, seed=0)
        assert backward_specs(m.plan(), m.input_shape) == want, name


def test_a_spec_names_a_share_that_exists():
    assert precompile.spec("s1", np.float64, "relu") == "s1:float64:relu"
    with pytest.raises(ValueError, match="no backward share"):
        precompile.spec("s2", np.float32, "maxpool")
    with pytest.raises(ValueError, match="no backward share"):
        precompile.spec("s1", np.float16, "maxpool")


def test_the_helper_compiles_the_very_share_a_real_backward_runs():
    """After compile_spec, a fused model's backward finds its share compiled for its argument
    types: it adds no entry to the kind's table (a new entry would mean another signature, which
    the helper's cache could not serve)."""
    m = models.build("lenet5", seed=0)
    [text] = backward_specs(m.plan(), m.input_shape)
    precompile.main([text])
    shares = conv._backward_kernel("s1")
    before = set(shares._addresses)
    x = np.random.default_rng(0).standard_normal((8, 1, 28, 28)).astype(np.float32)
    loss = SoftmaxCrossEntropy()
    loss.forward(m.forward(x), np.arange(8) % 10)
    m.backward(loss.backward())
    assert set(shares._addresses) == before


def test_a_helper_that_fails_or_is_off_costs_only_the_wait(monkeypatch):
    h = precompile.Helper(["s1:float32:nonsense"])  # the child raises on this spec
    assert h.proc is not None and h.wait() is False
    monkeypatch.setattr(precompile, "ENABLED", False)
    h = precompile.Helper(["s1:float32:maxpool"])
    assert h.proc is None and h.wait() is False


def test_a_helper_starts_only_when_a_forward_share_compiles(monkeypatch):
    started = []

    class Fake:
        def __init__(self, specs):
            started.append(specs)

        def close(self):
            pass

    monkeypatch.setattr(precompile, "Helper", Fake)
    from numba import njit

    def forward_share(x):  # a fresh function of that name: it compiles (no cache)
        return x + 1

    def other(x):
        return x - 1

    with precompile.helper_when_compiling(["s1:float32:maxpool"]) as box:
        njit(other)(1)
        assert started == []
        njit(forward_share)(1)
        njit(forward_share)(2.0)
    assert started == [["s1:float32:maxpool"]]  # once
    assert box.helper is not None
