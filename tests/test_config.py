"""Feature settings from the recipe, the CLI and TOML; their checks; their record in metrics.json."""
import json

import numpy as np
import pytest

from fastcnn import models, optim
from fastcnn.cli import build_parser
from fastcnn.cli.train import train_settings
from fastcnn.config import TrainConfig
from fastcnn.data import Dataset, load_mnist
from fastcnn.files import load_npz
from fastcnn.train import Trainer


def test_features_are_off_unless_a_recipe_or_the_user_turns_them_on():
    c = TrainConfig(model="lenet5").resolved()
    assert (c.betas, c.ema, c.tta, c.augment, c.label_smoothing) == (None, 0.0, 0, "", 0.0)
    lb = TrainConfig(model="lab-best").resolved()
    assert lb.ema == 0.999 and lb.tta == 1 and lb.augment and lb.label_smoothing == 0.1
    off = TrainConfig(model="lab-best", ema=0, tta=0, augment="none", label_smoothing=0.0).resolved()
    assert (off.ema, off.tta, off.augment, off.label_smoothing) == (0, 0, "", 0.0)
    f = TrainConfig(model="record99").resolved()
    assert f.betas == (0.7, 0.9) and f.schedule == "onecycle" and f.epochs == 1 and f.batch_size == 256
    assert TrainConfig(model="record99", optimizer="sgd").resolved().betas is None  # not the recipe's optimizer
    f = TrainConfig(model="fast99").resolved()
    assert (f.tta, f.schedule, f.epochs, f.batch_size, f.pct_start, f.target_acc, f.label_smoothing, f.eval_every) \
        == (1, "onecycle", 2, 128, 0.15, None, 0.05, 0)  # a fixed schedule: no stop on the test set


def test_presets_fit_and_lab_best_has_batch_norm():
    assert models.build("lab-best").num_params() <= models.LAB_BUDGET
    assert any(type(l).__name__ == "BatchNorm2d" for l in models.build("lab-best").layers)
    assert models.build("record99").num_params() == 215194
    assert models.build("lenet5").num_params() == 44426
    assert models.build("fast99").num_params() == 44426 + 2 * (6 + 16)  # lenet5 + two batch norms
    assert sum(type(l).__name__ == "BatchNorm2d" for l in models.build("fast99").layers) == 2


