import json

import numpy as np
import pytest

from fastcnn import metrics as M

Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
Y_PRED = [0, 1, 0, 1, 2, 2, 2, 0, 2, 0]


def test_confusion_matrix_by_hand():
    cm = M.confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[3, 1, 0],
                           [0, 1, 1],
                           [1, 0, 3]]
    assert M.confusion_matrix([1, 1], [1, 1], 4).shape == (4, 4)
    with pytest.raises(ValueError, match="labels"):
        M.confusion_matrix([0, 5], [0, 1], 3)


def test_precision_recall_f1_by_hand():
    r = M.classification_report(Y_TRUE, Y_PRED, 3)
    assert r["accuracy"] == pytest.approx(7 / 10)
    rows = {row["class"]: row for row in r["per_class"]}
    # class 0: tp 3, predicted 4, true 4 ; class 1: tp 1, pred 2, true 2 ; class 2: tp 3, pred 4, true 4
    assert rows[0]["precision"] == pytest.approx(3 / 4) and rows[0]["recall"] == pytest.approx(3 / 4)
    assert rows[1]["precision"] == pytest.approx(1 / 2) and rows[1]["recall"] == pytest.approx(1 / 2)
    assert rows[2]["precision"] == pytest.approx(3 / 4) and rows[2]["recall"] == pytest.approx(3 / 4)
    assert rows[2]["f1"] == pytest.approx(0.75)
    assert [rows[c]["support"] for c in range(3)] == [4, 2, 4]
    assert r["macro"]["precision"] == pytest.approx((0.75 + 0.5 + 0.75) / 3)
    assert r["macro"]["f1"] == pytest.approx((0.75 + 0.5 + 0.75) / 3)


def test_unequal_precision_recall_and_zero_division():
    # class 1 never predicted -> precision 0, recall 0, F1 0; class 0: P = 2/3, R = 1
    r = M.classification_report([0, 0, 1], [0, 0, 0], 2)
    rows = {row["class"]: row for row in r["per_class"]}
    assert rows[0]["precision"] == pytest.approx(2 / 3) and rows[0]["recall"] == 1.0
    assert rows[0]["f1"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    assert rows[1] == {"class": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # restricted to classes: macro averages only those
    r2 = M.classification_report([0, 0, 1], [0, 0, 0], 10, classes=[0])
    assert r2["macro"]["recall"] == 1.0 and len(r2["per_class"]) == 1


def test_table_and_files(tmp_path):
    r = M.classification_report(Y_TRUE, Y_PRED, 3)
    text = M.format_table(r)
    assert "macro avg" in text and "0.7500" in text and "accuracy 0.7000 on 10 images" in text
    md = M.format_table(r, markdown=True)
    assert md.startswith("| class | precision | recall | F1 | support |")
    paths = M.write_report(r, tmp_path, prefix="eval")
    assert sorted(p.name for p in paths) == ["eval_confusion.csv", "eval_metrics.csv", "eval_metrics.json",
                                             "eval_metrics.md"]
    assert json.loads((tmp_path / "eval_metrics.json").read_text())["confusion_matrix"][2] == [1, 0, 3]
    lines = (tmp_path / "eval_metrics.csv").read_text().splitlines()
    assert lines[0] == "class,precision,recall,f1,support"
    assert lines[2] == "1,0.500000,0.500000,0.500000,2"
    assert (tmp_path / "eval_confusion.csv").read_text().splitlines()[1] == "0,3,1,0"
    assert "true\\pred" in M.format_confusion(np.array(r["confusion_matrix"]))
