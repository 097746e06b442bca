"""Smoke tests of the benchmark suite: `fastcnn bench conv|train --quick` write complete tables.

Timings are never compared with each other (tests do not time things); what is checked is what
a reader of the tables relies on: every algorithm's row for every layer, with the layer's shape;
totals, GFLOP/s and speed-ups that follow from the times and the layer's FLOP count; and the
Markdown table saying what the CSV says.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

from script_loader import load_script
from fastcnn import cli
from fastcnn.bench import conv as bench_conv
from fastcnn import tables
from fastcnn.conv import CONV
from fastcnn.pool import POOL

ROOT = Path(__file__).resolve().parents[2]


def _expected_conv_rows():
    out = set()
    for preset in bench_conv.PRESETS:
        for spec in bench_conv.layer_shapes(preset):
            table = CONV if spec["kind"] == "conv" else POOL
            out |= {(preset, spec["layer"], a.name) for a in table.values() if a.available(np)}
    return out


def test_bench_conv_quick_writes_every_algorithm_and_shape(tmp_path, capsys):
    assert cli.main(["bench", "conv", "--quick", "--out", str(tmp_path)]) == 0
    rows = tables.read_csv(tmp_path / "conv.csv")
    assert {(r["model"], r["layer"], r["algo"]) for r in rows} == _expected_conv_rows()
    assert len(rows) == len(_expected_conv_rows())
    specs = {(p, s["layer"]): s for p in bench_conv.PRESETS for s in bench_conv.layer_shapes(p)}
    batch = 32  # --quick
    for r in rows:
        spec = specs[(r["model"], r["layer"])]
        assert r["input"] == "×".join(map(str, (batch,) + spec["in_shape"])) and r["op"] == bench_conv.describe(spec)
        fwd, bwd, total = float(r["fwd_ms"]), float(r["bwd_ms"]), float(r["total_ms"])
        assert fwd > 0 and bwd > 0 and total == pytest.approx(fwd + bwd, rel=1e-5)
        assert int(r["extra_bytes"]) == bench_conv.extra_bytes(
            next(a for a in (CONV if spec["kind"] == "conv" else POOL).values() if a.name == r["algo"]),
            spec, batch, 4)
        naive = next(float(n["total_ms"]) for n in rows
                     if (n["model"], n["layer"], n["algo"]) == (r["model"], r["layer"], "naive"))
        assert float(r["speedup"]) == pytest.approx(naive / total, rel=1e-4)
        if spec["kind"] == "conv":  # forward + backward = 3 × the forward's 2·N·F·oh·ow·C·kh·kw
            flops = 3 * bench_conv.conv_flops(batch, spec)
            assert float(r["gflops"]) == pytest.approx(flops / (total / 1e3) / 1e9, rel=1e-4)
        else:
            assert r["gflops"] == ""
    md_rows = [ln for ln in (tmp_path / "conv.md").read_text().splitlines() if ln.startswith("| ")][1:]
    assert len(md_rows) == len(rows)
    for r, line in zip(rows, md_rows):  # the Markdown says what the CSV says, in the same order
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert cells[:5] == [r["model"], r["layer"], r["op"], r["input"], r["algo"]]
        # the Markdown rounds the exact value; the CSV keeps more digits (rounding those again can
        # differ in the last place), so: the shown value is the CSV's to within half a last digit
        assert abs(float(cells[7]) - float(r["total_ms"])) <= 0.0005 + 1e-6
        assert abs(float(cells[10]) - float(r["speedup"])) <= 0.05 + 1e-6
    head = (tmp_path / "conv.csv").read_text().splitlines()[0]
    assert head.startswith("# cpu: ")
    md = (tmp_path / "conv.md").read_text()
    assert "- cores: " in md and "| algo |" in md and "scaled from batch" in md
    assert "total ms" in capsys.readouterr().out


def _settings_state():
    import numba
    from threadpoolctl import threadpool_info

    from fastcnn import registry, scoped_settings
    return (numba.get_num_threads(), [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"],
            registry.forced("conv"), registry.deterministic(), scoped_settings.current())


def test_bench_train_quick_writes_every_conv_path(tmp_path, capsys):
    before = _settings_state()
    assert cli.main(["bench", "train", "--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    assert _settings_state() == before  # --threads and each forced algorithm held inside the run only
    rows = tables.read_csv(tmp_path / "train.csv")
    assert [r["algo"] for r in rows] == [a.name for a in CONV.values() if a.available(np)]
    from fastcnn.bench import train as bench_train

    per_epoch = -(-60_000 // bench_train.BATCH)  # the bundled MNIST's training set, whole batches
    for r in rows:
        ms, steps = float(r["ms_per_step"]), int(r["steps_to_97"])
        assert ms > 0 and steps == bench_train.ASSUMED_STEPS_TO_97  # --quick assumes the reference count
        assert float(r["samples_per_s"]) == pytest.approx(bench_train.BATCH / (ms / 1e3), rel=1e-4)
        assert float(r["time_to_97_s"]) == pytest.approx(steps * ms / 1e3, rel=1e-4)
        assert r["verdict"] == ("PASS" if float(r["time_to_97_s"]) <= bench_train.LAB_LIMIT_S else "FAIL")
        assert float(r["s_per_epoch"]) == pytest.approx(ms / 1e3 * per_epoch, rel=1e-4)
    assert "numpy: " in (tmp_path / "train.md").read_text()
    assert "≤ 420 s" in capsys.readouterr().out


COLS = [("name", "name", ""), ("ms", "time ms", ".2f"), ("n", "count", ",d")]
ROWS = [{"name": "im2col", "ms": 1.234, "n": 1200}, {"name": "a|b", "ms": None, "n": 5}]


def test_markdown_table_for_a_fixed_input():
    md = tables.markdown(COLS, ROWS, title="T", header=["cpu: X"], notes=["- a note"])
    assert md == ("## T\n\n- cpu: X\n\n"
                  "| name | time ms | count |\n"
                  "|---|---:|---:|\n"
                  "| im2col | 1.23 | 1,200 |\n"
                  "| a\\|b | — | 5 |\n"
                  "\n- a note\n")


def test_text_and_csv_tables_for_a_fixed_input(tmp_path):
    assert tables.text(COLS, ROWS) == ("name    time ms  count\n"
                                       "------  -------  -----\n"
                                       "im2col     1.23  1,200\n"
                                       "a|b           —      5")
    path = tables.write_text(tmp_path / "t.csv", tables.csv_text(COLS, ROWS, ["cpu: X"]))
    assert path.read_text() == "# cpu: X\nname,ms,n\nim2col,1.234,1200\na|b,,5\n"
    assert tables.read_csv(path) == [{"name": "im2col", "ms": "1.234", "n": "1200"},
                                     {"name": "a|b", "ms": "", "n": "5"}]


def _vs_torch():
    return load_script("benchmarks/vs_torch.py", "fastcnn_vs_torch")


def test_bench_restores_settings_when_it_raises(tmp_path, monkeypatch, capsys):
    from fastcnn.bench import train as bench_train

    def broken(*a, **k):
        from fastcnn import registry
        assert registry.forced("conv") is None  # inside the command's scope, before any forcing
        raise ValueError("a benchmark broke")
    monkeypatch.setattr(bench_train, "run", broken)
    before = _settings_state()
    assert cli.main(["bench", "train", "--quick", "--threads", "1", "--out", str(tmp_path)]) == 2
    assert "a benchmark broke" in capsys.readouterr().err
    assert _settings_state() == before


def test_vs_torch_without_torch_says_what_to_install(monkeypatch, capsys):
    import os

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    env = dict(os.environ)
    assert _vs_torch().main(["--quick"]) == 2
    assert dict(os.environ) == env  # no thread variables written
    err = capsys.readouterr().err
    assert "pip install torch==2.13.0" in err and "pip install '.[bench]'" in err


@pytest.mark.parametrize("preset", ["lenet5", "compact"])
def test_vs_torch_copy_computes_the_same_function(preset):
    torch = pytest.importorskip("torch")
    from fastcnn import models

    model = models.build(preset).eval()
    copy = _vs_torch().torch_copy(model, torch).eval()
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(copy(torch.from_numpy(x)).detach().numpy(), model.forward(x), rtol=1e-4, atol=1e-5)


def test_library_loop_runs_the_readme_loop_in_a_fresh_process():
    """benchmarks/library_loop.py run: the README's loop, as a user runs it, prints its samples/s."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "library_loop.py"), "run", "--framework",
                          "fastcnn", "--model", "lenet5", "--batch", "32", "--steps", "3", "--warmup", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["framework"] == "fastcnn" and row["batch"] == 32 and row["samples_per_s"] > 0
