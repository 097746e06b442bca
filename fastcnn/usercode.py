"""A user's own Python file, named ``PATH.py:NAME``: loaded, hashed and called with errors that
name the file and say what to change (the workbench: ``fastcnn check``, ``bench conv --algo``,
``train --model``).

    path, name = parse_spec("mylayers.py:AvgPool")
    obj = load_object("mylayers.py:AvgPool")        # UserCodeError when it cannot
    digest = sha256(path)

Errors show the user's own traceback lines only (frames in the user's file or its folder),
nothing of fastcnn's or Python's import machinery. Imports nothing from fastcnn.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path


class UserCodeError(ValueError):
    """A user file that cannot be used as asked; the message names the file and what to change."""


def is_spec(text) -> bool:
    """Whether ``text`` names a user object, ``PATH.py:NAME`` (not a preset name)."""
    return isinstance(text, str) and ".py:" in text


def parse_spec(spec: str, what: str = "NAME") -> tuple:
    """``"dir/file.py:NAME"`` -> (Path, "NAME"); anything else is a UserCodeError."""
    if not isinstance(spec, str) or ":" not in spec:
        raise UserCodeError(f"expected PATH.py:{what} (a Python file and the name of an object in it), got {spec!r}")
    path, name = spec.rsplit(":", 1)
    if not path.endswith(".py") or not name.isidentifier():
        raise UserCodeError(f"expected PATH.py:{what} (a Python file and the name of an object in it), got {spec!r}")
    return Path(path), name


def sha256(path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def absolute_spec(spec: str) -> str:
    """``PATH.py:NAME`` with PATH made absolute (what a run directory records)."""
    path, name = parse_spec(spec)
    return f"{path.expanduser().resolve()}:{name}"


def user_traceback(exc: BaseException, path) -> str:
    """The traceback lines of ``exc`` in the user's file (or other files of its folder), then the
    exception itself; a SyntaxError shows its line and caret."""
    folder = Path(path).resolve().parent
    keep = []
    for fs in traceback.extract_tb(exc.__traceback__):
        f = Path(fs.filename)
        if f.is_file() and f.resolve().parent == folder:
            keep.append(fs)
    lines = traceback.format_list(keep)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


@contextmanager
def calling(path, what: str):
    """Run a call into the user's code; an exception from it becomes a UserCodeError saying
    ``what`` raised it, with the user's own traceback lines."""
    try:
        yield
    except UserCodeError:
        raise
    except Exception as e:
        raise UserCodeError(f"{path}: {what} raised {type(e).__name__}:\n{user_traceback(e, path)}") from None


def load_module(path):
    """Import the file at ``path`` as a fresh module (its folder on sys.path during the import,
    for its own helpers); a missing file, a syntax error or an exception at import time is a
    UserCodeError with the user's traceback."""
    path = Path(path).expanduser()
    if not path.is_file():
        hint = " (a folder: name a .py file in it)" if path.is_dir() else ""
        raise UserCodeError(f"{path}: no such file{hint}; check the path before the ':'")
    path = path.resolve()
    mod_name = f"fastcnn_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    sys.modules[mod_name] = module  # classes defined in it name this module (dataclasses need it)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(mod_name, None)
        where = f"line {e.lineno}" if e.lineno else "somewhere"
        raise UserCodeError(f"{path}: does not import: a syntax error at {where}:\n{user_traceback(e, path)}\n"
                            "fix that line and run again") from None
    except Exception as e:
        sys.modules.pop(mod_name, None)
        raise UserCodeError(f"{path}: does not import: running the file raised {type(e).__name__}:\n"
                            f"{user_traceback(e, path)}") from None
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def kind_of(obj) -> str:
    """A short description of what ``obj`` is, for messages ("class", "function", "module", ...)."""
    if inspect.isclass(obj):
        return f"class {obj.__name__}"
    if inspect.isfunction(obj):
        return "function"
    if inspect.ismodule(obj):
        return "module"
    return f"{type(obj).__name__} object"


