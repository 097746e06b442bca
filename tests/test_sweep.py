import csv

import pytest

from fastcnn import sweep


def test_trials_grid_random_and_errors():
    t = sweep.trials({"lr": "0.1,0.01", "hidden": [50, 100]})
    assert t == [{"lr": 0.1, "hidden": 50}, {"lr": 0.1, "hidden": 100}, {"lr": 0.01, "hidden": 50},
                 {"lr": 0.01, "hidden": 100}]
    r = sweep.trials({"lr": "0.1,0.01,0.001", "weight_decay": "0,1e-3"}, "random", 4, seed=1)
    assert len(r) == 4 and len({tuple(d.values()) for d in r}) == 4
    with pytest.raises(ValueError, match="search space is empty"):
        sweep.trials({})
    with pytest.raises(ValueError, match="--lr gives no values"):
        sweep.trials({"lr": ","})
    with pytest.raises(ValueError, match="--batch-size: 'x' is not an integer"):
        sweep.trials({"batch_size": "32,x"})
    with pytest.raises(ValueError, match="--lr: '-1' must be > 0"):
        sweep.trials({"lr": "-1"})
    with pytest.raises(ValueError, match="--trials"):
        sweep.trials({"lr": "0.1"}, "random")


def test_sweep_in_worker_processes(tmp_path, small_npz):
    data = small_npz(tmp_path / "mnist.npz", 800, 200)
    rows = sweep.run_sweep({"lr": "0.1,0.0001", "hidden": "16"}, tmp_path / "sw", workers=2, fraction=0.5,
                           model="mlp", optimizer="sgd", epochs=1, data_dir=str(data), threads=1)
    assert [r["lr"] for r in rows] == [0.1, 0.0001]  # sorted by validation accuracy, best first
    assert rows[0]["val_accuracy"] > rows[1]["val_accuracy"] and all(r["status"] == "completed" for r in rows)
    for r in rows:
        assert (tmp_path / "sw" / f"trial-{r['trial']:03d}" / "metrics.json").is_file()
    table = list(csv.DictReader(open(tmp_path / "sw" / "sweep.csv")))
    assert [t["rank"] for t in table] == ["1", "2"] and table[0]["lr"] == "0.1"
    md = (tmp_path / "sw" / "sweep.md").read_text().splitlines()
    assert md[0].startswith("| rank | trial | lr | hidden | val_accuracy") and "| 1 | " in md[2]


def test_sweep_failed_trial_is_a_row(tmp_path, small_npz):
    data = small_npz(tmp_path / "mnist.npz", 300, 100)
    rows = sweep.run_sweep({"hidden": "8"}, tmp_path / "sw", model="lenet5", epochs=1, data_dir=str(data))
    assert rows[0]["status"].startswith("error: ValueError: preset 'lenet5' has no hidden size")
