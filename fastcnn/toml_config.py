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


def load_train_config(path) -> dict:
    """TrainConfig keyword arguments from ``path`` (top level or [train]); unknown keys are errors."""
    from .config import TrainConfig

    doc = read_toml(path)
    table = dict(doc.get("train", {}))
    table.update({k: v for k, v in doc.items() if k not in ("train", "sweep") and not isinstance(v, dict)})
    extra_tables = [k for k, v in doc.items() if isinstance(v, dict) and k not in ("train", "sweep")]
    if extra_tables:
        raise ValueError(f"--config {path}: unknown table(s) {extra_tables}: use [train] and [sweep]")
    known = {f.name for f in fields(TrainConfig) if not f.metadata.get("record")}  # not the record's facts
    out = {}
    for k, v in table.items():
        key = k.replace("-", "_")
        if key not in known:
            raise ValueError(f"--config {path}: unknown setting {k!r}; known ones are {', '.join(sorted(known))}")
        if key == "classes" and isinstance(v, list):
            v = ",".join(str(c) for c in v)
        if key == "augment" and isinstance(v, list):
            v = ",".join(map(str, v))
        out[key] = v
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
