"""The stand-in is no looser than real CuPy (the oldest supported release): every name and keyword it
offers, and every ``xp.NAME`` fastcnn and kernels/ use, is in fastcnn/testing/cupy_manifest.json,
which scripts/cupy_manifest.py generates from the real package."""
from __future__ import annotations

import inspect
import json
import re
import types
from pathlib import Path

import numpy as np
import pytest

from fastcnn.testing import fake_cupy as fake

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "fastcnn/testing/cupy_manifest.json").read_text())
NAMES = {k: set(v) for k, v in MANIFEST["names"].items()}
KEYWORDS = MANIFEST["keywords"]

#: Special names of a Python class that say nothing about CuPy's surface.
PY_SPECIAL = {"__slots__", "__weakref__", "__module__", "__doc__", "__qualname__", "__dict__", "__init__",
              "__annotations__", "__firstlineno__", "__static_attributes__"}


def offered(obj, special=False) -> set:
    """Public names the stand-in offers on ``obj`` (for a class: what it defines itself, specials too)."""
    if isinstance(obj, type):
        own = set().union(*(vars(c) for c in obj.__mro__ if c is not object))
        return {n for n in own if not n.startswith("_") or special and n.startswith("__") and n not in PY_SPECIAL}
    return {n for n, v in vars(obj).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}


def _version(v: str) -> tuple:
    return tuple(int(p) for p in v.split("."))


def test_manifest_is_from_the_oldest_supported_cupy():
    """The lowest CuPy any extra in pyproject.toml allows is the CuPy the manifest was generated from."""
    text = (ROOT / "pyproject.toml").read_text()
    floors = re.findall(r'"cupy-cuda1[23]x(?:\[ctk\])?>=([0-9.]+)', text)
    assert floors and min(floors, key=_version) == MANIFEST["cupy_version"], (
        f"pyproject's oldest CuPy {min(floors, key=_version)} is not the manifest's CuPy {MANIFEST['cupy_version']}: "
        "regenerate fastcnn/testing/cupy_manifest.json with scripts/cupy_manifest.py under that CuPy")
    assert MANIFEST["generated_by"] == "scripts/cupy_manifest.py" and "put_along_axis" not in NAMES["cupy"]


def test_top_level_names_exist_in_cupy():
    ours = offered(fake) - set(fake.STANDIN_ONLY) - {"annotations", "SimpleNamespace"}
    assert ours - NAMES["cupy"] == set()
    assert "cupyx" in fake.STANDIN_ONLY  # backend.scatter_add's door to it; CuPy's is a package of its own
    assert not hasattr(fake, "put_along_axis")


@pytest.mark.parametrize("label, obj", [
    ("cupy.ndarray", fake.ndarray), ("cupy.random", fake.random), ("cupy.random.Generator", fake.random.Generator),
    ("cupy.cuda", fake.cuda), ("cupy.cuda.runtime", fake.cuda.runtime), ("cupy.cuda.Stream", fake.cuda.Stream),
    ("cupy.cuda.Device", fake.cuda.Device), ("cupy.cuda.MemoryPointer", fake.cuda.MemoryPointer),
    ("cupy.cuda.MemoryPool", type(fake.get_default_memory_pool())), ("cupy.lib", fake.lib),
    ("cupy.lib.stride_tricks", fake.lib.stride_tricks), ("cupyx", fake.cupyx),
    ("cupy.ElementwiseKernel", fake.ElementwiseKernel), ("cupy.ReductionKernel", fake.ReductionKernel),
    ("cupy.RawKernel", fake.RawKernel)])
def test_namespace_names_exist_in_cupy(label, obj):
    assert offered(obj, special=True) - NAMES[label] == set()


def test_instance_attributes_exist_in_cupy():
    k = fake.ElementwiseKernel("T x", "T y", "y = x", "fc_manifest")
    assert set(vars(k)) - NAMES["cupy.ElementwiseKernel"] == set()
    r = fake.ReductionKernel("T x", "T y", "x", "a + b", "y = a", "0", "fc_manifest_r")
    assert set(vars(r)) - NAMES["cupy.ReductionKernel"] == set()
    assert set(vars(fake.RawKernel("", "fc_manifest_raw"))) - NAMES["cupy.RawKernel"] == set()
    p = fake.asarray(np.zeros(2, np.float32)).data
    assert {n for n in type(p).__slots__} - NAMES["cupy.cuda.MemoryPointer"] == set()


