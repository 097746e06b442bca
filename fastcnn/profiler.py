"""Per-layer timing: where each millisecond of a training step goes (`fastcnn train --profile`)."""
from __future__ import annotations

from . import backend, timing


class Profiler:
    """Wraps every layer's forward and backward of a Sequential with a clock — the layers that
    run (its fused plan: Numba's on the CPU backend, nn/gpu_fused.py's on a GPU) — until ``close()`` (or the end of a ``with``
    block) puts the layers' own methods back.

    On the GPU the device is synchronised before each reading, which slows the run
    a little but attributes the time to the right layer.
    """

    def __init__(self, model):
        self.model = model
        self.times = {}  # layer name -> [forward seconds, backward seconds, calls]
        params = model.parameters()
        on_cpu = not params or backend.array_module(params[0].data) is backend.np
        self.layers = list(model.plan(gpu=not on_cpu))
        for layer in self.layers:
            self._wrap(layer)

    def close(self) -> None:
        """Put every layer's own forward and backward back (idempotent)."""
        for layer in self.layers:
            layer.__dict__.pop("forward", None)
            layer.__dict__.pop("backward", None)
        self.layers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _wrap(self, layer):
        rec = self.times.setdefault(layer.name, [0.0, 0.0, 0])
        fwd, bwd = layer.forward, layer.backward

        def timed(fn, slot):
            def run(arg):
                xp = backend.array_module(arg) if arg is not None else None
                out, t = timing.seconds(fn, arg, xp=xp)
                if layer.training:  # evaluation passes are not part of a training step
                    rec[slot] += t
                    rec[2] += slot == 0
                return out
            return run

        layer.forward, layer.backward = timed(fwd, 0), timed(bwd, 1)

    def table(self) -> str:
        """Forward and backward milliseconds per training step for each layer, and each one's share."""
        steps = max((r[2] for r in self.times.values()), default=0) or 1
        total = sum(r[0] + r[1] for r in self.times.values()) or 1e-12
        w = max([14] + [len(name) for name in self.times])  # fused layers have long names
        lines = [f"{'layer':<{w}} {'forward ms':>10} {'backward ms':>11} {'share':>6}"]
        for name, (f, b, _) in self.times.items():
            lines.append(f"{name:<{w}} {1e3 * f / steps:>10.3f} {1e3 * b / steps:>11.3f} {100 * (f + b) / total:>5.1f}%")
        fsum = sum(r[0] for r in self.times.values())
        bsum = sum(r[1] for r in self.times.values())
        lines.append(f"{'total':<{w}} {1e3 * fsum / steps:>10.3f} {1e3 * bsum / steps:>11.3f} {100.0:>5.1f}%")
        lines.append(f"(per training step, averaged over {steps} steps)")
        return "\n".join(lines)
