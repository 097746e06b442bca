"""``fastcnn train --config run.toml``: training settings from a TOML file.

    # run.toml — keys are TrainConfig's fields (dashes or underscores), at the top
    # level or under [train]; a [sweep] table holds the search space of `fastcnn sweep`.
    model = "lenet5"
    epochs = 3
    lr = 0.001
    augment = "shift=0.1,rotate=10"
    classes = [0, 1, 2]
    patience = 3
    betas = [0.7, 0.9]       # Adam's; onecycle takes pct_start, div_factor, final_div_factor
    ema = 0.999              # evaluate and save a moving average of the weights
    tta = 1                  # test-time augmentation over ±1 px shifts

Settings given on the command line override the file's (``merge``). The run
directory's config.json stores the resolved configuration either way.
"""
from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib
    except ImportError as e:
        raise ImportError("reading TOML on Python 3.10 needs tomli: pip install tomli") from e


def read_toml(path) -> dict:
    """The whole TOML document of ``path``; a syntax error names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config: no such file: {path}")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"--config {path}: not valid TOML: {e}") from None


#: settings with a narrower type than their annotation says: name -> (test, what it must be)
_NARROW = {
    "seed": (lambda v: v >= 0, "an integer ≥ 0"),
    "threads": (lambda v: v >= 1, "an integer ≥ 1"),
}
#: settings that also take a TOML list (joined with commas): name -> an example
_LISTS = {"classes": "[0, 1, 2]", "augment": '["translate=2", "rotate=10"]', "betas": "[0.9, 0.99]"}


def _kind(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(v), type(v).__name__)


def check_value(path, key: str, v, annotation: str):
    """``v`` of TOML key ``key`` if its type fits the TrainConfig field's ``annotation`` ("int | None",
    "float", "str | None", "bool", "tuple | None"), else a ValueError naming the file, the key, the
    expected type and the value (TOML is typed: lr = "abc", threads = "2", seed = 1.5, lr = true
    are mistakes, not values to convert). Lists of classes / augment specs / betas are joined."""
    base = annotation.split("|")[0].strip()
    name = key.replace("-", "_")

    def bad(what):
        example = f"e.g. {key} = {_LISTS[name]}" if name in _LISTS else ""
        raise ValueError(f"--config {path}: {key} must be {what}, got {v!r} ({_kind(v)})"
                         + (f"; {example}" if example else ""))

    if name in _LISTS and isinstance(v, list):
        if not v or any(isinstance(i, (bool, list, dict)) for i in v):
            bad(f"a non-empty list of {'numbers' if name == 'betas' else 'values'}")
        return ",".join(str(i) for i in v)
    if base == "bool":
        return v if isinstance(v, bool) else bad("true or false")
    if base == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            bad(_NARROW[name][1] if name in _NARROW else "an integer")
        if name in _NARROW and not _NARROW[name][0](v):
            bad(_NARROW[name][1])
        return v
    if base == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            bad("a number")
        return float(v)
    if base in ("str", "tuple"):
        if not isinstance(v, str):
            bad("a string like \"0,1,2\" or a list" if name in _LISTS else "a string")
        return v
    return v


def load_train_config(path) -> dict:
    """TrainConfig keyword arguments from ``path`` (top level or [train]); unknown keys and values of
    the wrong type (check_value) are errors naming the file and the key."""
    from .config import TrainConfig

    doc = read_toml(path)
    table = doc.get("train", {})
    if not isinstance(table, dict):
        raise ValueError(f"--config {path}: 'train' must be a table ([train]), got {table!r}")
    known = {f.name: str(f.type) for f in fields(TrainConfig) if not f.metadata.get("record")}  # not the record's facts
    tables = {k for k, t in known.items() if t.startswith("dict")}  # settings that are tables: schedule_args
    table = dict(table)
    table.update({k: v for k, v in doc.items() if k not in ("train", "sweep")
                  and (not isinstance(v, dict) or k.replace("-", "_") in tables)})
    extra_tables = [k for k, v in doc.items() if isinstance(v, dict) and k not in ("train", "sweep")
                    and k.replace("-", "_") not in tables]
    if extra_tables:
        raise ValueError(f"--config {path}: unknown table(s) {extra_tables}: use [train] and [sweep]")
    out = {}
    for k, v in table.items():
        key = k.replace("-", "_")
        if key not in known:
            raise ValueError(f"--config {path}: unknown setting {k!r}; known ones are {', '.join(sorted(known))}")
        out[key] = check_value(path, k, v, known[key])
    return out


def merge(path, given: dict) -> dict:
    """The file's settings overridden by the non-None command-line ``given`` ones."""
    cfg = load_train_config(path) if path else {}
    cfg.update({k: v for k, v in given.items() if v is not None})
    return cfg


def dumps(d: dict) -> str:
    """A flat dict as TOML (strings, numbers, booleans, lists; None values are left out)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "".join(f"{k} = {val(v)}\n" for k, v in d.items() if v is not None)
