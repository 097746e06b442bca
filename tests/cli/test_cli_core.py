"""The core commands: summary, predict, eval on a bare .npz, and their errors (exit code 2)."""
import numpy as np

from fastcnn import cli, models
from fastcnn.data import load_mnist, write_idx
from fastcnn.inference import predict_logits


def test_summary_reports_parameters_and_the_lab_budget(capsys):
    assert cli.main(["summary", "--model", "compact"]) == 0
    out = capsys.readouterr().out
    assert "total parameters: 20,994" in out
    assert "compact fits the lab's budget" in out and "202,620" in out


def test_unknown_model_is_a_clear_error(capsys):
    assert cli.main(["summary", "--model", "resnet50"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet50'" in err and "lenet5" in err


def test_predict_idx_and_npy_give_the_models_classes(tmp_path, capsys):
    model = models.build("lenet5", seed=3)
    model.save(tmp_path / "w.npz")
    x = load_mnist().x_test[:20]
    expected = predict_logits(model, x).argmax(axis=1)
    write_idx(tmp_path / "imgs.idx.gz", x)
    np.save(tmp_path / "imgs.npy", x)
    for src in ("imgs.idx.gz", "imgs.npy"):
        out = tmp_path / f"{src}.txt"
        assert cli.main(["predict", "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / src),
                         "--out", str(out)]) == 0
        assert [int(v) for v in out.read_text().split()] == expected.tolist()


def test_predict_rejects_images_of_the_wrong_type(tmp_path, capsys):
    models.build("lenet5").save(tmp_path / "w.npz")
    np.save(tmp_path / "bad.npy", np.zeros((2, 28, 28), np.float32))
    assert cli.main(["predict", "--weights", str(tmp_path / "w.npz"), "--input", str(tmp_path / "bad.npy")]) == 2
    assert "expected uint8 images" in capsys.readouterr().err


def test_eval_guesses_the_preset_of_a_bare_npz(tmp_path, capsys):
    models.build("compact", seed=1).save(tmp_path / "c.npz")
    assert cli.main(["eval", "--weights", str(tmp_path / "c.npz")]) == 0
    assert "compact: test accuracy" in capsys.readouterr().out
