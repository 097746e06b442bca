"""Smoke test of benchmarks/under_load.py: both measurements write their table."""
from script_loader import load_script

from fastcnn.kernels.cpu import launch
from fastcnn.tables import read_csv


def test_load_and_inference_tables(tmp_path):
    bench = load_script("benchmarks/under_load.py", "bench_under_load")
    default = launch.SPLIT
    assert bench.main(["load", "--rounds", "1", "--steps", "2", "--batch", "32", "--out", str(tmp_path)]) == 0
    assert launch.SPLIT == default  # restored
    rows = read_csv(tmp_path / "under_load.csv")
    assert len(rows) == 2 and "before" in rows[0]["split"] and float(rows[1]["kept"].rstrip("%")) > 0
    assert bench.main(["inference", "--rounds", "1", "--steps", "2", "--batch", "32", "--out", str(tmp_path)]) == 0
    (row,) = read_csv(tmp_path / "inference.csv")
    assert float(row["ratio"]) > 0