def _callables():
    """(manifest key, stand-in callable) for everything the stand-in defines with its own signature."""
    out = []
    for n in offered(fake) - set(fake.STANDIN_ONLY):
        out.append((n, getattr(fake, n)))
    for n in offered(fake.ndarray):
        out.append((f"ndarray.{n}", getattr(fake.ndarray, n)))
    for label, ns in (("random", fake.random), ("random.Generator", fake.random.Generator), ("cuda", fake.cuda),
                      ("cuda.runtime", fake.cuda.runtime), ("cuda.Stream", fake.cuda.Stream),
                      ("cuda.Device", fake.cuda.Device), ("cuda.MemoryPool", type(fake.get_default_memory_pool())),
                      ("lib.stride_tricks", fake.lib.stride_tricks), ("cupyx", fake.cupyx)):
        for n in offered(ns):
            out.append((f"{label}.{n}", getattr(ns, n)))
    for k in ("ElementwiseKernel", "ReductionKernel", "RawKernel"):
        out.append((f"{k}.__call__", getattr(fake, k).__call__))
    return [(k, f) for k, f in out if callable(f) and not isinstance(f, type) or k in KEYWORDS]


def test_keywords_are_cupys():
    checked = 0
    for key, fn in _callables():
        want = KEYWORDS.get(key)
        if want is None:
            continue  # unreadable in CuPy (or takes **kwargs): nothing to hold the stand-in to
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue
        params = [p for p in sig.parameters.values() if p.name != "self"]
        if any(p.kind is p.VAR_KEYWORD for p in params):
            continue  # a generic wrapper: checked at call time against the manifest (below)
        ours = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        assert ours - set(want) == set(), f"{key}: the stand-in accepts {sorted(ours - set(want))}, CuPy does not"
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("call", [
    lambda a: fake.sum(a, where=True), lambda a: a.sum(initial=0), lambda a: fake.exp(a, where=True),
    lambda a: fake.zeros(3, like=a), lambda a: fake.concatenate([a, a], axis=0, bogus=1),
    lambda a: a.max(initial=0)], ids=["sum-where", "ndarray.sum-initial", "exp-where", "zeros-like", "bogus",
                                      "max-initial"])
def test_keywords_numpy_has_but_cupy_lacks_are_refused(call):
    a = fake.asarray(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="unexpected keyword"):
        call(a)


def test_every_xp_name_in_fastcnn_exists_in_cupy():
    """A static scan: ``xp.NAME`` and ``xp.NAME.SUB`` in fastcnn/ and kernels/ are CuPy's (13.x has no
    put_along_axis, for one). Only backend.scatter_add reaches ``xp.cupyx``, and only for the stand-in."""
    pattern = re.compile(r"\bxp\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?")
    missing, seen = [], 0
    for path in sorted([*(ROOT / "fastcnn").rglob("*.py"), *(ROOT / "kernels").rglob("*.py")]):
        if path.name == "fake_cupy.py":
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for name, sub in pattern.findall(line.split("#")[0]):
                seen += 1
                if name == "__name__" or name == "cupyx" and path.name == "backend.py":
                    continue
                ns = f"cupy.{name}"
                if name not in NAMES["cupy"] or sub and ns in NAMES and sub not in NAMES[ns]:
                    missing.append(f"{path.relative_to(ROOT)}:{lineno}: xp.{name}{'.' + sub if sub else ''}")
    assert seen > 50
    assert missing == [], "not in CuPy " + MANIFEST["cupy_version"] + ":\n" + "\n".join(missing)


def test_manifest_script_reads_cython_signatures():
    """scripts/cupy_manifest.py reads keywords from the signature line CuPy's compiled functions'
    docstrings begin with (inspect cannot read those)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cupy_manifest", ROOT / "scripts/cupy_manifest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    read = mod.keywords_from_doc
    assert read("_ndarray_base.sum(self, axis=None, dtype=None, out=None, keepdims=False) -> _ndarray_base\n"
                "Returns the sum.") == ["axis", "dtype", "out", "keepdims"]
    assert read("exp(x, /, out=None, \\*, casting='same_kind', dtype=None)\n\nElementwise") == ["out", "casting",
                                                                                              "dtype"]
    assert read("RawKernel(unicode code, unicode name, tuple options=(), *, bool jitify=False)") == [
        "code", "name", "options", "jitify"]
    assert read("ElementwiseKernel(in_params, out_params, **kwargs)") is None  # any keyword: nothing to check
    assert read("Compiles and invokes the kernel.") is None
    assert KEYWORDS["ndarray.sum"] == ["axis", "dtype", "out", "keepdims"]  # as generated
