"""The cases of ``fastcnn check`` and their rows: a layer against central differences, an
algorithm against the naive reference and central differences, all in float64; the float32
contract probes; ``agreement``, the gate before ``bench --algo`` times an algorithm."""
from __future__ import annotations

import re

import numpy as np

from ..conv import naive as naive_conv
from ..gradcheck import numerical_grad, rel_error
from ..nn import Layer
from ..pool import naive as naive_pool
from ..usercode import UserCodeError, calling, probe_layer

#: a relative error above this fails (float64: central differences land near 1e-9, agreement near 1e-15)
TOL = 1e-6
EPS = 1e-6
#: entries of each array checked by central differences (randomly chosen)
MAX_ENTRIES = 40
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


def no_ties(rng, shape) -> np.ndarray:
    """float64 values, all distinct and at least 4/size apart, in (−2, 2), none at 0."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) + 0.5) / n * 4 - 2


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


def layer_checks(t, rows, notes, input_shape=None):
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


def conv_checks(t, rows, notes):
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


def pool_checks(t, rows, notes, modes):
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
