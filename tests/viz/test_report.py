import sys

import pytest

from fastcnn import models
from fastcnn.models import lab_reports


def test_presets_match_the_reports():
    presets = models.PRESETS
    counts = {n: presets[n][0]().num_params() for n in lab_reports.REPORTED}
    assert counts["report-a"] == 20994 and counts["report-b"] == 44426  # as REPORTS.md states
    # report D: conv 3@5×5 (78) + conv 3@3×3 (84) + linear 75→10 (760)
    assert counts["report-d"] == 78 + 84 + 760
    assert counts["report-c"] == (25 * 24 + 24) + (24 * 25 * 60 + 60) + (960 * 240 + 240) + (240 * 84 + 84) + 850
    assert counts["report-e-mlp"] == 784 * 1000 + 1000 + 10010
    assert lab_reports.PRESETS["report-c"][1].schedule_args == {"step_size": 10, "gamma": 0.4}
    assert set(lab_reports.REPORTED) == set(lab_reports.PRESETS) | {"report-a"}
    assert presets["report-a"][0] is models.compact  # the same network, report A's recipe


def test_recipe_schedule_args_reach_the_schedule(tmp_path):
    import numpy as np

    from fastcnn.config import TrainConfig
    from fastcnn.data import Dataset
    from fastcnn.train import Trainer

    x = np.zeros((64, 28, 28), np.uint8)
    ds = Dataset(x, np.arange(64) % 10, x[:8], np.arange(8))
    t = Trainer(TrainConfig(model="report-e-mlp", out=str(tmp_path / "r"), progress=False), data=ds)
    assert type(t.schedule).__name__ == "StepLR" and t.schedule.step_size == 2 and t.schedule.gamma == 0.1
    assert t.optimizer.lr == 0.1


def test_plots_without_matplotlib_say_what_to_install(monkeypatch):
    from fastcnn.viz import plots
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'fastcnn\[viz\]'"):
        plots.confusion_heatmap([[1]], "/tmp/never.png")
