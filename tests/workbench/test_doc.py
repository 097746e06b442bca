"""docs/your-own-layer.md runs as written: every fenced block, in order, in an empty folder.

``python`` blocks headed ``# file: NAME.py`` are appended to that file (the student saving
them); other ``python`` blocks are executed; each ``$ fastcnn ...`` line of a ``console`` block
runs the command in-process and must exit 0 (or the code its ``# exits N`` comment says).
``text`` blocks are output and are not run. The data is a 1,000-image MNIST ($FASTCNN_DATA),
so the walk-through's training commands take seconds.
"""
import re
import shlex
from pathlib import Path

from fastcnn import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "your-own-layer.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks():
    return BLOCK.findall(DOC.read_text())


def test_the_doc_has_the_walk_through():
    kinds = [k for k, _ in blocks()]
    assert kinds.count("python") >= 4 and kinds.count("console") >= 5
    text = DOC.read_text()
    for cmd in ("fastcnn check", "fastcnn bench conv --quick --algo", "fastcnn train --model", "fastcnn report runs/"):
        assert cmd in text, cmd


def test_every_code_block_runs(tmp_path, monkeypatch, small_idx, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASTCNN_DATA", str(small_idx))
    ns = {"__name__": "doc"}
    ran = []
    for kind, code in blocks():
        if kind == "python":
            first, _, rest = code.partition("\n")
            m = re.match(r"# file: (\S+)$", first)
            if m:
                with open(m.group(1), "a") as f:
                    f.write(rest)
            else:
                exec(compile(code, str(DOC), "exec"), ns)
            ran.append(kind)
        elif kind == "console":
            for line in code.splitlines():
                if not line.startswith("$ "):
                    continue
                cmd, _, comment = line[2:].partition("#")
                m = re.search(r"exits (\d)", comment)
                argv = shlex.split(cmd)
                assert argv[0] == "fastcnn", line
                rc = cli.main(argv[1:] + (["--no-progress"] if argv[1] == "train" else []))
                out = capsys.readouterr()
                assert rc == (int(m.group(1)) if m else 0), f"{line}\n{out.out[-3000:]}\n{out.err[-3000:]}"
                ran.append(argv[1])
    assert {"check", "bench", "summary", "train", "eval", "report"} <= set(ran)
    assert (tmp_path / "runs" / "mine" / "model_source.json").is_file()
    page = (tmp_path / "runs" / "comparison.html").read_text()
    assert "mylayers.py:my_net" in page and "mylayers.py:builtin_net" in page
    assert "11,738" in (tmp_path / "runs" / "comparison.md").read_text()
