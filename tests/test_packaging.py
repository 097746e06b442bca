"""fastcnn.kernels imports from every kind of install and from the source tree.

The kernels live in the top-level ``kernels/`` folder; an install maps it to
``fastcnn.kernels``. These tests use ``python -S`` (no site-packages processing, so no editable
finder) with an explicit path holding numpy and numba, to see what a regular install sees.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPS = str(Path(numpy.__file__).resolve().parents[1])  # the site-packages holding numpy, numba...


def _run(args, cwd, pythonpath):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_source_tree_without_install_finds_the_kernels(tmp_path):
    """`python -m ...` / `python -c` in a checkout import fastcnn from the source tree."""
    out = _run(["-c", "import fastcnn.kernels.cpu.conv as c, fastcnn.kernels.cuda; print(c.__file__)"],
               cwd=ROOT, pythonpath=[DEPS])
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve() == ROOT / "kernels" / "cpu" / "conv.py"


@pytest.mark.slow
def test_wheel_holds_the_kernels_and_runs_from_the_repository_root(tmp_path):
    """Build a wheel, install it (no -e), run commands from the repository root and elsewhere."""
    import shutil

    src, wheels, site = tmp_path / "src", tmp_path / "wheels", tmp_path / "site"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):  # build outside the checkout (no build/ left in it)
        shutil.copy(ROOT / name, src / name)
    for name in ("fastcnn", "kernels"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    b = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(wheels), str(src)], capture_output=True, text=True, timeout=600)
    if b.returncode != 0 and "No module named" in b.stderr:
        pytest.skip(f"cannot build a wheel here: {b.stderr.strip().splitlines()[-1]}")
    assert b.returncode == 0, b.stderr
    wheel = next(wheels.glob("fastcnn-*.whl"))
    i = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert i.returncode == 0, i.stderr
    assert (site / "fastcnn" / "kernels" / "cpu" / "conv.py").is_file()
    assert (site / "fastcnn" / "data" / "mnist" / "SHA256SUMS").is_file()
    for init in (ROOT / "fastcnn").rglob("__init__.py"):  # every subpackage made it into the wheel
        assert (site / init.relative_to(ROOT)).is_file(), f"{init.parent.relative_to(ROOT)} is not in the wheel"
    # from elsewhere: the installed package, with its own kernels
    out = _run(["-c", "import fastcnn.kernels.cpu.conv as c; print(c.__file__)"], cwd=tmp_path,
               pythonpath=[str(site), DEPS])
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve().is_relative_to(site.resolve())
    # from the repository root: `python -m fastcnn` takes the source tree first, and still works
    out = _run(["-m", "fastcnn", "summary", "--model", "compact"], cwd=ROOT, pythonpath=[str(site), DEPS])
    assert out.returncode == 0, out.stderr
    assert "total parameters: 20,994" in out.stdout
