"""``fastcnn check PATH.py:NAME``: check a user's own layer or convolution/pooling algorithm.

A **layer** (a ``fastcnn.nn.Layer`` subclass, built with ``args`` or its defaults; variants with
stride 2 and padding 1 when its constructor takes them and ``args`` leaves them open): one
float32 pass checks the Layer contract (dtypes and shapes of y, dx and every .grad), then on
float64 inputs without ties (batch 1 and 3, several channels, non-square) dx and every
parameter gradient are compared with central differences of Σ forward(x)·g.

An **algorithm** (an object or module with ``forward`` and ``backward`` following
``fastcnn.registry``'s contract): y, dx, dW, db are compared with fastcnn's naive reference on
float64 cases (batch 1, several channels, stride, padding, non-square, a rectangular kernel,
no bias), and dx, dW, db with central differences of the algorithm's own forward; max-pooling
also on an input with ties (fastcnn's rule: the first maximum of a window, row-major).

    report = run("mylayers.py:AvgPool", args={"kernel_size": 2})
    print(format_report(report)); report["ok"]

A failure comes with a diagnosis: which quantity is off, by which factor when it is a
constant one, and the usual causes (a kernel not rotated 180° in dx, dy not dilated by the
stride, a missing 1/N, the max-pool tie rule, the padding not cropped).
"""
from __future__ import annotations

import inspect
import json
import re

import numpy as np

from . import tables
from .conv import naive as naive_conv
from .gradcheck import numerical_grad, rel_error
from .nn import Layer
from .pool import naive as naive_pool
from .registry import Algo
from .usercode import UserCodeError, calling, check_signature, kind_of, load_object, probe_layer

#: a relative error above this fails (float64: central differences land near 1e-9, agreement near 1e-15)
TOL = 1e-6
EPS = 1e-6
#: entries of each array checked by central differences (randomly chosen)
MAX_ENTRIES = 40
#: values assumed for a layer constructor's required arguments not given with --args
ASSUMED = {"in_channels": 3, "out_channels": 4, "channels": 3, "num_features": 3, "kernel_size": 3,
           "in_features": 6, "out_features": 4}
CONV_NAMES = {"w", "weight", "weights", "kernel_w", "filters", "filt", "k_w"}
POOL_NAMES = {"kernel", "kernel_size", "window", "pool", "pool_size", "size"}

COLUMNS = [("case", "case", ""), ("quantity", "quantity", ""), ("against", "against", ""),
           ("error", "rel. error", lambda v: f"{v:.1e}"), ("result", "result", "")]

# (label, N, C, H, W, F, kernel, stride, padding, bias)
CONV_CASES = [
    ("batch 1", 1, 1, 6, 6, 2, (3, 3), (1, 1), (0, 0), True),
    ("C 3→4, 7×9, 3×2 kernel", 2, 3, 7, 9, 4, (3, 2), (1, 1), (0, 0), True),
    ("stride 2", 2, 2, 9, 8, 3, (3, 3), (2, 2), (0, 0), True),
    ("padding 1", 2, 2, 6, 7, 3, (3, 3), (1, 1), (1, 1), True),
    ("stride 2×1, padding 2×1, 5×3, no bias", 2, 2, 9, 8, 2, (5, 3), (2, 1), (2, 1), False),
]
# (label, N, C, H, W, kernel, stride, padding)
POOL_CASES = [
    ("batch 1", 1, 1, 6, 6, (2, 2), (2, 2), (0, 0)),
    ("C 3, 7×9, 3×3 s2 p1", 2, 3, 7, 9, (3, 3), (2, 2), (1, 1)),
    ("C 2, 8×6, 2×3 s1 (overlapping)", 2, 2, 8, 6, (2, 3), (1, 1), (0, 0)),
]


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


