"""The import layers written in pyproject.toml ([tool.importlinter]) hold: imports run one way,
no cycles between sibling modules, kernels import nothing from fastcnn. Imports inside
functions count as much as those at the top of a file."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(config: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_linter_contracts_are_kept():
    r = _lint(ROOT / "pyproject.toml")
    assert r.returncode == 0, f"lint-imports found broken contracts:\n{r.stdout}\n{r.stderr}"
    assert "0 broken" in r.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    """The contracts do catch a lower module importing a higher one (so the test above means something)."""
    text = (ROOT / "pyproject.toml").read_text()
    assert '    "registry",\n' in text
    bad = text.replace('    "registry",\n', '    "registry",\n    "nn",\n', 1).replace('    "nn",\n    "pool | data",',
                                                                                   '    "pool | data",', 1)
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text(bad)  # nn placed under conv: conv's modules are imported by nn, now upward
    r = _lint(cfg)
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout
