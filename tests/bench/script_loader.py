"""Load a script of the repository (benchmarks/*.py, scripts/*.py) as a module, for its tests."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script(relpath: str, name: str):
    """The module of ROOT/relpath, executed under ``name`` (not added to sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relpath)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
