"""What ``PATH.py:NAME`` names, for ``fastcnn check``: a Layer (subclass, instance or factory,
built with ``--args``) or a conv/pool algorithm (registry contract), with the signatures
checked; anything else is a UserCodeError naming the file and what to change."""
from __future__ import annotations

import inspect
import json

from ..nn import Layer
from ..registry import Algo
from ..usercode import UserCodeError, calling, check_signature, kind_of, load_object

#: values assumed for a layer constructor's required arguments not given with --args
ASSUMED = {"in_channels": 3, "out_channels": 4, "channels": 3, "num_features": 3, "kernel_size": 3,
           "in_features": 6, "out_features": 4}
CONV_NAMES = {"w", "weight", "weights", "kernel_w", "filters", "filt", "k_w"}
POOL_NAMES = {"kernel", "kernel_size", "window", "pool", "pool_size", "size"}

def parse_args(text) -> dict:
    """``--args``: a JSON object ('{"kernel_size": 2}') or k=v pairs ('kernel_size=2,stride=1',
    each value read as JSON when it parses, else as a string)."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        return dict(text)
    text = text.strip()
    if text.startswith("{"):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"--args is not a valid JSON object ({e}); e.g. --args '{{\"kernel_size\": 2}}' "
                             "or --args kernel_size=2") from None
        if not isinstance(d, dict):
            raise ValueError("--args must be a JSON object or k=v pairs, e.g. --args kernel_size=2,stride=1")
        return d
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ValueError(f"--args: {part!r} is not k=v; write e.g. --args kernel_size=2,stride=1")
        k, v = (s.strip() for s in part.split("=", 1))
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def resolve(spec: str, args=None, kind=None):
    """(target dict, notes): what ``spec`` names and how to call it; UserCodeError when it is none
    of a Layer subclass / instance / factory or a conv / pool algorithm."""
    obj, path, name = load_object(spec)
    args = parse_args(args)
    if isinstance(obj, Algo) or (not inspect.isclass(obj) and not isinstance(obj, Layer) and not callable(obj)
                                 and hasattr(obj, "forward") and hasattr(obj, "backward")) or inspect.ismodule(obj):
        return _algorithm(obj, path, name, kind), []
    if inspect.isclass(obj):
        if not issubclass(obj, Layer) and isinstance(inspect.getattr_static(obj, "forward", None), staticmethod):
            return _algorithm(obj, path, name, kind), []  # a class holding the two passes as static methods
        if not issubclass(obj, Layer):
            hint = (f"write `class {name}(Layer):` with `from fastcnn.nn import Layer, Parameter`"
                    if hasattr(obj, "forward") else "fastcnn check takes a Layer subclass or an algorithm")
            raise UserCodeError(f"{path}: {name} is a class but not a fastcnn.nn.Layer; {hint}")
        return _layer_class(obj, path, name, args)
    if isinstance(obj, Layer):
        return {"kind": "layer", "path": path, "name": name, "variants": [("", lambda: obj)]}, []
    if callable(obj):
        with calling(path, f"{name}(**{args})"):
            made = obj(**args)
        if isinstance(made, Layer):
            return {"kind": "layer", "path": path, "name": name, "variants": [("", lambda: obj(**args))]}, []
        raise UserCodeError(f"{path}: {name} is a function returning a {type(made).__name__}; fastcnn check takes "
                            "a Layer subclass, a function returning a Layer, or a conv/pool algorithm "
                            "(an object or module with forward and backward, see fastcnn.registry)")
    raise UserCodeError(f"{path}: {name} is a {kind_of(obj)}; fastcnn check takes a Layer subclass or a "
                        "conv/pool algorithm (an object or module with forward and backward)")


def _layer_class(cls, path, name, args):
    for meth, call in (("forward", "forward(x)"), ("backward", "backward(dy)")):
        if getattr(cls, meth) is getattr(Layer, meth):
            raise UserCodeError(f"{path}: {name} does not define {meth}; a Layer needs forward(self, x) -> y and "
                                "backward(self, dy) -> dx (filling each parameter's .grad)")
        check_signature(path, f"{name}.{meth}", getattr(cls, meth), (object(), object()), call,
                        f"define it as def {meth}(self, {call[len(meth) + 1:-1]})")
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        sig = None
    params = dict(sig.parameters) if sig else {}
    params.pop("self", None)
    unknown = [k for k in args if k not in params and not any(p.kind == p.VAR_KEYWORD for p in params.values())]
    if unknown:
        raise UserCodeError(f"{path}: {name}() takes no argument {unknown[0]!r}; it takes: "
                            f"{', '.join(params) or 'none'}")
    base, notes = dict(args), []
    for k, p in params.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or k in base or p.default is not p.empty:
            continue
        if k not in ASSUMED:
            raise UserCodeError(f"{path}: {name}() needs the argument {k!r}: give it with --args {k}=...")
        base[k] = ASSUMED[k]
        notes.append(f"{k}={ASSUMED[k]} assumed (give --args {k}=... to choose)")
    variants = [("", base)]
    for extra in ({"stride": 2}, {"padding": 1}, {"stride": 2, "padding": 1}):
        if all(k in params and k not in args for k in extra):
            variants.append((", ".join(f"{k} {v}" for k, v in extra.items()), {**base, **extra}))

    def maker(kw):
        def make():
            with calling(path, f"{name}({', '.join(f'{k}={v!r}' for k, v in kw.items())})"):
                return cls(**kw)
        return make

    shown = ", ".join(f"{k}={v!r}" for k, v in base.items())
    return ({"kind": "layer", "path": path, "name": name, "built": f"{name}({shown})",
             "variants": [(label, maker(kw)) for label, kw in variants]}, notes)


def _algorithm(obj, path, name, kind):
    for meth in ("forward", "backward"):
        if not callable(getattr(obj, meth, None)):
            raise UserCodeError(f"{path}: {name} has no {meth} function; an algorithm needs forward and backward "
                                "(see fastcnn.registry)")
    fwd, bwd = obj.forward, obj.backward
    if kind is None:
        kind = getattr(obj, "kind", None) if getattr(obj, "kind", None) in ("conv", "pool") else None
    if kind is None:
        try:
            names = list(inspect.signature(fwd).parameters)
        except (TypeError, ValueError):
            names = []
        second = names[1].lower() if len(names) > 1 else ""
        kind = "conv" if second in CONV_NAMES else "pool" if second in POOL_NAMES else None
    if kind is None:
        raise UserCodeError(f"{path}: cannot tell whether {name} is a convolution or a pooling algorithm "
                            "(forward(x, w, b, stride, padding) or forward(x, kernel, stride, padding, mode)); "
                            "say it with --kind conv or --kind pool")
    if kind == "conv":
        check_signature(path, f"{name}.forward", fwd, (0,) * 5, "forward(x, w, b, stride, padding)",
                        "take exactly these five (x (N,C,H,W), w (F,C,kh,kw), b (F,) or None, two pairs of ints)")
        check_signature(path, f"{name}.backward", bwd, (0,) * 3, "backward(dy, cache, need_dx)",
                        "take (dy, cache, need_dx=True) and return (dx or None, dW, db or None)")
    else:
        check_signature(path, f"{name}.forward", fwd, (0,) * 5, "forward(x, kernel, stride, padding, mode)",
                        "take exactly these five (mode is 'max' or 'avg')")
        check_signature(path, f"{name}.backward", bwd, (0,) * 2, "backward(dy, cache)", "take (dy, cache) and return dx")
    return {"kind": kind, "path": path, "name": name, "forward": fwd, "backward": bwd,
            "algo": obj if isinstance(obj, Algo) else Algo(name, fwd, bwd, ("numpy",), autotune=False)}
