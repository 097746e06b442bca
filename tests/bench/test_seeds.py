"""Smoke test of benchmarks/seeds.py: two tiny seeds write the table (per seed + mean/min/median/max)."""
import json
import sys
from pathlib import Path

import numpy as np

from script_loader import load_script
from fastcnn.tables import read_csv

ROOT = Path(__file__).resolve().parents[2]


def _module():
    return load_script("benchmarks/seeds.py", "bench_seeds")


def test_two_seeds_write_the_table_and_summary(tmp_path, capsys, small_npz):
    sys.path.insert(0, str(ROOT / "tests" / "tools"))

    seeds = _module()
    data = small_npz(tmp_path / "mnist.npz", 600, 100)
    assert seeds.main(["--model", "compact", "--seeds", "2", "--epochs", "1", "--val-fraction", "0.2",
                       "--data-dir", str(data), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "res"),
                       "--set", "deterministic=true", "--set", "ema=0.9"]) == 0
    rows = read_csv(tmp_path / "res" / "seeds_compact.csv")
    assert [r["seed"] for r in rows] == ["0", "1", "mean", "min", "median", "max"]
    accs = [float(r["test_accuracy"]) for r in rows[:2]]
    assert float(rows[2]["test_accuracy"]) == np.mean(accs) and float(rows[3]["test_accuracy"]) == min(accs)
    assert float(rows[4]["test_accuracy"]) == np.median(accs)
    for s in (0, 1):
        m = json.loads((tmp_path / "runs" / f"seed-{s}" / "metrics.json").read_text())
        assert m["seed"] == s and m["val_accuracy"] is not None and m["features"]["ema"] == 0.9
        assert abs(m["test_accuracy"] - accs[s]) < 1e-4
    md = (tmp_path / "res" / "seeds_compact.md").read_text()
    assert "reproduce: python benchmarks/seeds.py --model compact" in md and "| median |" in md
    assert "compact: 2 seeds" in capsys.readouterr().out
