"""A network from the user's own file: ``fastcnn train --model PATH.py:FUNC``.

FUNC (called with ``seed=`` when it takes it) returns a ``fastcnn.nn.Sequential`` of built-in
and/or the user's own layers. The run directory records where it came from, so that eval,
predict, report and ``--resume`` rebuild the same network:

    model_source.json   {"spec", "path" (absolute), "function", "sha256", "copy"}
    model_source.py     a copy of the file as it was when the run started

    model, rec = build_with_record("mynet.py:net", seed=0)   # the network and what a run records
    save_source("mynet.py:net", run_dir)                     # writes the two files
    verify(run_dir, spec)                                    # the file unchanged? else UserCodeError

A file that changed since the run is an error naming the file and both hashes (a different
network would load the weights wrongly or not at all); the run's copy can be named instead
(``--model RUN/model_source.py:FUNC`` for eval and predict) or copied back.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np

from .. import files, nn
from ..usercode import (UserCodeError, absolute_spec, calling, is_spec, kind_of, load_object, parse_spec,
                        probe_layer, sha256)
from .recipe import Recipe

SOURCE_JSON = "model_source.json"
SOURCE_COPY = "model_source.py"
#: the recipe of a user network (every setting can be changed with fastcnn train's options)
RECIPE = Recipe("adam", 1e-3, 64, 3, "cosine")
#: the per-sample input a network is checked with when its Sequential has no input_shape
MNIST_SHAPE = (1, 28, 28)

__all__ = ["is_spec", "build", "build_with_record", "record", "save_source", "verify", "short_name", "RECIPE"]


def short_name(spec: str) -> str:
    """``/a/b/mynet.py:net`` -> ``mynet.py:net`` (for titles, tables and default run names)."""
    path, name = parse_spec(spec, "FUNC")
    return f"{path.name}:{name}"


def build(spec: str, seed: int = 0, **kw) -> nn.Sequential:
    """The Sequential that FUNC of PATH.py returns (``seed=seed`` passed when FUNC takes it),
    with its user layers probed once (one float32 forward and backward on two zero-mean
    images: dtypes and shapes of y, dx and .grad); UserCodeError when it does not fit."""
    fn, path, name = load_object(spec, "FUNC")
    if isinstance(fn, nn.Layer) or (inspect.isclass(fn) and issubclass(fn, nn.Layer)):
        what = "a Sequential object" if isinstance(fn, nn.Sequential) else "a layer"
        raise UserCodeError(f"{path}: {name} is {what}; --model takes a function that returns the network, e.g.\n"
                            f"    def net(seed=0):\n        return nn.Sequential(..., seed=seed)\n"
                            "(a fresh network each call: eval, predict and --resume build it again)")
    if not callable(fn) or inspect.isclass(fn):
        raise UserCodeError(f"{path}: {name} is a {kind_of(fn)}; --model takes a function returning an "
                            "nn.Sequential, e.g. def net(seed=0): return nn.Sequential(..., seed=seed)")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_seed = "seed" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    required = [k for k, p in params.items() if p.default is p.empty and k != "seed"
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        raise UserCodeError(f"{path}: {name}() needs the arguments {', '.join(required)}; fastcnn calls it with "
                            "seed= only: give the others default values")
    kwargs = {"seed": seed} if takes_seed else {}
    with calling(path, f"{name}({'seed=' + str(seed) if takes_seed else ''})"):
        model = fn(**kwargs, **kw)
    if not isinstance(model, nn.Sequential):
        hint = " (wrap it: nn.Sequential(layer, ...))" if isinstance(model, nn.Layer) else ""
        raise UserCodeError(f"{path}: {name}() returned a {type(model).__name__}; it must return an "
                            f"nn.Sequential{hint}")
    if model.input_shape is None:
        try:
            model.shapes(MNIST_SHAPE)
            model.input_shape = MNIST_SHAPE
        except Exception:
            pass
    _probe(model, path)
    return model


def _probe(model, path) -> None:
    """The Layer contract of each of the user's own layers, on the chain's real intermediate inputs."""
    own = [l for l in model.layers if not type(l).__module__.startswith("fastcnn.")]
    if not own or model.input_shape is None:
        return
    if any(p.data.dtype != np.float32 for p in model.parameters()):
        model.to("numpy", np.float32)
    saved = [(l, {k: np.array(b, copy=True) for k, b in l.buffers().items()}) for l in model.layers]
    try:
        x = np.random.default_rng(0).standard_normal((2,) + tuple(model.input_shape)).astype(np.float32)
        for layer in model.layers:
            if layer in own:
                probe_layer(layer, x, path, f"{type(layer).__name__} (layer {model.layers.index(layer)})")
            with calling(path, f"{type(layer).__name__}.forward"):
                x = layer.forward(x)
    finally:
        for layer, bufs in saved:
            for k, b in bufs.items():
                getattr(layer, k)[...] = b
        model.clear_cache()


def record(spec: str) -> dict:
    """What a run records about the file: absolute path, function, SHA-256, name of the copy."""
    path, name = parse_spec(absolute_spec(spec), "FUNC")
    if not path.is_file():
        raise UserCodeError(f"{path}: no such file; check the path before the ':'")
    return {"spec": f"{path}:{name}", "path": str(path), "function": name, "sha256": sha256(path),
            "copy": SOURCE_COPY}


def build_with_record(spec: str, seed: int = 0):
    """(the network, the record a run directory keeps of it)."""
    rec = record(spec)
    return build(rec["spec"], seed=seed), rec


def save_source(spec, run_dir) -> dict | None:
    """For a user network: write RUN_DIR/model_source.json and the copy model_source.py (atomic);
    returns the record (None for a preset)."""
    if not is_spec(spec):
        return None
    rec = record(spec)
    files.save_bytes(Path(run_dir) / SOURCE_COPY, Path(rec["path"]).read_bytes())
    files.save_json(Path(run_dir) / SOURCE_JSON, rec)
    return rec


def verify(run_dir, spec) -> None:
    """Nothing when ``spec`` is a preset, is not the file the run recorded, or that file is
    unchanged; else UserCodeError naming the file and both hashes (or saying it is gone)."""
    if not is_spec(spec):
        return
    run_dir = Path(run_dir)
    try:
        rec = json.loads((run_dir / SOURCE_JSON).read_text())
    except (OSError, ValueError):
        return  # no record (written by an older fastcnn): nothing to compare with
    path, name = parse_spec(absolute_spec(spec), "FUNC")
    if str(path) != rec.get("path"):
        return  # another file, named on purpose (e.g. the run's own copy)
    copy = run_dir / rec.get("copy", SOURCE_COPY)
    fix = (f"restore it (the run keeps the source it was trained with: cp {copy} {path}), or build from that "
           f"copy: --model {copy}:{name} (eval, predict)")
    if not path.is_file():
        raise UserCodeError(f"{run_dir} was trained with the network of {path}, which no longer exists; {fix}")
    now = sha256(path)
    if now != rec.get("sha256"):
        raise UserCodeError(f"{path} has changed since {run_dir} was trained with it (SHA-256 then "
                            f"{rec.get('sha256')}, now {now}): it may build another network; {fix}")
