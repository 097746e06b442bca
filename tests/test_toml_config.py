import json

import numpy as np
import pytest

from fastcnn import toml_config
from fastcnn.config import TrainConfig
from fastcnn.train import Trainer


def test_toml_load_and_merge(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('model = "mlp"\nepochs = 2\n[train]\nlr = 0.05\nbatch-size = 64\nclasses = [0, 1, 2]\n')
    d = toml_config.load_train_config(p)
    assert d == {"model": "mlp", "epochs": 2, "lr": 0.05, "batch_size": 64, "classes": "0,1,2"}
    assert toml_config.merge(p, {"lr": 0.1, "epochs": None}) == {**d, "lr": 0.1}
    p.write_text("lr = 0.1\nlearning_rate = 3\n")
    with pytest.raises(ValueError, match="run.toml: unknown setting 'learning_rate'"):
        toml_config.load_train_config(p)
    p.write_text("lr = = 1\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        toml_config.load_train_config(p)
    with pytest.raises(FileNotFoundError, match="--config"):
        toml_config.load_train_config(tmp_path / "nope.toml")
    assert toml_config.dumps({"a": 1, "b": "x", "c": [1, 2], "d": None, "e": True}) == 'a = 1\nb = "x"\nc = [1, 2]\ne = true\n'


def test_config_checks_new_options():
    for kw, msg in (({"patience": 0}, "patience"), ({"classes": "3,3"}, "digit 3 twice"),
                    ({"augment": "spin"}, "unknown transform")):
        with pytest.raises(ValueError, match=msg):
            TrainConfig(model="mlp", **kw).resolved()


def test_early_stopping_keeps_best_and_classes(tmp_path, small_npz):
    data = small_npz(tmp_path / "mnist.npz", 600, 200)
    # lr so large that accuracy cannot keep improving: patience 1 stops it early
    cfg = TrainConfig(model="mlp", epochs=30, lr=5.0, optimizer="sgd", batch_size=50, patience=1, eval_every=2,
                      data_dir=str(data), classes="0,1,2", val_fraction=0.2, out=str(tmp_path / "run"), progress=False)
    t = Trainer(cfg)
    assert set(np.unique(t.data.y_train)) == {0, 1, 2} and set(np.unique(t.data.y_test)) == {0, 1, 2}
    try:
        m = t.fit()
    except Exception:  # a diverged run is also "no improvement"; the best checkpoint is what matters
        m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (tmp_path / "run" / "best.npz").is_file()
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    if m["status"] == "early_stopped":
        assert m["best_accuracy"] == max(r["val_accuracy"] for r in hist)
        assert hist[-1]["step"] < 30 * len(t.batches)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["classes"] == "0,1,2" and saved["patience"] == 1 and saved["lr"] == 5.0


def test_patience_with_sane_training_finishes_with_best(tmp_path, small_npz):
    data = small_npz(tmp_path / "mnist.npz", 600, 200)
    cfg = TrainConfig(model="mlp", epochs=1, patience=5, data_dir=str(data), val_fraction=0.2,
                      out=str(tmp_path / "run"), progress=False, eval_every=3)
    m = Trainer(cfg).fit()
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert m["best_accuracy"] == max(r["val_accuracy"] for r in hist[:-1] if "val_accuracy" in r) or \
        m["best_accuracy"] == max(r["val_accuracy"] for r in hist)
    assert m["best_checkpoint"] == "best.npz" and m["status"] == "completed"
