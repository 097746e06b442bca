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


# --- the GPU extras (issue 20, goal 3) ------------------------------------------------------------
def _extras() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    from packaging.requirements import Requirement

    opt = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {name: {Requirement(r).name: Requirement(r) for r in reqs} for name, reqs in opt.items()}


GPU_EXTRAS = {"gpu-cuda12": ("cupy-cuda12x", "cu12", True), "gpu-cuda13": ("cupy-cuda13x", "cu13", True),
              "gpu-cuda12-toolkit": ("cupy-cuda12x", None, False), "gpu-cuda13-toolkit": ("cupy-cuda13x", None, False)}


@pytest.mark.parametrize("extra", sorted(GPU_EXTRAS))
def test_gpu_extras(extra):
    """Driver-only extras pull CuPy's CUDA libraries ([ctk], from CuPy 14.0: 13.x has no such extra) and
    numba-cuda's (cu12 / cu13); every GPU extra excludes CuPy 13.5.0 (it breaks numba-cuda launches),
    asks for a numba-cuda that does not synchronise on CuPy arrays (>= 0.26), and brings pytest for
    scripts/gpu_check.sh."""
    cupy_name, numba_extra, driver_only = GPU_EXTRAS[extra]
    reqs = _extras()[extra]
    cupy = reqs[cupy_name]
    assert "13.5.0" not in cupy.specifier and not cupy.specifier.contains("13.5.0", prereleases=True)
    assert cupy.specifier.contains("14.2.0")  # today's release
    if driver_only:
        assert cupy.extras == {"ctk"} and not cupy.specifier.contains("13.6.0")
        assert reqs["numba-cuda"].extras == {numba_extra}
    else:
        assert cupy.specifier.contains("13.6.0") and not cupy.specifier.contains("13.4.1")
    assert not reqs["numba-cuda"].specifier.contains("0.24.0") and reqs["numba-cuda"].specifier.contains("0.26.0")
    assert "pytest" in reqs


def test_gpu_is_an_alias_of_the_cuda12_extra_and_the_readme_names_the_extras():
    alias = _extras()["gpu"]
    assert list(alias) == ["fastcnn"] and alias["fastcnn"].extras == {"gpu-cuda12"}
    readme = (ROOT / "README.md").read_text()
    for extra in ("gpu-cuda12", "gpu-cuda13", "gpu-cuda12-toolkit"):
        assert f".[{extra}]" in readme, extra
    assert len(readme.splitlines()) <= 150
