import base64
import json
import re

import numpy as np
import pytest

from fastcnn import cli, models
from fastcnn.data import formats as F


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_npz):
    """A tiny trained run of report-d (922 parameters) on 1,000 images, 1 epoch."""
    from fastcnn.config import TrainConfig
    from fastcnn.train import Trainer

    d = tmp_path_factory.mktemp("cli")
    data = small_npz(d / "mnist.npz", 1000, 200)
    Trainer(TrainConfig(model="report-d", epochs=1, lr=0.05, data_dir=str(data), out=str(d / "run"),
                        progress=False, conv_algo="im2col")).fit()
    return d


def test_train_settings_merge_config_file(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('model = "mlp"\nepochs = 4\naugment = "shift"\n')
    args = cli.build_parser().parse_args(["train", "--config", str(p), "--epochs", "2", "--classes", "0,1,2",
                                          "--seed", "0"])
    from fastcnn.cli.train import train_settings
    given = train_settings(args)
    assert given == {"model": "mlp", "epochs": 2, "augment": "shift", "classes": "0,1,2", "seed": 0}


def test_eval_prints_and_writes_metrics(run, capsys):
    assert cli.main(["eval", "--weights", str(run / "run")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"report-d: test accuracy 0\.\d{4} on 200 images", out)
    assert "macro avg" in out and "confusion matrix" in out
    saved = json.loads((run / "run" / "eval_metrics.json").read_text())
    assert saved["n"] == 200 and sum(map(sum, saved["confusion_matrix"])) == 200
    acc = float(re.search(r"test accuracy (0\.\d+)", out).group(1))
    assert acc == pytest.approx(saved["accuracy"], abs=1e-4)


def test_predict_csv_writes_submission(run, tmp_path, capsys):
    x = np.load(run / "mnist.npz")["x_test"][:7]
    F.write_kaggle_csv(tmp_path / "test.csv", x)
    out = tmp_path / "submission.csv"
    assert cli.main(["predict", "--weights", str(run / "run"), "--csv", str(tmp_path / "test.csv"),
                    "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and [l.split(",")[0] for l in lines[1:]] == [str(i) for i in range(1, 8)]
    assert all(0 <= int(l.split(",")[1]) <= 9 for l in lines[1:])
    capsys.readouterr()
    assert cli.main(["predict", "--weights", str(run / "run")]) == 2
    assert re.search("fastcnn predict: error: .*--input IMAGES .* or --csv", capsys.readouterr().err)


def test_baseline_knn(run, capsys):
    assert cli.main(["baseline", "knn", "--data-dir", str(run / "mnist.npz"), "--k", "1", "--test-limit", "50"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"KNN \(k=1\) on 1,000 training images: test accuracy (0\.\d+) on 50 images in [\d.]+ s", out)
    assert m and float(m.group(1)) > 0.7


def test_report_html_is_self_contained(run):
    pytest.importorskip("matplotlib")
    assert cli.main(["report", str(run / "run")]) == 0
    html = (run / "run" / "report.html").read_text()
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) >= 8  # confusion, curves, misclassified, filters, input, 4 feature maps, linear weights
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    assert "src=\"http" not in html and "<link" not in html  # nothing outside the file
    for title in ("Configuration", "Final metrics", "precision, recall and F1", "Training curves",
                  "Misclassified test images", "First-layer filters", "Feature maps", "Linear-layer weights"):
        assert title in html
    # the result leads (accuracy, milestones, curves, confusion matrix); the configuration is folded last
    order = [html.index(t) for t in ("<h2>Result</h2>", "Time to each accuracy", "<h2>Training curves</h2>",
                                     "Confusion matrix", "<details>", "<h2>Configuration</h2>")]
    assert order == sorted(order) and html.index("<h2>Configuration</h2>") < html.index("</details>")
    assert (run / "run" / "report" / "confusion.png").is_file() and (run / "run" / "test_metrics.md").is_file()
