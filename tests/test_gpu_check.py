"""scripts/gpu_check.sh's plumbing, run as a dry run on the CuPy stand-in and Numba's CUDA simulator
(tiny sizes, no GPU), so it cannot rot between runs on a real GPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = "| check | case | fastcnn | reference | ratio | status |"


def _run(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("FASTCNN_FAKE_CUPY", "NUMBA_ENABLE_CUDASIM")}
    e.update(env or {}, PYTHON=sys.executable)
    return subprocess.run(["bash", str(ROOT / "scripts/gpu_check.sh"), *map(str, args)], cwd="/", env=e,
                          capture_output=True, text=True, timeout=300)


def _strict(text):
    def bad(c):
        raise ValueError(f"not strict JSON: {c}")

    return json.loads(text, parse_constant=bad)


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check") / "out"
    r = _run(out, "--dry-run")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


def test_dry_run_writes_one_table_and_strict_json(dry):
    md = (dry / "gpu_check.md").read_text()
    assert md.count(COLUMNS) == 1 and "DRY RUN" in md
    for check in ("device", "gpu tests", "first steps: CuPy vs NumPy", "launches, syncs per step", "step time",
                  "fast99 to 99 %"):
        assert f"| {check} |" in md, check
    rep = _strict((dry / "gpu_check.json").read_text())
    assert rep["dry_run"] is True and rep["status"] == "ok" and rep["schema"] == "fastcnn-gpu-check/1"
    assert rep["device"]["stand_in"] is True and rep["device"]["versions"]["numpy"]
    assert rep["gpu_tests"]["status"] == "ok" and rep["gpu_tests"]["counts"]["passed"] >= 1
    assert "CUDA_LAUNCH_BLOCKING=1" in rep["gpu_tests"]["command"]


def test_dry_run_covers_every_preset_and_counts_steps(dry):
    from fastcnn import models

    rep = _strict((dry / "gpu_check.json").read_text())
    assert sorted(r["preset"] for r in rep["first_steps"]["rows"]) == models.names()
    assert all(r["loss_rel_err"] <= 1e-3 and r["grad_rel_err"] <= 1e-3 for r in rep["first_steps"]["rows"])
    for r in rep["per_step"]["rows"]:
        assert r["method"] == "stand-in counters" and r["launches"] > 0 and r["syncs"] == 0
        assert r["launches"] <= r["budget_launches"] and r["status"] == "ok", r  # the lean plan, not a forced one
        assert {"h2d", "d2h", "allocs", "budget_launches"} <= set(r)
    t = rep["step_time"]["rows"][0]
    assert t["fastcnn_ms"] > 0 and t["torch_ms"] is None and t["torch_note"]
    f = rep["fast99"]
    assert f["train_status"] in ("completed", "target_reached") and 0 <= f["test_accuracy"] <= 1


def test_real_check_refuses_the_stand_in_and_needs_an_outdir(tmp_path):
    r = _run(tmp_path / "x", env={"FASTCNN_FAKE_CUPY": "1"})
    assert r.returncode == 2 and "this check is for a real GPU" in r.stderr
    r = _run()
    assert r.returncode == 2 and "usage" in r.stderr
