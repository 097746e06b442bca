"""The diagnosis of ``fastcnn check``'s failures: which quantity is off, in which cases, by which
constant factor when it is one, which classic mistake fits (W not rotated in dx, dy not
dilated, padding not cropped, the max-pool tie rule) and the usual causes."""
from __future__ import annotations

import numpy as np

from ..conv import naive as naive_conv
from ..gradcheck import rel_error
from .cases import TOL

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