def defined_names(module) -> list:
    """The public names the user's file defines itself (not what it imported), with their kind."""
    out = []
    for k, v in vars(module).items():
        if k.startswith("_") or inspect.ismodule(v):
            continue
        if (inspect.isclass(v) or inspect.isfunction(v)) and getattr(v, "__module__", None) != module.__name__:
            continue
        out.append(f"{k} ({kind_of(v)})")
    return out


def load_object(spec: str, what: str = "NAME"):
    """The object NAME of the file PATH.py in ``spec``; returns (obj, path, name)."""
    path, name = parse_spec(spec, what)
    module = load_module(path)
    if not hasattr(module, name):
        names = defined_names(module)
        close = difflib.get_close_matches(name, [n.split(" ")[0] for n in names], 1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        have = ", ".join(names) if names else "nothing public (only names starting with _ or imports)"
        raise UserCodeError(f"{path}: defines no {name!r}{hint}; it defines: {have}")
    return getattr(module, name), path.resolve(), name


def check_signature(path, owner: str, fn, args: tuple, call: str, fix: str) -> None:
    """UserCodeError unless ``fn`` can be called with ``args`` (the way fastcnn calls it: ``call``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin or C function: nothing to inspect
    try:
        sig.bind(*args)
    except TypeError as e:
        raise UserCodeError(f"{path}: {owner} has the signature {owner.rsplit('.', 1)[-1]}{sig}, but fastcnn "
                            f"calls it as {call} ({e}); {fix}") from None


def probe_layer(layer, x, path, name: str) -> None:
    """One forward and backward of a user layer on ``x``, checking the Layer contract: y keeps
    x's dtype, backward(dy) returns dx of x's shape and dtype (or None when ``needs_input_grad``
    is off), every parameter's .grad has its data's shape and dtype. UserCodeError otherwise."""
    with calling(path, f"{name}.forward, given x of shape {tuple(x.shape)} {x.dtype},"):
        y = layer.forward(x)
    if not hasattr(y, "shape") or not hasattr(y, "dtype"):
        raise UserCodeError(f"{path}: {name}.forward returned a {type(y).__name__}; it must return an array "
                            "(the layer's output y)")
    if y.dtype != x.dtype:
        raise UserCodeError(f"{path}: {name}.forward returned y as {y.dtype} for a {x.dtype} input; create the "
                            f"output with the input's dtype (e.g. xp.zeros(shape, dtype=x.dtype))")
    dy = (y * 0 + 1).astype(y.dtype)
    with calling(path, f"{name}.backward, given dy of shape {tuple(dy.shape)} {dy.dtype},"):
        dx = layer.backward(dy)
    if dx is None:
        if getattr(layer, "needs_input_grad", True):
            raise UserCodeError(f"{path}: {name}.backward returned None; it must return dx, the gradient "
                                f"with respect to its input, shape {tuple(x.shape)}")
    elif not hasattr(dx, "shape"):
        raise UserCodeError(f"{path}: {name}.backward returned a {type(dx).__name__}; it must return dx, an "
                            f"array of the input's shape {tuple(x.shape)}")
    elif tuple(dx.shape) != tuple(x.shape):
        raise UserCodeError(f"{path}: {name}.backward returned dx of shape {tuple(dx.shape)} for an input of shape "
                            f"{tuple(x.shape)}; dx must have exactly the input's shape (undo any padding, "
                            "reshape or transpose of forward)")
    elif dx.dtype != x.dtype:
        raise UserCodeError(f"{path}: {name}.backward returned dx as {dx.dtype} for a {x.dtype} input; allocate it "
                            f"with the input's dtype (e.g. xp.zeros(shape, dtype=dy.dtype)), never a bare np.zeros")
    for p in layer.parameters():
        g = getattr(p, "grad", None)
        pname = getattr(p, "name", "") or "a parameter"
        if g is None or tuple(g.shape) != tuple(p.data.shape) or g.dtype != p.data.dtype:
            got = "None" if g is None else f"{g.dtype} {tuple(g.shape)}"
            raise UserCodeError(f"{path}: after {name}.backward, {pname}.grad is {got} but {pname} is "
                                f"{p.data.dtype} {tuple(p.data.shape)}; write the gradient into it in place: "
                                f"self.{pname}.grad[...] = ...")
