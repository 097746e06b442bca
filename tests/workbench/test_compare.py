"""`fastcnn report RUN RUN ...`: one page comparing runs (table and curves overlaid), written atomically."""
import base64
import re

import pytest

from fastcnn import cli, files
from fastcnn.viz import compare

pytest.importorskip("matplotlib")


def _run(d, model, params, acc, t97, t99, seconds, features=None):
    """A run directory as fastcnn train leaves it (config.json, metrics.json, history.json)."""
    d.mkdir(parents=True)
    ms = {k: {"train_seconds": v, "step": 100} for k, v in (("0.97", t97), ("0.99", t99)) if v is not None}
    hist = [{"step": 50 * i, "epoch": i / 2, "train_seconds": seconds * i / 4, "loss": 0.5 / i,
             "train_accuracy": None, "test_accuracy": acc - 0.01 * (4 - i), "test_loss": 0.2 / i, "lr": 1e-3}
            for i in range(1, 5)]
    files.save_json(d / "config.json", {"model": model})
    files.save_json(d / "history.json", hist)
    files.save_json(d / "metrics.json", {"model": model, "params": params, "test_accuracy": acc, "epochs": 2.0,
                                         "train_seconds": seconds, "status": "completed", "milestones": ms,
                                         "features": features or {"schedule": {"name": "cosine"}}})
    return d


@pytest.fixture
def two_runs(tmp_path):
    a = _run(tmp_path / "a" / "run", "/home/me/mylayers.py:my_net", 11738, 0.9712, 40.5, None, 95.0)
    b = _run(tmp_path / "b" / "run", "lab-best", 166202, 0.9931, 12.25, 30.5, 210.0,
             {"ema": 0.999, "tta_pixels": 1, "schedule": {"name": "onecycle"}})
    return a, b


def test_two_runs_on_one_page(tmp_path, two_runs, capsys):
    out = tmp_path / "cmp" / "page.html"
    assert cli.main(["report", *map(str, two_runs), "--out", str(out)]) == 0
    assert "comparison of 2 runs written to" in capsys.readouterr().out
    page = out.read_text()
    for head in ("model", "parameters", "test accuracy", "time to 97 % (s)", "time to 99 % (s)",
                 "training time (s)", "features"):
        assert f"<th>{head}</th>" in page, head
    # labels made distinct from the parent folders; the user's network by its file name
    assert "<td>a/run</td><td>mylayers.py:my_net</td><td>11,738</td><td>fits</td><td>0.9712</td>" in page
    assert "<td>b/run</td><td>lab-best</td><td>166,202</td><td>fits</td><td>0.9931</td>" in page
    assert "<td>40.50</td><td>—</td><td>95.0</td>" in page  # 99 % never reached: —
    assert "ema 0.999; tta_pixels 1; schedule onecycle" in page
    assert re.search(r"most accurate: <b>b/run</b>.*first to 97 %: <b>b/run</b> after 12.25 s", page, re.S)
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 1 and base64.b64decode(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src=\"http" not in page and "<link" not in page
    md = (tmp_path / "cmp" / "page.md").read_text()
    assert "| a/run | mylayers.py:my_net | 11,738 |" in md
    assert (tmp_path / "cmp" / "page.csv").is_file() and (tmp_path / "cmp" / "page_curves.png").is_file()


def test_a_failed_write_keeps_the_old_page(tmp_path, two_runs, monkeypatch):
    out = tmp_path / "page.html"
    out.write_text("the old page")
    monkeypatch.setattr(files.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        compare.build_comparison(two_runs, out)
    assert out.read_text() == "the old page" and not list(tmp_path.glob(".page.html.*"))


def test_bad_input(tmp_path, two_runs, capsys):
    assert cli.main(["report", str(two_runs[0]), str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["report", str(two_runs[0]), str(tmp_path / "empty")]) == 2
    assert "is not a fastcnn run directory" in capsys.readouterr().err
    assert cli.main(["report", *map(str, two_runs), "--out", str(tmp_path / "x.txt")]) == 2
    assert "an .html file" in capsys.readouterr().err


def test_an_unfinished_run_is_shown_from_its_history(tmp_path, two_runs):
    (two_runs[1] / "metrics.json").unlink()
    row = compare.run_row(two_runs[1], "b")
    assert row["status"].startswith("no metrics.json") and row["test_accuracy"] == pytest.approx(0.9931)


def test_without_matplotlib_it_says_what_to_install(tmp_path, two_runs, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["report", *map(str, two_runs), "--out", str(tmp_path / "p.html")]) == 2
    assert "pip install 'fastcnn[viz]'" in capsys.readouterr().err
    assert not (tmp_path / "p.html").exists()
