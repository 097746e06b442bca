"""Smoke test of benchmarks/under_load.py: both measurements write their table."""
from script_loader import load_script

from fastcnn.kernels.cpu import launch
from fastcnn.tables import read_csv


def test_load_and_inference_tables(tmp_path):
    bench = load_script("benchmarks/under_load.py", "bench_under_load")
    default = launch.SPLIT, launch.ADAPT
    assert bench.main(["load", "--rounds", "1", "--steps", "2", "--settle", "1", "--batch", "32",
                       "--out", str(tmp_path)]) == 0
    assert (launch.SPLIT, launch.ADAPT) == default  # restored
    rows = read_csv(tmp_path / "under_load.csv")
    assert [r["split"] for r in rows] == [w[0] for w in bench.WAYS]
    assert all(float(r["kept"].rstrip("%")) > 0 for r in rows)
    assert bench.main(["inference", "--rounds", "1", "--steps", "2", "--batch", "32", "--out", str(tmp_path)]) == 0
    (row,) = read_csv(tmp_path / "inference.csv")
    assert float(row["ratio"]) > 0