def no_ties(rng, shape) -> np.ndarray:
    """float64 values, all distinct and at least 4/size apart, in (−2, 2), none at 0."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) + 0.5) / n * 4 - 2


# --- what NAME is ----------------------------------------------------------------------------
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


# --- the checks --------------------------------------------------------------------------------
def _row(case, quantity, against, err, rows, detail=None):
    ok = err is not None and err < TOL
    rows.append({"case": case, "quantity": quantity, "against": against, "error": err,
                 "result": "pass" if ok else "FAIL", "detail": detail})
    return ok


def _compare(case, quantity, against, got, ref, rows, **ctx):
    if got is None or not hasattr(got, "shape") or tuple(got.shape) != tuple(ref.shape):
        what = "None" if got is None else f"shape {tuple(got.shape)}" if hasattr(got, "shape") else type(got).__name__
        return _row(case, quantity, against, None, rows, {"msg": f"{quantity} is {what}, expected shape {tuple(ref.shape)}"})
    err = rel_error(got, ref)
    return _row(case, quantity, against, err, rows, None if err < TOL else {"got": np.asarray(got), "ref": ref, **ctx})


def _numeric(fn, arr, rng):
    n = arr.size
    idx = None if n <= MAX_ENTRIES else rng.choice(n, MAX_ENTRIES, replace=False)
    num = numerical_grad(fn, arr, EPS, idx)
    return (slice(None) if idx is None else idx), num


def _central(case, quantity, analytic, arr, fn, rng, rows, **ctx):
    if analytic is None or not hasattr(analytic, "shape") or tuple(analytic.shape) != tuple(arr.shape):
        return _compare(case, quantity, "central diff", analytic, arr, rows)
    sel, num = _numeric(fn, arr, rng)
    got, ref = np.asarray(analytic).reshape(-1)[sel], num.reshape(-1)[sel]
    err = rel_error(got, ref)
    return _row(case, quantity, "central diff", err, rows, None if err < TOL else {"got": got, "ref": ref, **ctx})


def _layer_checks(t, rows, notes, input_shape=None):
    path, name = t["path"], t["name"]
    rng = np.random.default_rng(0)
    first = True
    for label, make in t["variants"]:
        try:
            layer = make()
        except UserCodeError as e:
            if first:
                raise
            notes.append(f"skipped the variant with {label}: the constructor refused it ({str(e).splitlines()[-1]})")
            continue
        if not isinstance(layer, Layer):
            raise UserCodeError(f"{path}: {name}(...) built a {type(layer).__name__}, not a fastcnn.nn.Layer")
        shapes = _layer_shapes(layer, label, first, input_shape)
        if first:  # the contract, in float32 (a float64 check would not see a float64 allocation)
            x32 = no_ties(rng, shapes[-1]).astype(np.float32)
            with calling(path, f"{name}.to(np, float32)"):
                layer.to("numpy", np.float32)
            try:
                probe_layer(layer, x32, path, name)
            except UserCodeError as e:
                if input_shape is None and re.search(r"forward, given x of shape .* raised (ValueError|IndexError|"
                                                     r"ShapeError|AssertionError)", str(e)):
                    raise UserCodeError(f"{e}\n(fastcnn check chose that input; give your layer's per-sample "
                                        "input shape with --input-shape, e.g. --input-shape 5 or 3,8,8)") from None
                raise
            if not getattr(layer, "parameters", None) or not callable(layer.parameters):
                raise UserCodeError(f"{path}: {name}.parameters is not a method; leave Layer's own")
        with calling(path, f"{name}.to(np, float64)"):
            layer.to("numpy", np.float64)
        for prm in layer.parameters():  # random values: zero weights (a layer left to Sequential's
            prm.data[...] = rng.standard_normal(prm.data.shape)  # initialisation) would hide a wrong dx
        layer.train()
        for shape in shapes:
            case = f"N={shape[0]} " + ("in " + "×".join(map(str, shape[1:])))
            case += f", {label}" if label else ""
            x = no_ties(rng, shape)
            with calling(path, f"{name}.forward"):
                y1, y2 = layer.forward(x), layer.forward(x)
            if not np.array_equal(y1, y2):
                layer.eval()
                if first:
                    notes.append(f"{name}.forward is random in training mode (dropout?): checked in eval mode")
            g = rng.standard_normal(layer.forward(x).shape)
            layer.needs_input_grad = True
            with calling(path, f"{name}.backward"):
                dx = layer.backward(g)
            grads = {k: p.grad.copy() for k, p in _named(layer)}
            datas = {k: p.data for k, p in _named(layer)}

            def loss():
                with calling(path, f"{name}.forward"):
                    return float(np.sum(layer.forward(x) * g))

            ctx = {"shape": shape, "layer": layer}
            _central(case, "dx", dx, x, loss, rng, rows, **ctx)
            for pname in datas:
                _central(case, f"d{pname}", grads[pname], datas[pname], loss, rng, rows, **ctx)
            if first and grads:
                layer.forward(x)
                with calling(path, f"{name}.backward"):
                    layer.backward(g)
                again = {k: p.grad for k, p in _named(layer)}
                err = max(rel_error(again[k], grads[k]) for k in grads)
                _row(case, ".grad overwritten", "1st backward", err, rows,
                     None if err < TOL else {"msg": "a second backward changed the gradients (doubled when they are "
                                                    "added with +=): fastcnn's layers overwrite .grad "
                                                    "(p.grad[...] = ...); the optimizer reads it after every step"})
            first = False


def _named(layer) -> list:
    """(name, parameter) of a layer: "weight", ...; in a Sequential "Linear#4.weight", ..."""
    subs = getattr(layer, "layers", None)
    if isinstance(subs, list):
        return [(f"{sub.name}.{p.name or i}", p) for sub in subs for i, p in enumerate(sub.parameters())]
    return [(p.name or f"param{i}", p) for i, p in enumerate(layer.parameters())]


def _layer_shapes(layer, label, first, input_shape=None) -> list:
    """Input shapes for a layer, batch 1 and 3 (2 for variants): (N,) + ``input_shape`` when given,
    else (N,) + a Sequential's input_shape, (N, in_features) when it has in_features, else
    (N, C, H, W) with C its in_channels / num_features (3 otherwise), non-square."""
    f = getattr(layer, "in_features", None)
    batches = (1, 3) if first else (2,)
    if input_shape is not None:
        return [(n,) + tuple(input_shape) for n in batches]
    if isinstance(getattr(layer, "input_shape", None), tuple):  # a Sequential built with its input shape
        return [(n,) + layer.input_shape for n in batches]
    if isinstance(f, int):
        return [(n, f) for n in batches]
    c = next((getattr(layer, k) for k in ("in_channels", "num_features", "channels")
              if isinstance(getattr(layer, k, None), int)), 3)
    for hw in (((7, 9), (8, 6)), ((12, 10), (11, 13)), ((20, 18), (17, 19))):
        try:
            for h, w in hw:
                layer.output_shape((c, h, w))
            return [(n, c) + hw[i % 2] for i, n in enumerate(batches)]
        except Exception:
            continue
    return [(n, c) + (20, 18) for n in batches]


def _conv_checks(t, rows, notes):
    path, name, fwd, bwd = t["path"], t["name"], t["forward"], t["backward"]
    rng = np.random.default_rng(1)
    _conv_probe(t, rng)
    for label, n, c, h, w_, f, k, s, p, has_b in CONV_CASES:
        x = rng.standard_normal((n, c, h, w_))
        w = rng.standard_normal((f, c) + k)
        b = rng.standard_normal(f) if has_b else None
        y_ref, cache_ref = naive_conv.forward(x, w, b, s, p)
        dy = rng.standard_normal(y_ref.shape)
        dx_ref, dw_ref, db_ref = naive_conv.backward(dy, cache_ref, True)
        with calling(path, f"{name}.forward"):
            y, cache = _pair(fwd(x, w, b, s, p), path, name)
        with calling(path, f"{name}.backward"):
            out = bwd(dy, cache, True)
        dx, dw, db = _triple(out, path, name)
        ctx = {"x": x, "w": w, "b": b, "s": s, "p": p, "dy": dy, "n": n, "k": k}
        _compare(label, "y", "naive", y, y_ref, rows, **ctx)
        _compare(label, "dx", "naive", dx, dx_ref, rows, **ctx)
        _compare(label, "dW", "naive", dw, dw_ref, rows, **ctx)
        if has_b:
            _compare(label, "db", "naive", db, db_ref, rows, **ctx)
        elif db is not None:
            _row(label, "db", "contract", None, rows, {"msg": "with b None, backward must return db None"})

        def loss():
            with calling(path, f"{name}.forward"):
                return float(np.sum(fwd(x, w, b, s, p)[0] * dy))

        _central(label, "dx", dx, x, loss, rng, rows, **ctx)
        _central(label, "dW", dw, w, loss, rng, rows, **ctx)
        if has_b:
            _central(label, "db", db, b, loss, rng, rows, **ctx)


def _pair(out, path, name):
    if not isinstance(out, tuple) or len(out) != 2:
        raise UserCodeError(f"{path}: {name}.forward returned a {type(out).__name__}; it must return (y, cache): "
                            "the output and whatever backward needs")
    return out


def _triple(out, path, name):
    if not isinstance(out, tuple) or len(out) != 3:
        raise UserCodeError(f"{path}: {name}.backward returned a {type(out).__name__}; a convolution's backward "
                            "returns the tuple (dx, dW, db) (dx None when need_dx is False, db None without bias)")
    return out


def _conv_probe(t, rng):
    """The contract in float32: shapes and dtypes of y, dx, dW, db (exit code 2 when broken)."""
    path, name = t["path"], t["name"]
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    with calling(path, f"{name}.forward"):
        y, cache = _pair(t["forward"](x, w, b, (1, 1), (0, 0)), path, name)
    _expect(path, f"{name}.forward", "y", y, (2, 4, 4, 5), np.float32, "x")
    with calling(path, f"{name}.backward"):
        dx, dw, db = _triple(t["backward"](np.ones_like(y), cache, True), path, name)
    _expect(path, f"{name}.backward", "dx", dx, x.shape, np.float32, "x")
    _expect(path, f"{name}.backward", "dW", dw, w.shape, np.float32, "w")
    _expect(path, f"{name}.backward", "db", db, b.shape, np.float32, "b")


def _expect(path, owner, what, a, shape, dtype, like):
    if a is None or not hasattr(a, "shape"):
        raise UserCodeError(f"{path}: {owner} returned {what} as {type(a).__name__}; it must be an array of shape "
                            f"{tuple(shape)}")
    if tuple(a.shape) != tuple(shape):
        raise UserCodeError(f"{path}: {owner} returned {what} of shape {tuple(a.shape)}; expected {tuple(shape)} "
                            f"(the shape of {like}" + (")" if what != "y" else "'s output: oh = (H + 2·ph − kh) // sh + 1)"))
    if a.dtype != dtype:
        raise UserCodeError(f"{path}: {owner} returned {what} as {a.dtype} for {np.dtype(dtype)} inputs; allocate "
                            f"it with the inputs' dtype (e.g. xp.zeros(shape, dtype={like}.dtype)), never a bare "
                            "np.zeros (float64)")


def _pool_checks(t, rows, notes, modes):
    path, name, fwd, bwd = t["path"], t["name"], t["forward"], t["backward"]
    rng = np.random.default_rng(2)
    for mode in modes:
        x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
        with calling(path, f"{name}.forward"):
            y, cache = _pair(fwd(x, (2, 2), (2, 2), (0, 0), mode), path, name)
        _expect(path, f"{name}.forward ({mode})", "y", y, (2, 3, 3, 3), np.float32, "x")
        with calling(path, f"{name}.backward"):
            dx = bwd(np.ones_like(y), cache)
        _expect(path, f"{name}.backward ({mode})", "dx", dx, x.shape, np.float32, "x")
        cases = list(POOL_CASES) + ([("ties (integers 0..2)", 2, 2, 6, 6, (2, 2), (2, 2), (0, 0))]
                                    if mode == "max" else [])
        for label, n, c, h, w, k, s, p in cases:
            ties = label.startswith("ties")
            x = rng.integers(0, 3, (n, c, h, w)).astype(np.float64) if ties else no_ties(rng, (n, c, h, w))
            y_ref, cache_ref = naive_pool.forward(x, k, s, p, mode)
            dy = rng.standard_normal(y_ref.shape)
            dx_ref = naive_pool.backward(dy, cache_ref)
            case = f"{mode}: {label}"
            with calling(path, f"{name}.forward"):
                y, cache = _pair(fwd(x, k, s, p, mode), path, name)
            with calling(path, f"{name}.backward"):
                dx = bwd(dy, cache)
            ctx = {"x": x, "k": k, "s": s, "p": p, "dy": dy, "n": n, "mode": mode, "ties": ties}
            _compare(case, "y", "naive", y, y_ref, rows, **ctx)
            _compare(case, "dx", "naive", dx, dx_ref, rows, **ctx)
            if not ties:
                def loss():
                    with calling(path, f"{name}.forward"):
                        return float(np.sum(fwd(x, k, s, p, mode)[0] * dy))
                _central(case, "dx", dx, x, loss, rng, rows, **ctx)


# --- diagnosis ---------------------------------------------------------------------------------
def _factor(got, ref):
    """r when got ≈ r·ref for a constant r ≠ 1, else None."""
    got, ref = np.asarray(got, float).ravel(), np.asarray(ref, float).ravel()
    rr = float(ref @ ref)
    if rr == 0 or got.shape != ref.shape:
        return None
    r = float(got @ ref) / rr
    if abs(r - 1) < 1e-3 or rel_error(got, r * ref) > 1e-6 * max(1.0, abs(r)):
        return None
    return r


def _factor_words(r, ctx) -> str:
    named = {}  # symbol -> (value, what it is)
    if "n" in ctx:
        named["N"] = (ctx["n"], "the batch size")
    if "shape" in ctx:
        named["N"] = (ctx["shape"][0], "the batch size")
        if len(ctx["shape"]) == 4:
            named["H·W"] = (ctx["shape"][2] * ctx["shape"][3], "the positions per map")
    if "k" in ctx:
        named["kh·kw"] = (ctx["k"][0] * ctx["k"][1], "the values per window")
    layer = ctx.get("layer")
    if layer is not None and isinstance(getattr(layer, "kernel_size", None), (int, tuple, list)):
        ks = layer.kernel_size
        ks = (ks, ks) if isinstance(ks, int) else tuple(ks)
        named["kh·kw"] = (ks[0] * ks[1], "the values per window, of which the mean is taken")
    for sym, (v, what) in named.items():
        if v and v != 1 and abs(r - v) < 1e-6 * v:
            return f"{v} times too large: {v} = {sym}, {what}; a 1/({sym}) is missing"
        if v and v != 1 and abs(r - 1 / v) < 1e-6:
            return (f"{v} times too small: {v} = {sym}, {what}; an extra 1/({sym}), or a mean where a "
                    "sum belongs")
    return f"{r:.6g} times the right value (a constant factor: a scale such as 1/N is wrong)"


CAUSES = {
    "dx_conv": "dx = dy (dilated by the stride: s−1 zeros between its entries) fully convolved with W rotated "
               "180° (W[:, :, ::-1, ::-1]), padding cropped; or scatter dy[n,f,i,j]·W[f] into each window",
    "dW_conv": "dW[f] = Σ_{n,i,j} dy[n,f,i,j] · xpad window (i·sh, j·sw): a sum over the batch (no 1/N), over the "
               "padded input",
    "db_conv": "db[f] = Σ_{n,i,j} dy[n,f,i,j]: a sum over batch and positions (no 1/N)",
    "y_conv": "y[n,f,i,j] = b[f] + Σ_{c,p,q} xpad[n,c,i·sh+p,j·sw+q]·W[f,c,p,q]: a cross-correlation (W not "
              "flipped), windows stepped by the stride, x padded with zeros",
    "y_pool": "windows stepped by the stride; padding −inf for max, 0 for avg (padding counted in the mean)",
    "dx_pool": "max: dy goes to the first maximum of each window (row-major) only; avg: dy/(kh·kw) to every "
               "element; overlapping windows add up (+=); padding cropped",
    "dx_layer": "backward must use what forward cached for this input; for a convolution: W rotated 180° and dy "
                "dilated by the stride; for pooling: the 1/(kh·kw) of the mean, the max's position; crop the padding",
    "dparam_layer": "a parameter's gradient sums over the batch (no 1/N) and is written into p.grad[...]",
}


def diagnose(rows, kind) -> list:
    """One line per failing quantity: in how many cases and against what it is off, a constant
    factor when there is one, what fits the failures (e.g. dx with W not rotated), its usual causes."""
    out = []
    failing = [r for r in rows if r["result"] != "pass"]
    for r in failing:  # contract messages (None, a wrong shape, accumulated grads) as they are
        d = r.get("detail") or {}
        if "msg" in d and f"{r['case']}: {d['msg']}" not in out:
            out.append(f"{r['case']}: {d['msg']}")
    for q in dict.fromkeys(r["quantity"] for r in failing if "msg" not in (r.get("detail") or {})):
        bad = [r for r in failing if r["quantity"] == q and "msg" not in (r.get("detail") or {})]
        cases = list(dict.fromkeys(r["case"] for r in bad))
        all_cases = list(dict.fromkeys(r["case"] for r in rows if r["quantity"] == q))
        against = " and ".join(dict.fromkeys(r["against"] for r in bad))
        worst = max(r["error"] for r in bad)
        where = f"in all {len(cases)} cases" if len(cases) == len(all_cases) else \
            f"in {len(cases)} of {len(all_cases)} cases ({'; '.join(cases)})"
        why = []
        for r in bad:  # the first failing row that shows a constant factor
            f = _factor(r["detail"].get("got"), r["detail"].get("ref"))
            if f is not None:
                why.append("it is " + _factor_words(f, r["detail"]))
                break
        d = bad[0]["detail"]
        if kind == "conv":
            why += _conv_specific(q, d, rows)
            why.append("usual causes: " + CAUSES[f"{q}_conv" if q in ("dx", "dW", "db", "y") else "dx_conv"])
        elif kind == "pool":
            if all(r["detail"].get("ties") for r in bad):
                why.append("it differs only on an input with ties: fastcnn sends each window's dy to its first "
                           "maximum (row-major order), once — not to every maximum, not split between them")
            why.append("usual causes: " + CAUSES["y_pool" if q == "y" else "dx_pool"])
        else:
            ok_cases = [r for r in rows if r["quantity"] == q and r["result"] == "pass"]
            if q == "dx" and ok_cases and all("stride" in c for c in cases):
                why.append("dx passes without stride and fails with it: dilate dy by the stride")
            elif q == "dx" and ok_cases and all("padding" in c for c in cases):
                why.append("dx passes without padding and fails with it: crop the padding from dx")
            why.append("usual causes: " + CAUSES["dx_layer" if q == "dx" else "dparam_layer"])
        out.append(f"{q} is off {where}, against {against} (relative error up to {worst:.1e}): " + "; ".join(why))
    return out


def _conv_specific(q, d, rows) -> list:
    if "x" not in d:
        return []
    x, w, b, s, p, dy = d["x"], d["w"], d["b"], d["s"], d["p"], d["dy"]
    flipped = w[:, :, ::-1, ::-1].copy()
    if q == "y":
        if rel_error(d["got"], naive_conv.forward(x, flipped, b, s, p)[0]) < TOL:
            return ["y equals the forward with W flipped: fastcnn's forward is a cross-correlation, do not rotate W there"]
        return []
    if q == "dx":
        alt = naive_conv.backward(dy, naive_conv.forward(x, flipped, b, s, p)[1], True)[0]
        if d["got"].shape == alt.shape and rel_error(d["got"], alt) < TOL:
            return ["dx equals the full convolution of dy with W NOT rotated by 180°: rotate the kernel "
                    "(W[:, :, ::-1, ::-1]) in dx"]
        if s != (1, 1) and all(r["result"] == "pass" for r in rows
                               if r["quantity"] == "dx" and "stride" not in r["case"] and r["against"] == "naive"):
            return ["dx is right without stride and wrong with it: dilate dy by the stride (insert s−1 zeros "
                    "between its entries) before the full convolution"]
        if p != (0, 0) and all(r["result"] == "pass" for r in rows
                               if r["quantity"] == "dx" and "padding" not in r["case"] and r["against"] == "naive"):
            return ["dx is right without padding and wrong with it: crop the padding from dxpad"]
    return []


# --- the whole check ---------------------------------------------------------------------------
def parse_shape(text):
    """``--input-shape``: "5" or "3,8,8" (per sample, no batch axis) -> a tuple of ints ≥ 1."""
    if text is None or isinstance(text, tuple):
        return text
    try:
        shape = tuple(int(v) for v in str(text).replace("×", ",").replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ValueError(f"--input-shape takes the per-sample shape as integers ≥ 1, e.g. 5 or 3,8,8; got {text!r}")
    return shape


def run(spec: str, args=None, kind=None, modes=("max", "avg"), input_shape=None) -> dict:
    """Check ``spec`` (PATH.py:NAME). Returns {"target", "rows", "diagnosis", "notes", "ok"};
    raises UserCodeError (exit code 2) when the file or its API is unusable. ``input_shape``: a
    layer's per-sample input shape (default: chosen from its attributes, see _layer_shapes)."""
    input_shape = parse_shape(input_shape)
    target, notes = resolve(spec, args, kind)
    rows = []
    with np.errstate(all="ignore"):
        if target["kind"] == "layer":
            _layer_checks(target, rows, notes, input_shape)
        elif target["kind"] == "conv":
            _conv_checks(target, rows, notes)
        else:
            _pool_checks(target, rows, notes, modes)
    return {"target": target, "rows": rows, "diagnosis": diagnose(rows, target["kind"]), "notes": notes,
            "ok": all(r["result"] == "pass" for r in rows)}