def test_cli_and_toml_set_the_features(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('betas = [0.8, 0.95]\nschedule = "onecycle"\npct-start = 0.2\nema = 0.99\ntta = 2\n')
    args = build_parser().parse_args(["train", "--config", str(toml), "--div-factor", "10", "--tta",
                                      "--final-div-factor", "100", "--betas", "0.7,0.9"])
    given = train_settings(args)
    c = TrainConfig(**given).resolved()
    assert c.betas == (0.7, 0.9) and c.pct_start == 0.2 and c.div_factor == 10 and c.final_div_factor == 100
    assert c.ema == 0.99 and c.tta == 1  # --tta alone: 1 pixel, over the file's 2


@pytest.mark.parametrize("kw,msg", [
    (dict(betas="0.9"), "two numbers"), (dict(betas=[0.9, 1.2]), "two numbers"),
    (dict(betas=[0.9, 0.99], optimizer="sgd"), "apply to adam"),
    (dict(pct_start=0.3, schedule="cosine"), "apply to the onecycle"),
    (dict(schedule="onecycle", pct_start=1.5), "pct_start"),
    (dict(schedule="onecycle", div_factor=0), "div_factor"), (dict(ema=1.0), "ema is the decay"),
    (dict(tta=-1), "tta is the largest shift"), (dict(label_smoothing=1.0), "label smoothing"),
    (dict(augment="shift,translate"), "not both")])
def test_bad_feature_settings_are_clear_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(model="lenet5", **kw).resolved()


def test_betas_and_onecycle_arguments_reach_the_optimizer_and_schedule(tmp_path):
    d = load_mnist()
    small = Dataset(d.x_train[:512], d.y_train[:512], d.x_test[:100], d.y_test[:100], name="s")
    t = Trainer(TrainConfig(model="record99", betas=[0.8, 0.95], pct_start=0.25, div_factor=10.0,
                            final_div_factor=50.0, progress=False, out=str(tmp_path / "r")), data=small)
    assert isinstance(t.optimizer, optim.Adam) and t.optimizer.betas == (0.8, 0.95)
    s = t.schedule
    assert (s.pct_start, s.div_factor, s.final_div_factor) == (0.25, 10.0, 50.0)
    assert s.initial_lr == pytest.approx(0.01 / 10) and s.min_lr == pytest.approx(0.01 / 10 / 50)


@pytest.fixture(scope="module")
def small():
    d = load_mnist()
    return Dataset(d.x_train[:1024], d.y_train[:1024], d.x_test[:200], d.y_test[:200], name="mnist-small")


def test_ema_and_tta_in_a_run_evaluate_and_save_the_average_and_resume_exactly(tmp_path, small):
    kw = dict(model="lenet5", epochs=2, batch_size=128, progress=False, deterministic=True, ema=0.9, tta=1,
              augment="translate=2,rotate=5", label_smoothing=0.1)
    full = Trainer(TrainConfig(out=str(tmp_path / "full"), **kw), data=small)
    m = full.fit()
    f = json.loads((tmp_path / "full" / "metrics.json").read_text())["features"]
    assert f["ema"] == 0.9 and f["tta_pixels"] == 1 and f["augment"] == "translate=2,rotate=5"
    assert f["label_smoothing"] == 0.1 and f["batch_norm"] is None and f["schedule"]["name"] == "cosine"
    # model.npz holds the averaged weights; the model keeps training with the live ones
    saved = load_npz(tmp_path / "full" / "model.npz")
    for i, p in enumerate(full.model.parameters()):
        np.testing.assert_array_equal(saved[[k for k in saved if not k.startswith("__")][i]], full.ema.shadow[i])
    assert not np.array_equal(full.ema.shadow[0], full.model.parameters()[0].data)
    from fastcnn.inference import evaluate
    with full.ema.applied():
        ref = evaluate(full.model, small.x_test, small.y_test, tta=1)
        plain = evaluate(full.model, small.x_test, small.y_test)
    assert m["test_accuracy_tta"] == ref["accuracy"] and m["test_accuracy"] == plain["accuracy"]
    # a run cut by its time budget and resumed ends with the same live weights and average
    cut = Trainer(TrainConfig(out=str(tmp_path / "cut"), time_budget=1e-3, **kw), data=small)
    cut.fit()
    assert 0 < cut.state["step"] < 16
    r = Trainer.resume(tmp_path / "cut", data=small, time_budget=1e9)
    r.fit()
    for a, b in zip(r.model.parameters(), full.model.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-7)
    for a, b in zip(r.ema.shadow, full.ema.shadow):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_lab_best_records_batch_norm(tmp_path, small):
    t = Trainer(TrainConfig(model="lab-best", epochs=1, batch_size=256, progress=False, tta=0, deterministic=True,
                            out=str(tmp_path / "lb")), data=small)
    m = t.fit()
    assert m["features"]["batch_norm"] == ["BatchNorm2d#3", "BatchNorm2d#7"]
    assert m["features"]["schedule"]["pct_start"] == 0.3 and m["features"]["ema"] == 0.999


def test_summary_shows_lab_best_within_the_budget(capsys):
    from fastcnn import cli
    assert cli.main(["summary", "--model", "lab-best"]) == 0
    out = capsys.readouterr().out
    assert "total parameters: 166,202" in out and "lab-best fits the lab's budget" in out and "202,620" in out


def test_every_setting_is_one_field_the_command_line_and_toml_are_built_from(tmp_path):
    """A TrainConfig field is a `fastcnn train` option and a TOML key without being named again."""
    import dataclasses

    from fastcnn.toml_config import load_train_config

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    dests = {a.dest for a in train._actions} - {"help", "resume", "config", "overwrite"}
    assert dests == {n for n, f in fields.items() if f.metadata["cli"]}
    assert all(f.metadata["help"] for f in fields.values())
    settings = {n for n, f in fields.items() if not f.metadata["record"]}  # the record's facts are not settings
    toml = tmp_path / "all.toml"
    typed = {"bool": "true", "int": "1", "float": "1.0", "str": '"1"', "tuple": '"1"', "dict": "{}"}
    toml.write_text("".join(f"{n} = {typed[str(fields[n].type).split('|')[0].strip()]}\n"
                            for n in settings))  # every setting is a known key (values of its type)
    assert set(load_train_config(toml)) == settings
    toml.write_text('data_source = "bundled"\n')
    with pytest.raises(ValueError, match="unknown setting 'data_source'"):
        load_train_config(toml)


def test_command_line_defaults_never_override_the_config_file(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('backend = "auto"\nconv_algo = "im2col"\nseed = 3\n')
    given = train_settings(build_parser().parse_args(["train", "--config", str(toml), "--no-progress"]))
    assert given == {"backend": "auto", "conv_algo": "im2col", "seed": 3, "progress": False}


def test_momentum_is_a_setting_of_the_sgd_optimizers():
    args = build_parser().parse_args(["train", "--optimizer", "sgd", "--momentum", "0.5", "--model", "report-d"])
    c = TrainConfig(**train_settings(args)).resolved()
    assert c.momentum == 0.5
    from fastcnn import features
    opt = optim.make(c.optimizer, models.build("report-d").parameters(), c.lr, **features.optimizer_kwargs(c))
    assert isinstance(opt, optim.SGD) and opt.momentum == 0.5
    assert TrainConfig(model="report-e-mlp").resolved().momentum == 0.5  # its recipe's
    assert TrainConfig(model="report-e-cnn").resolved().momentum is None  # the optimizer's own 0.9
    with pytest.raises(ValueError, match="momentum applies to sgd"):
        TrainConfig(model="lenet5", optimizer="adam", momentum=0.9).resolved()
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        TrainConfig(model="lenet5", optimizer="momentum", momentum=1.5).resolved()
