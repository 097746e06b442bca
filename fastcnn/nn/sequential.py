"""A chain of layers, with summary, checkpoints and initialisation."""
from __future__ import annotations

import math

import numpy as np

from .. import backend, files, threads
from .activation import RELU_FAMILY, Sigmoid, Tanh
from .flat import flatten
from .fold import fold_batchnorms
from .fused import fuse_layers
from .gpu_fused import gpu_fuse_layers
from .module import Layer, Parameter, ShapeError

_ACTIVATIONS = RELU_FAMILY + (Sigmoid, Tanh)


class Sequential(Layer):
    """``forward`` runs the layers in order; ``backward`` runs them in reverse.

    Weights of layers built with ``init="auto"`` are drawn from one generator seeded
    with ``seed``: He normal when the next activation is ReLU/LeakyReLU, Xavier
    uniform otherwise. With ``input_shape`` (per sample, e.g. (1, 28, 28)) the
    chain is checked at build time, naming the first layer that cannot take its input.
    ``reset=False`` keeps the layers' weights (for a new chain over existing layers).

    On the CPU backend, ``forward``/``backward`` run a *plan* of the layers (``plan()``): each
    Conv2D → ReLU (→ MaxPool2D) as one fused Numba layer over the same parameters (same
    results; the pre-activation is never stored), inside fastcnn's thread scope
    (``threads.compute()``: BLAS on one thread, Numba on all). ``fusion=False`` runs the
    layers one by one. ``layers``, ``parameters()``, ``summary()`` and checkpoints always
    show the layers as built.
    """

    def __init__(self, *layers: Layer, seed: int = 0, input_shape: tuple | None = None, reset: bool = True,
                 fusion: bool = True):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential takes layers; item {i} is a {type(layer).__name__}")
            if layer.name == type(layer).__name__:  # not yet named by another Sequential
                layer.name = f"{type(layer).__name__}#{i}"
        self.layers = list(layers)
        self.seed = seed
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        if reset:
            self.reset_parameters(np.random.default_rng(seed))
        self.needs_input_grad = False
        #: run Conv2D→ReLU(→MaxPool2D) fused on the CPU backend (see the class docstring)
        self.fusion = fusion
        self._plan, self._plan_key, self._ran = None, None, None
        if self.input_shape is not None:
            self.shapes(self.input_shape)

    @property
    def needs_input_grad(self) -> bool:
        """Whether backward computes dx of the first layer (off by default: the input is data)."""
        return self.layers[0].needs_input_grad if self.layers else False

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool):
        if getattr(self, "layers", None):
            self.layers[0].needs_input_grad = value

    # --- initialisation ---------------------------------------------------------
    def reset_parameters(self, rng, scheme=None):
        for i, layer in enumerate(self.layers):
            if not layer.param_names or layer.init is None:
                continue
            scheme = layer.init
            if scheme == "auto":
                nxt = next((l for l in self.layers[i + 1:] if isinstance(l, _ACTIVATIONS) or l.init is not None), None)
                scheme = "he" if isinstance(nxt, RELU_FAMILY) else "xavier"
            layer.reset_parameters(rng, scheme)

    # --- passes -----------------------------------------------------------------
    def plan(self, gpu: bool = False) -> list:
        """The layers ``forward`` runs: fused where ``fusion`` allows (rebuilt when the layers, their
        algorithms, the forced algorithm or ``needs_input_grad`` change); ``gpu``: the lean GPU
        forms (nn/gpu_fused.py) instead of the CPU's Numba ones."""
        from .. import registry

        key = (gpu, self.fusion, registry.forced("conv"), registry.forced("pool"), self.needs_input_grad,
               tuple((id(l), getattr(l, "algo", None)) for l in self.layers))
        if key != self._plan_key:
            fuse = gpu_fuse_layers if gpu else fuse_layers
            self._plan = fuse(self.layers) if self.fusion else list(self.layers)
            if self._plan and self._plan[0] is not self.layers[0]:
                self._plan[0].needs_input_grad = self.needs_input_grad
            self._set_mode_of_new(self._plan, self.training)  # no argmax kept in evaluation
            self._plan_key = key
        return self._plan

    def forward(self, x):
        """x (N, ...) -> the last layer's output; the dtype must be the parameters' (no silent cast).
        With ``input_shape``, x must be (N, *input_shape): anything else is a ShapeError here,
        before any layer (or kernel) runs."""
        self._check_input(x)
        gpu = type(x) is not np.ndarray
        self._ran = layers = self.plan(gpu=gpu)
        return self._run(layers, x, gpu)

    def inference_layers(self) -> list:
        """The layers ``infer`` runs, in evaluation mode: each batch norm folded into the Conv2D
        (unpadded) or Linear after it (nn/fold.py; exact with the running statistics), then fused
        as ``plan`` fuses. Folded and fused layers are new objects over copies of the parameters
        as they are now: build them again after the parameters change."""
        if self.training:
            raise RuntimeError("inference_layers: the model is in training mode; call model.eval() first "
                               "(folding a batch norm uses its running statistics)")
        layers = fold_batchnorms(self.layers)
        if self.fusion:
            layers = (fuse_layers if self.xp is np else gpu_fuse_layers)(layers)
        self._set_mode_of_new(layers, False)
        return layers

    def _set_mode_of_new(self, layers, mode):
        """Put the layers of ``layers`` that are not the model's own (fused or folded ones, made
        by plan or inference_layers) in training mode ``mode``; the model's own keep theirs."""
        own = {id(layer) for layer in self.layers}
        for layer in layers:
            if id(layer) not in own:
                layer.train(mode)

    def infer(self, x, layers=None):
        """x (N, ...) -> the output ``forward`` gives in evaluation mode (to float rounding),
        through ``layers`` (``inference_layers()``; made here when None — pass them to reuse them
        over many batches). Keeps nothing for a backward pass (a backward after it is an error).
        The model must be in evaluation mode (``model.eval()``)."""
        self._check_input(x)
        if layers is None:
            layers = self.inference_layers()
        try:
            return self._run(layers, x, type(x) is not np.ndarray)
        finally:
            self.clear_cache()
            for layer in layers:
                layer.clear_cache()

    def _run(self, layers, x, gpu):
        if gpu:
            for layer in layers:
                x = layer.forward(x)
            return x
        with threads.compute():
            for layer in layers:
                x = layer.forward(x)
        return x

    def _check_input(self, x):
        shape = getattr(x, "shape", None)
        if shape is None or getattr(x, "dtype", None) is None:
            raise TypeError(f"Sequential.forward takes an array (N, ...), got {type(x).__name__}")
        if self.input_shape is not None and tuple(shape[1:]) != self.input_shape:
            raise ShapeError(self._input_mismatch(tuple(shape)))
        if x.dtype.kind != "f":
            raise TypeError(f"Sequential.forward: the input is {x.dtype}; the model computes in floating point: "
                            "normalise images first (fastcnn.data.normalize, or x.astype(np.float32) / 255)")
        ps = self.parameters()
        if ps and getattr(x, "dtype", None) is not None and x.dtype != ps[0].data.dtype:
            first = next(l for l in self.layers if l.parameters())
            raise TypeError(f"{first.name}: the input is {x.dtype} but the model's parameters are "
                            f"{ps[0].data.dtype}; cast the input (x.astype(...)) or the model "
                            f"(model.to(xp, dtype)) — fastcnn never casts silently")

    def _input_mismatch(self, got: tuple) -> str:
        want = self.input_shape
        first = self.layers[0].name if self.layers else "Sequential"
        msg = f"the model expects input (N, {', '.join(map(str, want))}), got {got} (at {first})"
        if len(got) == len(want) + 1 and len(want) == 3:
            if got[2:] != want[1:]:
                msg += f": images of {got[2]}×{got[3]} pixels, the model takes {want[1]}×{want[2]}"
            elif got[1] != want[0]:
                msg += f": {got[1]} channels, the model takes {want[0]}"
        return msg

    def backward(self, dy):
        """dy (N, ...) of the output -> dx of the input (None when the first layer needs none);
        every layer fills its parameters' .grad on the way."""
        layers = self._ran
        if layers is None:
            raise RuntimeError("Sequential.backward needs a forward first: nothing is kept for it (no forward yet, "
                               "or clear_cache / infer / inference.predict_logits ran since); call forward(x), then "
                               "backward(dy)")
        if type(dy) is not np.ndarray:
            for layer in reversed(layers):
                dy = layer.backward(dy)
            return dy
        with threads.compute():
            for layer in reversed(layers):
                dy = layer.backward(dy)
        return dy

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def num_params(self) -> int:
        return sum(p.size for p in self.parameters())

    def train(self, mode=True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        for layer in getattr(self, "_plan", None) or ():  # the fused layers too (plan())
            layer.train(mode)
        return self

    def to(self, xp, dtype=None):
        """Move (and cast) every layer; on a GPU the weights then live in one flat buffer (nn/flat.py)."""
        for layer in self.layers:
            layer.to(xp, dtype)
        flatten(self)
        return self

    def clear_cache(self):
        for layer in self.layers:
            layer.clear_cache()
        for layer in self._plan or ():
            layer.clear_cache()
        self._ran = None

    @property
    def xp(self):
        """The array module the parameters live on."""
        ps = self.parameters()
        return backend.array_module(ps[0].data) if ps else np

    @property
    def dtype(self):
        ps = self.parameters()
        return ps[0].data.dtype if ps else np.dtype(np.float32)

    # --- shapes -------------------------------------------------------------------
    def shapes(self, input_shape) -> list:
        """Per-sample output shape of every layer; ShapeError names the first layer that fails."""
        out, shape = [], tuple(input_shape)
        for i, layer in enumerate(self.layers):
            try:
                shape = tuple(layer.output_shape(shape))
            except ShapeError as e:
                raise ShapeError(f"layer {i} ({layer.name}) cannot take per-sample input {shape}: {e}") from None
            out.append(shape)
        return out

    def output_shape(self, in_shape):
        return self.shapes(in_shape)[-1] if self.layers else tuple(in_shape)

    def summary(self, input_shape=None) -> str:
        """A table: layer, per-sample output shape, parameter count; then the total."""
        input_shape = input_shape or self.input_shape
        if input_shape is None:
            raise ValueError("summary needs the per-sample input shape, e.g. (1, 28, 28)")
        shapes = self.shapes(input_shape)
        rows = [("layer", "output shape", "params")]
        rows.append(("input", str(tuple(input_shape)), ""))
        for layer, s in zip(self.layers, shapes):
            n = sum(p.size for p in layer.parameters())
            rows.append((repr(layer) if len(repr(layer)) < 60 else layer.name, str(s), f"{n:,}"))
        w = [max(len(r[k]) for r in rows) for k in range(3)]
        line = "-" * (sum(w) + 4)
        text = [f"{rows[0][0]:<{w[0]}}  {rows[0][1]:<{w[1]}}  {rows[0][2]:>{w[2]}}", line]
        text += [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}" for a, b, c in rows[1:]]
        text += [line, f"total parameters: {self.num_params():,}"]
        return "\n".join(text)

    # --- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict:
        """name -> host array for every parameter and buffer, plus the layer classes."""
        state = {"__layers__": np.array([type(l).__name__ for l in self.layers])}
        for i, layer in enumerate(self.layers):
            for n in layer.param_names:
                p = getattr(layer, n)
                if p is not None:
                    state[f"{i}.{n}"] = backend.as_numpy(p.data)
            for n, b in layer.buffers().items():
                state[f"{i}.{n}"] = backend.as_numpy(b)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Copy ``state`` into the model; a different architecture is an error naming the layer."""
        if "__layers__" in state:
            theirs = [str(s) for s in state["__layers__"]]
            ours = [type(l).__name__ for l in self.layers]
            if theirs != ours:
                i = next((k for k in range(min(len(theirs), len(ours))) if theirs[k] != ours[k]),
                         min(len(theirs), len(ours)))
                a = theirs[i] if i < len(theirs) else "nothing"
                b = ours[i] if i < len(ours) else "nothing"
                raise ValueError(f"checkpoint does not fit this model: layer {i} is {a} in the checkpoint "
                                 f"and {b} in the model ({len(theirs)} vs {len(ours)} layers)")
        if self.parameters() and not any(k.split(".", 1)[0].isdigit() for k in state):
            have = sorted(k for k in state if not k.startswith("__"))
            raise ValueError(f"checkpoint holds no layer weights (arrays named like 0.weight): it holds "
                             f"{', '.join(have[:6]) + (', ...' if len(have) > 6 else '') or 'nothing'}; "
                             "is it a data file? Weights are the model.npz (or best.npz) of a run")
        expected = set()
        for i, layer in enumerate(self.layers):
            for n in layer.param_names + layer.buffer_names:
                cur = getattr(layer, n)
                if cur is None:
                    continue
                key = f"{i}.{n}"
                expected.add(key)
                if key not in state:
                    raise ValueError(f"checkpoint has no {n} for layer {i} ({layer.name})")
                arr = state[key]
                # a Parameter holds its array in .data; a buffer is the array (a CuPy array has a .data too:
                # its memory pointer, so the type decides, not the attribute)
                data = cur.data if isinstance(cur, Parameter) else cur
                if tuple(arr.shape) != tuple(data.shape):
                    raise ValueError(f"checkpoint does not fit this model: layer {i} ({layer.name}) {n} has "
                                     f"shape {tuple(arr.shape)} in the checkpoint and {tuple(data.shape)} in the model")
                data[...] = backend.to_device(arr.astype(data.dtype), backend.array_module(data))
        extra = set(k for k in state if not k.startswith("__")) - expected
        if extra:
            raise ValueError(f"checkpoint has entries this model does not: {sorted(extra)[:5]}")
        self.clear_cache()

    def save(self, path):
        """Write the state dict to ``path`` (.npz) atomically."""
        return files.save_npz(path, self.state_dict())

    def load(self, path):
        self.load_state_dict(files.load_npz(path))
        return self

    def fused(self) -> "Sequential":
        """A Sequential over this plan's layers (fused, sharing the parameters), e.g. to profile them."""
        needs_input_grad = self.needs_input_grad  # read first: a new Sequential clears its first layer's flag
        out = Sequential(*fuse_layers(self.layers), reset=False, fusion=False)
        out.needs_input_grad = needs_input_grad
        return out

    def extra_repr(self):
        return ", ".join(repr(l) for l in self.layers)

    def export_onnx(self, path, **kw):
        """Write this model as ONNX to ``path`` (see fastcnn.nn.onnx_export.export for ``kw``); needs `onnx`."""
        from .onnx_export import export
        return export(self, path, **kw)