def title(report) -> str:
    t = report["target"]
    what = {"layer": "layer", "conv": "convolution algorithm", "pool": "pooling algorithm"}[t["kind"]]
    built = f" built as {t['built']}" if t.get("built") else ""
    return f"{t['path']}:{t['name']}: {what}{built}, float64"


def format_report(report) -> str:
    """The table, the notes, the diagnosis of any failure and a verdict line."""
    rows = report["rows"]
    out = [tables.text(COLUMNS, rows, title(report))]
    out += [f"note: {n}" for n in report["notes"]]
    bad = [r for r in rows if r["result"] != "pass"]
    if bad:
        out.append("\ndiagnosis:")
        out += [f"- {d}" for d in report["diagnosis"]]
        out.append(f"\n{len(bad)} of {len(rows)} checks FAIL (relative error ≥ {TOL:g})")
    else:
        out.append(f"\nall {len(rows)} checks pass (relative error < {TOL:g})")
    return "\n".join(out)


# --- agreement before a benchmark --------------------------------------------------------------
def agreement(target, in_shape, geometry, n: int = 2) -> dict:
    """Relative errors of a user algorithm (``resolve``'s target) against the naive reference on
    one layer shape at batch ``n``, float64: {"y": e, "dx": e, ...}; a quantity of the wrong shape,
    or a call that raises, gives an error of inf and {"error": message}.

    ``geometry``: conv (w_shape, stride, padding), pool (kernel, stride, padding, mode).
    """
    rng = np.random.default_rng(3)
    x = no_ties(rng, (n,) + tuple(in_shape))
    try:
        if target["kind"] == "conv":
            w_shape, s, p = geometry
            w, b = rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
            y_ref, c_ref = naive_conv.forward(x, w, b, s, p)
            dy = rng.standard_normal(y_ref.shape)
            refs = dict(zip(("y", "dx", "dW", "db"), (y_ref,) + naive_conv.backward(dy, c_ref, True)))
            y, cache = _pair(target["forward"](x, w, b, s, p), target["path"], target["name"])
            got = dict(zip(("y", "dx", "dW", "db"),
                           (y,) + _triple(target["backward"](dy, cache, True), target["path"], target["name"])))
        else:
            y_ref, c_ref = naive_pool.forward(x, *geometry)
            dy = rng.standard_normal(y_ref.shape)
            refs = {"y": y_ref, "dx": naive_pool.backward(dy, c_ref)}
            y, cache = _pair(target["forward"](x, *geometry), target["path"], target["name"])
            got = {"y": y, "dx": target["backward"](dy, cache)}
    except Exception as e:  # the user's code: reported, not raised
        return {"error": f"raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")}
    return {k: (rel_error(got[k], r) if hasattr(got[k], "shape") and tuple(got[k].shape) == tuple(r.shape)
                else float("inf")) for k, r in refs.items()}
