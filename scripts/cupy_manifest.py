"""Write fastcnn/testing/cupy_manifest.json: the names (and keyword arguments) real CuPy offers.

    python scripts/cupy_manifest.py [--out PATH]

Run it with the OLDEST supported CuPy installed (the floor of ``cupy-cuda12x`` in pyproject.toml;
CuPy imports without a GPU, so any machine will do):

    python -m venv /tmp/cupy-floor && /tmp/cupy-floor/bin/pip install numpy 'cupy-cuda12x==13.6.0'
    /tmp/cupy-floor/bin/python scripts/cupy_manifest.py

and commit the result whenever the supported range changes. The stand-in
(``fastcnn/testing/fake_cupy.py``) may offer only what this file lists: tests/gpu/test_cupy_manifest.py
checks its names and keywords, and every ``xp.NAME`` fastcnn and kernels/ use, against it, and
the stand-in refuses at run time any keyword the file does not list for a function.

What is recorded:

* ``names``: ``dir()`` of each namespace below (public names), for ``cupy``, ``cupy.ndarray``,
  ``cupy.random``, ``cupy.random.Generator``, ``cupy.cuda`` (and its runtime, Stream, Device,
  MemoryPointer, MemoryPool), ``cupy.lib``, ``cupy.lib.stride_tricks``, ``cupy.linalg``, ``cupyx``,
  and the custom-kernel classes;
* ``keywords``: for every callable there, the argument names that may be passed by keyword
  (``"ndarray.sum": ["axis", "dtype", "out", "keepdims"]``), read by ``inspect.signature`` or, for
  CuPy's compiled (Cython) functions, from the signature line their docstrings begin with; ``null``
  where neither is readable or the callable takes ``**kwargs`` (then nothing is checked).
"""
from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "fastcnn" / "testing" / "cupy_manifest.json"


def namespaces(cupy, cupyx) -> dict:
    """{recorded name: object} of the namespaces the manifest lists."""
    return {
        "cupy": cupy,
        "cupy.ndarray": cupy.ndarray,
        "cupy.random": cupy.random,
        "cupy.random.Generator": cupy.random.Generator,
        "cupy.cuda": cupy.cuda,
        "cupy.cuda.runtime": cupy.cuda.runtime,
        "cupy.cuda.Stream": cupy.cuda.Stream,
        "cupy.cuda.Device": cupy.cuda.Device,
        "cupy.cuda.MemoryPointer": cupy.cuda.MemoryPointer,
        "cupy.cuda.MemoryPool": cupy.cuda.MemoryPool,
        "cupy.lib": cupy.lib,
        "cupy.lib.stride_tricks": cupy.lib.stride_tricks,
        "cupy.linalg": cupy.linalg,
        "cupy.ElementwiseKernel": cupy.ElementwiseKernel,
        "cupy.ReductionKernel": cupy.ReductionKernel,
        "cupy.RawKernel": cupy.RawKernel,
        "cupyx": cupyx,
    }


def public(obj) -> list:
    """Public names; for a class its special (dunder) methods too (``__float__``, ``__iadd__``, ...)."""
    special = inspect.isclass(obj)
    return sorted(n for n in dir(obj) if not n.startswith("_") or special and n.startswith("__") and n.endswith("__"))


_DOC_SIG = re.compile(r"^\s*[\w.]+\((.*)\)(\s*->.*)?\s*$")


def _split_params(text: str) -> list:
    """Split a parameter list at its top-level commas."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


def keywords_from_doc(doc: str | None):
    """Keyword names from a Cython docstring's first line, e.g.
    ``_ndarray_base.sum(self, axis=None, dtype=None, out=None, keepdims=False) -> _ndarray_base`` or
    ``RawKernel(unicode code, unicode name, tuple options=(), *, bool jitify=False)``; None if unreadable."""
    if not doc:
        return None
    m = _DOC_SIG.match(doc.strip().splitlines()[0].replace("\\*", "*"))
    if not m:
        return None
    names = []
    for p in _split_params(m.group(1)):
        if p == "/":
            names.clear()  # everything before '/' is positional-only
            continue
        if p.startswith("**"):
            return None  # any keyword
        if p.startswith("*"):
            continue  # '*' or '*args'
        name = p.split("=")[0].split(":")[0].split()[-1] if p.split("=")[0].strip() else ""
        if not name.isidentifier():
            return None
        if name != "self":
            names.append(name)
    return names


def keywords(fn):
    """The names ``fn`` accepts as keyword arguments, or None when they cannot be read."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        target = fn.__init__ if inspect.isclass(fn) and fn.__doc__ is None else fn
        return keywords_from_doc(getattr(target, "__doc__", None))
    names = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
            names.append(p.name)
    return names


def build(cupy, cupyx) -> dict:
    names, kws = {}, {}
    for label, ns in namespaces(cupy, cupyx).items():
        names[label] = public(ns)
        prefix = "" if label == "cupy" else label.removeprefix("cupy.") + "."
        for n in names[label]:
            if n.startswith("__") and n != "__call__":
                continue  # special methods: their names are recorded, their keywords are not
            try:
                obj = inspect.getattr_static(ns, n) if inspect.isclass(ns) else getattr(ns, n)
            except AttributeError:
                continue
            if isinstance(obj, (staticmethod, classmethod)):
                obj = obj.__func__
            if callable(obj) and not (inspect.isclass(obj) and issubclass(obj, BaseException)):
                if inspect.isclass(obj) and obj.__module__.startswith("numpy"):
                    continue  # dtypes: numpy's own
                kws[prefix + n] = keywords(obj)
    return {
        "generated_by": "scripts/cupy_manifest.py",
        "package": next((d.metadata["Name"] for d in _dists() if d.metadata["Name"].startswith("cupy")), "cupy"),
        "cupy_version": cupy.__version__,
        "names": names,
        "keywords": dict(sorted(kws.items())),
    }


def _dists():
    from importlib import metadata

    return list(metadata.distributions())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    try:
        import cupy
        import cupyx
    except ImportError as e:
        print(f"cupy_manifest: needs the real CuPy installed ({e}); see this script's docstring", file=sys.stderr)
        return 2
    m = build(cupy, cupyx)
    args.out.write_text(json.dumps(m, indent=1, sort_keys=False, allow_nan=False) + "\n")
    print(f"{args.out}: CuPy {m['cupy_version']} ({m['package']}), {sum(map(len, m['names'].values()))} names, "
          f"{sum(v is not None for v in m['keywords'].values())} signatures read")
    return 0


if __name__ == "__main__":
    sys.exit(main())
