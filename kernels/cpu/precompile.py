"""Compile the direct convolution's backward shares in a second process, while this one compiles
the forward shares.

A cold first run spends most of its compile time on two functions per kind of layer: the forward
share (≈ 4.5 s) and the backward share (≈ 3.8 s), one after the other, on one core. Numba compiles
under one process-wide lock, so two threads cannot overlap them; two processes can. ``Helper``
starts ``python -m <this module> SPEC …`` (a *spec* is ``kind:dtype:aux``, see ``spec``), which
calls each backward kernel once on a few zeros of the same types and so writes its machine code
to Numba's on-disk cache (the cache of ``cache_stamp.py``, the same folder: the child inherits the
environment). The caller ``wait()``s before its own first backward, which then loads the shares
from the cache instead of compiling them. A child that fails, or a cache the child cannot write,
costs nothing but the wait: the caller then compiles as it always did. Nothing else is shared.

Who uses it: fastcnn's Trainer, during its warm-up, and only when the forward share itself
compiles (the cache is cold): a warm run starts no process. ``ENABLED = False`` turns it off.
Cold ``fastcnn train`` (fresh NUMBA_CACHE_DIR, 2-core machine): see benchmarks/README.md, session 10.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys

import numpy as np

#: False: never start a helper process (everything compiles in the calling process, as before).
ENABLED = True
#: seconds ``wait`` waits for the helper at most (then stops it; the caller compiles for itself).
TIMEOUT = 300.0

# (H = W, k, stride) of a one-channel input whose layer is of each kind (conv._kind)
_GEOMETRY = {"s1": (8, 3, 1), "w4": (6, 3, 1), "any": (9, 3, 2)}
_AUX = ("relu", "maxpool")  # the backward's aux array: the layer output (float) or the pool's argmax (int32)


def spec(kind: str, dtype, aux: str) -> str:
    """The helper's name for the backward share of a layer of ``kind`` (conv._kind: "s1", "w4" or
    "any"), ``dtype`` and ``aux`` ("maxpool": a fused pool's argmax, "relu": the layer output)."""
    dtype = np.dtype(dtype).name
    if kind not in _GEOMETRY or aux not in _AUX or dtype not in ("float32", "float64"):
        raise ValueError(f"precompile.spec: no backward share for kind {kind!r}, dtype {dtype}, aux {aux!r}")
    return f"{kind}:{dtype}:{aux}"


def compile_spec(text: str) -> None:
    """Call the backward kernel of spec ``text`` once on zeros (its types are the real run's)."""
    from . import conv

    kind, dtype, aux = text.split(":")
    spec(kind, dtype, aux)  # a ValueError unless it names a share
    hw, k, s = _GEOMETRY[kind]
    o = (hw - k) // s + 1
    assert conv._kind(s, s, o) == kind
    x = np.zeros((2, 1, hw, hw), dtype)
    w2 = np.zeros((4, k * k), dtype)
    if aux == "maxpool":
        p = o // 2
        dy = np.zeros((2, 4, p, p), dtype)
        conv.conv_relu_maxpool_backward(x, w2, dy, np.full(dy.shape, -1, np.int32), k, k, s, s, o, o, True, 2)
    else:
        dy = np.zeros((2, 4, o, o), dtype)
        conv.relu_mask_conv_backward(x, w2, dy, dy, k, k, s, s, True, 2)


class Helper:
    """``Helper(specs)``: a process compiling those backward shares; ``wait()`` before the first
    backward. A helper that cannot start is a no-op."""

    def __init__(self, specs):
        self.proc = None
        specs = sorted(set(specs))
        if not (ENABLED and specs):
            return
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", __name__, *specs], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            self.proc = None

    def wait(self) -> bool:
        """Wait for the helper (at most TIMEOUT s, then stop it); True when it compiled everything."""
        if self.proc is None:
            return False
        try:
            return self.proc.wait(timeout=TIMEOUT) == 0
        except subprocess.TimeoutExpired:
            self.close()
            return False

    def close(self) -> None:
        """Stop the helper if it still runs (its cache entries are written whole or not at all)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class _OnCompile:
    """What ``helper_when_compiling`` yields: ``wait()`` for the helper, if one was started."""

    def __init__(self, specs):
        self.specs, self.helper = specs, None

    def start(self):
        if self.helper is None:
            self.helper = Helper(self.specs)

    def wait(self) -> bool:
        return self.helper.wait() if self.helper is not None else False

    def close(self):
        if self.helper is not None:
            self.helper.close()


@contextlib.contextmanager
def helper_when_compiling(specs, names=("forward_share",)):
    """Within the block, start a ``Helper(specs)`` when Numba starts compiling a function named in
    ``names`` (the forward shares: the cache is cold), at most once; yields an object whose
    ``wait()`` waits for it (call it before the first backward). A warm cache starts nothing. The
    helper is stopped when the block ends. Without Numba's event API nothing is started."""
    box = _OnCompile(specs)
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - a Numba without the event API
        yield box
        return

    class Listener(event.Listener):
        def on_start(self, ev):
            fn = getattr(ev.data.get("dispatcher"), "py_func", None)
            if getattr(fn, "__name__", None) in names:
                box.start()

        def on_end(self, ev):
            pass

    try:
        with event.install_listener("numba:compile", Listener()):
            yield box
    finally:
        box.close()


def main(argv=None) -> int:
    for text in (sys.argv[1:] if argv is None else argv):
        compile_spec(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
