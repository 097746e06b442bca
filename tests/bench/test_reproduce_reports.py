"""scripts/reproduce_reports.py: seeds per row, median and spread, and the computed verdict."""
import json

from script_loader import load_script


def _module():
    return load_script("scripts/reproduce_reports.py", "reproduce_reports")


def test_verdict_compares_the_reported_figure_with_the_seeds_spread():
    v = _module().verdict
    assert v(0.985, [0.983, 0.986, 0.988]) == "yes"
    assert v(0.990, [0.983, 0.986, 0.988]) == "yes"  # within the spread + 0.2 points
    assert v(0.9929, [0.977, 0.983, 0.987]) == "no"
    assert v(0.945, [0.966, 0.968, 0.970]) == "better"
    assert v(None, [0.9]) == "—"


def test_two_seeds_of_report_d_give_median_spread_and_every_run(tmp_path, capsys):
    assert _module().main(["--quick", "--only", "d", "--seeds", "2", "--out", str(tmp_path)]) == 0
    table = json.loads((tmp_path / "reproduce.json").read_text())
    assert [r["report"] for r in table] == ["D 0/1/2", "D"]
    for r in table:
        accs = [run["accuracy"] for run in r["runs"]]
        assert [run["seed"] for run in r["runs"]] == [0, 1]
        assert r["accuracy_min"] == min(accs) <= r["accuracy"] <= max(accs) == r["accuracy_max"]
        assert r["reproduced"] in ("yes", "no", "better")
    md = (tmp_path / "reproduce.md").read_text()
    assert "median (min–max)" in md and "| D 0/1/2 | report-d |" in md
