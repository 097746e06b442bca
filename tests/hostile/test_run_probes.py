"""Hostile probes of a run's life (issue 22, items 4-10, 12, 14, 15): resume, run directories,
checkpoints, damaged files, divergence, Ctrl-C, a full disk, kill -9 and strict JSON.

Each probe is a row of a table where it can be: what is done -> the exit code and a fragment of
the one-line message. Runs are tiny (report-d, 922 parameters, on 400 images, im2col), so the
module takes seconds.
"""
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastcnn import cli, files, rundir
from fastcnn.config import RESUMABLE, TrainConfig
from fastcnn.data import load_mnist, write_idx
from fastcnn.train import Trainer, TrainingError


def _strict_json(path):
    """Parse ``path`` as strict JSON: NaN, Infinity and -Infinity are errors."""
    def reject(name):
        raise ValueError(f"{path.name}: non-standard JSON constant {name}")
    return json.loads(path.read_text(), parse_constant=reject)


def _hashes(folder) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _step_of(path) -> int:
    with np.load(path, allow_pickle=False) as z:
        return int(z["__step__"])


@pytest.fixture(scope="module")
def data(tmp_path_factory, small_npz):
    return small_npz(tmp_path_factory.mktemp("data") / "d.npz", 400, 100)


def _train_argv(data, out, *extra):
    return ["train", "--model", "report-d", "--epochs", "1", "--lr", "0.05", "--data-dir", str(data),
            "--no-progress", "--conv-algo", "im2col", "--eval-every", "3", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def done(tmp_path_factory, data):
    """A finished run (8 steps, evaluated every 3) to copy."""
    out = tmp_path_factory.mktemp("done") / "run"
    assert cli.main(_train_argv(data, out)) == 0
    return out


@pytest.fixture
def run(done, tmp_path):
    """A copy of the finished run, free to damage."""
    return shutil.copytree(done, tmp_path / "run")


# --- items 5 and 6: a resume is the record plus the few settings allowed to change ------------
@pytest.mark.parametrize("extra,says", [
    (["--batch-size", "512"], "--batch-size cannot change when resuming"),
    (["--data-dir", "small"], "--data-dir cannot change when resuming"),
    (["--lr", "0.0001"], "--lr cannot change when resuming"),
    (["--out", "elsewhere"], "--out cannot change when resuming"),
    (["--model", "lenet5", "--seed", "3"], "--model, --seed cannot change"),
    (["--schedule", "cosine"], "--schedule cannot change"),
    (["--overwrite"], "--overwrite starts a new run"),
    (["--config", "CONFIG"], "--config cannot be used with --resume"),
    (["--epochs", "0"], "epochs must be an integer ≥ 1"),
    (["--target-acc", "97"], "target accuracy is a fraction"),
])
def test_a_failed_resume_changes_nothing(run, tmp_path, extra, says, capsys):
    (tmp_path / "c.toml").write_text("lr = 0.1\n")
    extra = [str(tmp_path / "c.toml") if a == "CONFIG" else a for a in extra]
    before = _hashes(run)
    assert cli.main(["train", "--resume", str(run), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastcnn train: error: ") and says in err and err.count("\n") == 1, err
    assert _hashes(run) == before
    assert cli.main(["train", "--resume", str(run), "--epochs", "2"]) == 0  # the run still resumes


def test_resume_records_what_it_uses(run, capsys):
    """The settings a resumed run goes on with are the ones config.json says (item 6)."""
    cfg = json.loads((run / "config.json").read_text())
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--time-budget", "100"]) == 0
    after = json.loads((run / "config.json").read_text())
    assert after == {**cfg, "epochs": 2, "time_budget": 100.0, "out": str(run)}  # (the run was copied here)
    hist = json.loads((run / "history.json").read_text())
    assert {h["lr"] for h in hist} == {cfg["lr"]} and hist[-1]["step"] == 16
    assert set(RESUMABLE) == {"epochs", "time_budget", "target_acc", "threads", "progress", "profile", "backend"}
    train = cli.build_parser()._subparsers._group_actions[0].choices["train"]
    says = next(a.help for a in train._actions if a.dest == "resume")
    assert all(o in says for o in ("--epochs", "--time-budget", "--target-acc", "--threads", "--no-progress"))


def test_the_record_is_resolved_once_and_reads_back_equal(tmp_path):
    """config.json is the whole record: the recipe applied (schedule_args too) and read back
    without consulting the preset (the Trainer builds its schedule from it)."""
    from fastcnn.config import RunRecord, record_from_dict

    for model in ("report-a", "report-c", "fast99", "record99", "lab-best"):
        rec = TrainConfig(model=model).resolved()
        back = record_from_dict(json.loads(files.json_text(rec.to_dict())))
        assert isinstance(back, RunRecord) and back == rec, model
    assert TrainConfig(model="report-c").resolved().schedule_args == {"step_size": 10, "gamma": 0.4}
    assert TrainConfig(model="report-c", schedule="cosine").resolved().schedule_args == {}
    assert TrainConfig(model="fast99").resolved().schedule_args == {"pct_start": 0.15}


def test_a_resume_never_consults_the_preset(run, monkeypatch):
    """The Trainer builds every part from the record: a recipe that changed (here: one that cannot be
    read at all) does not change a resumed run."""
    from fastcnn import models

    def no_recipe(name):
        raise AssertionError(f"the recipe of {name} was consulted")
    monkeypatch.setattr(models, "recipe", no_recipe)
    assert cli.main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    with pytest.raises(AssertionError, match="consulted"):
        TrainConfig(model="report-d").resolved()  # (the one place that reads it)


# --- item 9: the data source is recorded absolute ---------------------------------------
def test_relative_data_dir_is_recorded_absolute_and_eval_works_elsewhere(data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(data.parent)
    assert cli.main(_train_argv(data.name, tmp_path / "run")) == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["data_dir"] == str(data) and cfg["data_source"] == "data_dir"
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.main(["eval", "--weights", "run"]) == 0
    assert "on 100 images" in capsys.readouterr().out


def test_a_run_on_given_arrays_records_them_as_such(tmp_path, data):
    from fastcnn.data.formats import load_data

    out = tmp_path / "run"
    Trainer(TrainConfig(model="report-d", epochs=1, progress=False, conv_algo="im2col", out=str(out)),
            data=load_data(data)).fit()
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["data_source"], cfg["data_dir"]) == ("arrays", None)
    assert cli.main(["eval", "--weights", str(out), "--data-dir", str(data)]) == 0


def test_data_from_fastcnn_data_is_recorded_and_bundled_stays_bundled(tmp_path, monkeypatch, capsys):
    ds = load_mnist()
    idx = tmp_path / "idx"
    for name, a in (("train-images-idx3-ubyte", ds.x_train[:300]), ("train-labels-idx1-ubyte", ds.y_train[:300]),
                    ("t10k-images-idx3-ubyte", ds.x_test[:70]), ("t10k-labels-idx1-ubyte", ds.y_test[:70])):
        write_idx(idx / name, a)
    monkeypatch.setenv("FASTCNN_DATA", str(idx))
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "report-d", "--epochs", "1", "--no-progress", "--conv-algo", "im2col",
                     "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data_source"] == "FASTCNN_DATA" and cfg["data_dir"] == str(idx)
    monkeypatch.delenv("FASTCNN_DATA")
    capsys.readouterr()
    assert cli.main(["eval", "--weights", str(out)]) == 0
    assert "on 70 images" in capsys.readouterr().out  # not the bundled MNIST's 10,000
    # a run on the bundled MNIST is evaluated on it, whatever FASTCNN_DATA says later
    rec = TrainConfig(model="report-d").resolved()
    assert (rec.data_source, rec.data_dir) == ("bundled", None)
    monkeypatch.setenv("FASTCNN_DATA", str(idx))
    assert len(rundir.load_data_of(rec.to_dict()).y_test) == 10000


# --- item 7: a run directory holds one run, and one process ------------------------------------
def test_a_directory_holding_a_run_needs_overwrite(run, data, capsys):
    (run / "best.npz").write_bytes((run / "model.npz").read_bytes())  # a stale file of the old run
    before = _hashes(run)
    assert cli.main(_train_argv(data, run)) == 2
    assert "already holds a run" in capsys.readouterr().err and _hashes(run) == before
    assert cli.main(_train_argv(data, run, "--overwrite")) == 0
    assert not (run / "best.npz").exists()  # the old run's files went first


@pytest.mark.parametrize("extra,says", [
    (["--overwrite", "--lr", "-1"], "learning rate must be > 0"),
    (["--overwrite", "--schedule", "step", "--pct-start", "0.2"], "apply to the onecycle schedule"),
    (["--overwrite", "--data-dir", "no/such/dir"], "no/such/dir"),
])
def test_overwrite_with_bad_settings_keeps_the_old_run(run, extra, says, capsys):
    """Everything is checked before the old run's files go."""
    before = _hashes(run)
    assert cli.main(_train_argv("unused", run, *extra)) == 2
    assert says in capsys.readouterr().err
    assert _hashes(run) == before


def test_two_processes_cannot_share_a_run_directory(tmp_path, data, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with rundir.locked(out):  # another training holds it
        assert cli.main(_train_argv(data, out)) == 2
    assert "in use by another fastcnn process" in capsys.readouterr().err
    assert not rundir.holds_run(out)


def test_the_lock_goes_with_a_killed_process(tmp_path, data):
    out = tmp_path / "run"
    out.mkdir()
    code = f"from fastcnn import rundir; import time\nwith rundir.locked({str(out)!r}):\n print('held', flush=True); time.sleep(60)"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(rundir.RunDirError, match="in use"), rundir.locked(out):
            pass
    finally:
        p.kill()  # kill -9
        p.wait()
    with rundir.locked(out):
        pass


# --- item 8: a checkpoint is one unit ---------------------------------------------------------
class _Full:
    """np.savez that fails with ENOSPC from its ``n``-th call on (a disk that fills up)."""

    def __init__(self, n):
        self.n, self.calls, self.real = n, 0, np.savez

    def __call__(self, f, **arrays):
        self.calls += 1
        if self.calls >= self.n:
            f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(f, **arrays)


def test_a_full_disk_mid_checkpoint_keeps_the_last_whole_one(run, monkeypatch, capsys):
    before = _hashes(run)
    monkeypatch.setattr(np, "savez", _Full(2))  # model.npz is written, state.npz is not
    assert cli.main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "state.npz" in err and "disk is full" in err and err.count("\n") == 1
    assert _hashes(run) == before  # nothing replaced, no temporary file left


def test_a_full_disk_later_in_a_run_leaves_a_matching_pair(run, monkeypatch, capsys):
    # the resume's first checkpoint (step 8) and the one of step 9 are written; step 12's model.npz fails
    monkeypatch.setattr(np, "savez", _Full(5))
    assert cli.main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    m = _strict_json(run / "metrics.json")
    assert m["status"] == "failed" and "model.npz" in m["error"] and "step 9" in m["error"]
    assert _step_of(run / "model.npz") == _step_of(run / "state.npz") == m["steps"] == 9
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert cli.main(["train", "--resume", str(run), "--epochs", "2"]) == 0


def test_write_group_replaces_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    files.write_group([(a, lambda f: f.write(b"1")), (b, lambda f: f.write(b"1"))])

    def fail(f):
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(files.WriteError, match=r"cannot write .*b\.txt: No space left on device"):
        files.write_group([(a, lambda f: f.write(b"2")), (b, fail)])
    assert a.read_bytes() == b.read_bytes() == b"1" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


class _Killed(BaseException):
    """Stands for kill -9: nothing after it runs (no except, no finally that catches it)."""


def test_killed_between_renames_is_detected_and_repaired_by_resume(run, monkeypatch, capsys):
    real = os.replace
    seen = []

    def replace(src, dst):  # killed just before the second checkpoint's state.npz is renamed
        if str(dst).endswith("state.npz"):
            seen.append(dst)
            if len(seen) == 2:
                raise _Killed
        return real(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(_Killed):
        cli.main(["train", "--resume", str(run), "--epochs", "2"])
    monkeypatch.undo()
    assert [p.name for p in run.iterdir() if p.name.startswith(".state.npz.")]  # the killed writer's file
    assert _step_of(run / "model.npz") != _step_of(run / "state.npz")
    capsys.readouterr()
    assert cli.main(["eval", "--weights", str(run)]) == 2
    err = capsys.readouterr().err
    assert "model.npz (step 9) and state.npz (step 8) are not of one checkpoint" in err and "--resume" in err
    assert cli.main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # removed at the start
    assert _step_of(run / "model.npz") == _step_of(run / "state.npz") == 16
    assert cli.main(["eval", "--weights", str(run)]) == 0


def test_a_resumed_run_stopped_later_does_not_keep_the_old_metrics(run, monkeypatch):
    assert _strict_json(run / "metrics.json")["status"] == "completed"
    import fastcnn.train as T
    real, calls = T.train_step, []

    def step(*a, **k):
        calls.append(1)
        if len(calls) == 5:
            raise _Killed
        return real(*a, **k)
    monkeypatch.setattr(T, "train_step", step)
    with pytest.raises(_Killed):
        cli.main(["train", "--resume", str(run), "--epochs", "2"])
    m = _strict_json(run / "metrics.json")
    assert m["status"] == "running" and m["steps"] == 12  # the checkpoint of step 12, not "completed" at 8


# --- item 4: only finite checkpoints, and readers refuse weights that are not -----------------
DIVERGE = ("--model", "lenet5", "--optimizer", "sgd", "--lr", "1e4", "--batch-size", "50")


def test_divergence_keeps_a_finite_checkpoint(tmp_path, data, capsys):
    out = tmp_path / "run"
    assert cli.main(_train_argv(data, out, *DIVERGE)) == 2
    assert "at step" in capsys.readouterr().err
    for f in ("model.npz", "state.npz"):
        assert all(np.isfinite(v).all() for v in files.load_npz(out / f).values() if v.dtype.kind == "f"), f
    m = _strict_json(out / "metrics.json")
    assert m["status"] == "diverged" and m["steps"] == _step_of(out / "model.npz")


def test_a_schedule_starting_at_minus_infinity_is_not_divergence(tmp_path, data):
    """ReduceLROnPlateau's best is -inf until its first step (the end of the first epoch)."""
    out = tmp_path / "run"
    assert cli.main(_train_argv(data, out, "--schedule", "plateau", "--epochs", "2", "--time-budget", "0.01")) == 0
    assert cli.main(["train", "--resume", str(out), "--time-budget", "100"]) == 0
    assert _strict_json(out / "metrics.json")["status"] == "completed"


def test_a_non_finite_buffer_is_divergence_not_a_checkpoint(tmp_path, data):
    """A batch-norm running variance of inf (the loss may still be finite) is not saved."""
    out = tmp_path / "run"
    t = Trainer(TrainConfig(model="compact", epochs=1, batch_size=100, progress=False, conv_algo="im2col",
                            data_dir=str(data), out=str(out), eval_every=2))
    t.fit()
    before = _hashes(out)
    bn = next(l for l in t.model.layers if hasattr(l, "running_var"))
    bn.running_var[0] = np.inf
    with pytest.raises(TrainingError, match=r"running_var' holds NaN or infinity"):
        t.checkpoint()
    after = _hashes(out)
    assert {k: v for k, v in after.items() if k != "metrics.json"} == \
        {k: v for k, v in before.items() if k != "metrics.json"}
    assert _strict_json(out / "metrics.json")["status"] == "diverged"


@pytest.mark.parametrize("argv,needs,where", [
    (["eval", "--weights", "W"], None, "run"), (["eval", "--weights", "W"], None, "npz"),
    (["predict", "--weights", "W", "--input", "X"], None, "run"),
    (["predict", "--weights", "W", "--input", "X"], None, "npz"),
    (["export", "--weights", "W", "--onnx", "O"], None, "run"), (["export", "--weights", "W", "--onnx", "O"], None, "npz"),
    (["report", "W"], "matplotlib", "run"),  # (report takes a run directory only)
])
def test_readers_refuse_non_finite_weights(run, tmp_path, argv, needs, where, capsys):
    if needs:
        pytest.importorskip(needs)
    w = files.load_npz(run / "model.npz")
    key = next(k for k in w if k.endswith("weight"))
    w[key][0] = np.nan
    files.save_npz(run / "model.npz", w)
    shutil.copy(run / "model.npz", tmp_path / "bad.npz")
    np.save(tmp_path / "x.npy", load_mnist().x_test[:3])
    path = run if where == "run" else tmp_path / "bad.npz"
    argv = [str(path) if a == "W" else str(tmp_path / "x.npy") if a == "X" else str(tmp_path / "m.onnx")
            if a == "O" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "model.npz" in err or "bad.npz" in err
    assert f"tensor '{key}' holds NaN" in err and err.count("\n") == 1


# --- item 12 (damaged files) and item 14 (exit codes) ------------------------------------------
@pytest.mark.parametrize("damage,argv,says", [
    ("config_list", ["train", "--resume", "R"], "config.json is damaged: expected a JSON object"),
    ("config_list", ["eval", "--weights", "R"], "config.json is damaged"),
    ("config_text", ["eval", "--weights", "R"], "config.json is damaged: not valid JSON"),
    ("config_text", ["train", "--resume", "R"], "config.json is damaged: not valid JSON"),
    ("config_bad_value", ["train", "--resume", "R"], "config.json is not a run's record"),
    ("state_no_loop", ["train", "--resume", "R"], "state.npz is not a training checkpoint: it has no 'loop'"),
    ("state_text", ["train", "--resume", "R"], "state.npz is not a fastcnn checkpoint"),
    ("state_position", ["train", "--resume", "R"], "does not fit the data's"),
    ("state_missing", ["train", "--resume", "R"], "state.npz is missing"),
])
def test_damaged_run_files_are_named(run, damage, argv, says, capsys):
    if damage == "config_list":
        (run / "config.json").write_text("[1, 2]\n")
    elif damage == "config_text":
        (run / "config.json").write_text('{"model": "report-d",')
    elif damage == "config_bad_value":
        cfg = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**cfg, "lr": "abc"}))
    elif damage == "state_no_loop":
        st = files.load_npz(run / "state.npz")
        del st["loop"]
        files.save_npz(run / "state.npz", st)
    elif damage == "state_text":
        (run / "state.npz").write_text("not a zip")
    elif damage == "state_position":
        st = files.load_npz(run / "state.npz")
        loop = json.loads(str(st["loop"]))
        loop["state"]["step_in_epoch"] = 184
        st["loop"] = np.array(json.dumps(loop))
        files.save_npz(run / "state.npz", st)
    elif damage == "state_missing":
        os.remove(run / "state.npz")
    before = _hashes(run)
    assert cli.main([str(run) if a == "R" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1, err
    assert _hashes(run) == before


def _interrupt_at(monkeypatch, n):
    import fastcnn.train as T
    real, calls = T.train_step, []

    def step(*a, **k):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(T, "train_step", step)


def test_ctrl_c_saves_the_run_and_exits_130(tmp_path, data, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, 5)
    assert cli.main(_train_argv(data, out)) == 130
    assert "Traceback" not in capsys.readouterr().err
    m = _strict_json(out / "metrics.json")
    assert m["status"] == "interrupted" and m["steps"] == 4 == _step_of(out / "state.npz")
    hist = _strict_json(out / "history.json")
    assert hist[-1]["step"] == 4 and hist[-1]["train_accuracy"] is None  # stopped between evaluations
    monkeypatch.undo()
    assert cli.main(["train", "--resume", str(out)]) == 0
    assert _strict_json(out / "metrics.json")["status"] == "completed"


@pytest.mark.parametrize("where", ["load_data", "_warmup", "write_group"])
def test_ctrl_c_at_start_up_or_in_the_final_save(tmp_path, data, monkeypatch, capsys, where):
    import fastcnn.train as T
    out = tmp_path / "run"
    if where == "write_group":  # the final save: the checkpoint of step 3 and the record stay whole
        real, calls = files.write_group, []

        def group(items):
            calls.append(1)
            if len(calls) == 5:  # start, evaluations at steps 3, 6 and 8, then the final save
                raise KeyboardInterrupt
            return real(items)
        monkeypatch.setattr(files, "write_group", group)
    else:
        def stop(*a, **k):
            raise KeyboardInterrupt
        monkeypatch.setattr(T, where, stop) if where == "load_data" else monkeypatch.setattr(T.Trainer, where, stop)
    assert cli.main(_train_argv(data, out)) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("interrupted" in err)
    if where == "load_data":
        assert not out.exists()
        return
    m = _strict_json(out / "metrics.json")
    assert _step_of(out / "model.npz") == _step_of(out / "state.npz") == m["steps"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert m["status"] in ("interrupted", "running")


# --- item 10: every JSON file is strict ---------------------------------------------------------
def test_every_json_file_of_every_kind_of_run_is_strict(tmp_path, data, monkeypatch, capsys):
    runs = {"normal": _train_argv(data, tmp_path / "normal", "--log-every", "50", "--patience", "9"),
            "diverged": _train_argv(data, tmp_path / "diverged", *DIVERGE)}
    assert cli.main(runs["normal"]) == 0
    assert cli.main(runs["diverged"]) == 2
    _interrupt_at(monkeypatch, 5)
    assert cli.main(_train_argv(data, tmp_path / "interrupted")) == 130
    monkeypatch.undo()
    assert cli.main(["eval", "--weights", str(tmp_path / "normal")]) == 0
    hist = _strict_json(tmp_path / "normal" / "history.json")
    assert hist[0]["loss"] is None  # evaluated before the first logged loss: null, not NaN
    found = list(tmp_path.rglob("*.json"))
    assert len(found) >= 10
    for p in found:
        _strict_json(p)
    for p in tmp_path.rglob("state.npz"):  # the loop record inside the checkpoint too
        loop = str(files.load_npz(p)["loop"])
        json.loads(loop, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def test_json_text_writes_missing_values_as_null(tmp_path):
    doc = {"a": float("nan"), "b": [np.float32("inf"), -np.inf, 1.5], "c": np.arange(2), "d": (np.int64(3),)}
    files.save_json(tmp_path / "x.json", doc)
    assert _strict_json(tmp_path / "x.json") == {"a": None, "b": [None, None, 1.5], "c": [0, 1], "d": [3]}


def test_no_json_is_written_around_the_strict_writer():
    """Every JSON document the package writes goes through files.json_text."""
    import pathlib

    import fastcnn
    root = pathlib.Path(fastcnn.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "files.py" and ("json.dump(" in p.read_text() or "json.dumps(" in p.read_text())]
    assert offenders == []


def test_leftover_temporary_files_are_removed_at_the_next_start(run):
    for name in (".state.npz.abc123.tmp", ".model.npz.x.tmp", ".metrics.json.y.tmp"):
        (run / name).write_bytes(b"half")
    (run / ".mine.tmp").write_bytes(b"not ours")
    assert cli.main(["train", "--resume", str(run)]) == 0
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [".mine.tmp"]


def test_python_dash_m_ctrl_c_at_start_up_exits_130_without_a_traceback(tmp_path):
    """A real SIGINT while the command starts (the process is told to interrupt itself)."""
    code = textwrap.dedent("""
        import os, signal, sys
        import fastcnn.cli as c
        import fastcnn.train as T
        def load(*a, **k):
            os.kill(os.getpid(), signal.SIGINT)
        T.load_data = load
        sys.exit(c.main(["train", "--model", "report-d", "--no-progress", "--out", sys.argv[1]]))
    """)
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 130 and "Traceback" not in r.stderr and "interrupted" in r.stderr
    assert not (tmp_path / "run").exists()


def test_a_run_saved_before_records_and_whole_checkpoints_still_resumes(run):
    """config.json without schedule_args/data_source, state.npz without weights, __step__ and
    schedule.* entries (the schedule inside "loop"), as fastcnn wrote them before."""
    cfg = json.loads((run / "config.json").read_text())
    for k in ("schedule_args", "data_source"):
        del cfg[k]
    (run / "config.json").write_text(json.dumps(cfg))
    st = files.load_npz(run / "state.npz")
    loop = json.loads(str(st["loop"]))
    loop["schedule"] = {k[9:]: st[k].item() for k in st if k.startswith("schedule.")}
    old = {k: v for k, v in st.items() if k.startswith("opt.")}
    old["loop"] = np.array(json.dumps(loop))
    files.save_npz(run / "state.npz", old)
    w = files.load_npz(run / "model.npz")
    del w["__step__"]
    files.save_npz(run / "model.npz", w)
    assert cli.main(["eval", "--weights", str(run)]) == 0
    assert cli.main(["train", "--resume", str(run), "--epochs", "2"]) == 0
    assert _strict_json(run / "metrics.json")["steps"] == 16 == _step_of(run / "state.npz")
    assert _strict_json(run / "config.json")["schedule_args"] == {}


def test_kill_9_during_training_then_resume(tmp_path, data):
    """A real kill -9 at some point of a run that checkpoints at every step: the run resumes from
    a whole checkpoint, whatever the moment."""
    import time

    out = tmp_path / "run"
    argv = [sys.executable, "-m", "fastcnn", *_train_argv(data, out, "--epochs", "500", "--eval-every", "1")]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # until the first evaluations are saved
            if (out / "history.json").is_file() and _strict_json(out / "history.json"):
                break
            time.sleep(0.05)
        time.sleep(0.2)  # some checkpoints later
    finally:
        p.kill()
        p.wait()
    m = _strict_json(out / "metrics.json")
    assert m["status"] == "running" and m["steps"] > 0
    assert cli.main(["train", "--resume", str(out), "--epochs", "1"]) == 0  # the epochs were cut short
    assert not [q for q in out.iterdir() if q.name.endswith(".tmp")]
    assert _step_of(out / "model.npz") == _step_of(out / "state.npz") == _strict_json(out / "metrics.json")["steps"]
