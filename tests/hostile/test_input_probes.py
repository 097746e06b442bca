"""Issue 22: hostile but realistic input, replayed as a table — the command line, the exit code it
must give and fragments of its one-line message. Add a row for every new probe, so the count only
grows. Commands run in-process through ``fastcnn.cli.main`` (fast); the few that once aborted or
printed a traceback also run as real processes (``python -m fastcnn``). Data files are tiny and
made in a temporary folder. The fused-kernel probes (item 1) are tests/nn/test_shape_safety.py.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastcnn import cli, models
from fastcnn.data import load_mnist, write_idx
from fastcnn.data.mnist import FILES


def _idx_dir(d, x_train, y_train, x_test, y_test):
    d.mkdir()
    for name, a in zip(FILES, (x_train, y_train, x_test, y_test)):
        write_idx(d / name, a)
    return d


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    """A folder of small hostile inputs (see each row for what it tries)."""
    d = tmp_path_factory.mktemp("hostile")
    ds = load_mnist()
    xtr, ytr, xte, yte = ds.x_train[:100], ds.y_train[:100].astype(np.uint8), ds.x_test[:40], ds.y_test[:40]
    models.build("lenet5", seed=1).save(d / "w.npz")
    np.savez(d / "data.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    np.savez(d / "empty_test.npz", x_train=xtr, y_train=ytr, x_test=xte[:0], y_test=yte[:0])
    low = yte < 5
    np.savez(d / "test_0to4.npz", x_train=xtr, y_train=ytr, x_test=xte[low], y_test=yte[low])
    f = xtr.astype(np.float32) / 255
    np.savez(d / "float01.npz", x_train=f, y_train=ytr, x_test=xte.astype(np.float32) / 255, y_test=yte)
    np.savez(d / "float_over.npz", x_train=f * 1.2, y_train=ytr, x_test=xte / 255.0, y_test=yte)  # brightened
    np.savez(d / "float_300.npz", x_train=f * 300, y_train=ytr, x_test=xte / 255.0, y_test=yte)
    np.savez(d / "float_norm.npz", x_train=(f - 0.1307) / 0.3081, y_train=ytr, x_test=xte / 255.0, y_test=yte)
    nan = f.copy()
    nan[3, 4, 5] = np.nan
    np.savez(d / "float_nan.npz", x_train=nan, y_train=ytr, x_test=xte, y_test=yte)
    np.savez(d / "int_over.npz", x_train=xtr.astype(np.int32) * 2, y_train=ytr, x_test=xte, y_test=yte)
    np.savez(d / "bn65.npz", x_train=ds.x_train[:65], y_train=ds.y_train[:65], x_test=xte, y_test=yte)
    big = np.zeros((100, 32, 32), np.uint8)
    big[:, 2:30, 2:30] = xtr
    np.savez(d / "x32data.npz", x_train=big, y_train=ytr, x_test=big[:40], y_test=yte)
    _idx_dir(d / "idx32", big, ytr, big[:40], yte)
    for name, labels in (("label10", np.where(np.arange(100) == 7, 10, ytr).astype(np.uint8)),
                         ("label255", np.where(np.arange(100) == 9, 255, ytr).astype(np.uint8)),
                         ("label_minus1", np.where(np.arange(100) == 3, -1, ytr).astype(np.int8))):
        _idx_dir(d / name, xtr, labels, xte, yte)
    np.save(d / "x32.npy", big[:20])
    np.save(d / "x28.npy", xtr[:5])
    np.save(d / "float.npy", f[:5])
    np.save(d / "none.npy", xtr[:0])
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(d / "pickled.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=ytr, x_test=xte, y_test=yte)
    (d / "empty.npy").write_bytes(b"")
    (d / "renamed.npy").write_bytes((d / "data.npz").read_bytes())
    (d / "text.npy").write_text("0,1,2\n")
    (d / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (d / "latin1.csv").write_bytes(b"label," + ",".join(f"pixel{i}" for i in range(784)).encode() + b"\n\xe9\n")
    tomls = {"lr_string": 'lr = "abc"', "threads_string": 'threads = "2"', "seed_float": "seed = 1.5",
             "classes_int": "classes = 5", "lr_bool": "lr = true", "epochs_float": "epochs = 2.5",
             "seed_negative": "seed = -1", "profile_string": 'profile = "yes"', "batch_list": "batch_size = [64]",
             "train_not_table": 'train = "x"'}
    for name, text in tomls.items():
        (d / f"{name}.toml").write_text(text + "\n")
    (d / "sweep_bad_lr.toml").write_text('[sweep]\nlr = ["fast"]\n')
    (d / "sweep_bad_trials.toml").write_text('[sweep]\nlr = [0.1]\ntrials = "2"\n')
    (d / "sweep_unknown.toml").write_text('[sweep]\nlearning_rate = [0.1]\n')
    (d / "a_file").write_text("not a folder")
    return d


#: (id, argv ({d}: the folder of hostile inputs, {t}: this test's tmp_path), exit code, message fragments)
PROBES = [
    # item 2: labels out of range in idx files, named with the file
    ("idx-label-10", ["train", "--data-dir", "{d}/label10", "--out", "{t}/r", "--no-progress"], 2,
     ["train-labels-idx1-ubyte", "label 10 (sample 7) is outside 0–9"]),
    ("idx-label-255", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/label255"], 2,
     ["train-labels-idx1-ubyte", "label 255"]),
    ("idx-label-int8-minus-1", ["train", "--data-dir", "{d}/label_minus1", "--out", "{t}/r", "--no-progress"], 2,
     ["label -1 (sample 3)"]),
    # item 3: images of the wrong size or range
    ("predict-32x32", ["predict", "--weights", "{d}/w.npz", "--input", "{d}/x32.npy"], 2,
     ["x32.npy", "32×32", "takes 28×28"]),
    ("eval-32x32-idx", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/idx32"], 2,
     ["test set", "32×32", "28×28"]),
    ("eval-32x32-npz", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/x32data.npz"], 2,
     ["x32data.npz", "(100, 32, 32)", "expected images (N, 28, 28)"]),
    ("train-32x32", ["train", "--model", "lenet5", "--data-dir", "{d}/idx32", "--out", "{t}/r", "--no-progress",
                     "--epochs", "1"], 2, ["32×32", "28×28"]),
    ("float-pixels-over-1", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/float_over.npz"], 2,
     ["float_over.npz", "'x_train'", "pixel values from 0 to 1.2", "floats in [0, 1]", "np.rint(x * 255)"]),
    ("float-pixels-over-255", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/float_300.npz"], 2,
     ["pixel values from 0 to 300"]),
    ("float-pixels-normalised", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/float_norm.npz"], 2,
     ["pixel values from -0.42", "undo a normalisation"]),
    ("float-pixels-nan", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/float_nan.npz"], 2,
     ["non-finite pixel value (nan at index (3, 4, 5))"]),
    ("int-pixels-over-255", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/int_over.npz"], 2,
     ["pixel values from 0 to 510"]),
    ("predict-float-npy", ["predict", "--weights", "{d}/w.npz", "--input", "{d}/float.npy"], 2,
     ["expected uint8 images", "astype(np.uint8)"]),
    # item 11: sweep --config
    ("sweep-config-bad-lr", ["sweep", "--config", "{d}/sweep_bad_lr.toml", "--out", "{t}/s"], 2,
     ["[sweep] lr takes a list of numbers", "'fast'"]),
    ("sweep-config-bad-trials", ["sweep", "--config", "{d}/sweep_bad_trials.toml", "--out", "{t}/s"], 2,
     ["[sweep] trials must be an integer, got '2'"]),
    ("sweep-config-unknown-key", ["sweep", "--config", "{d}/sweep_unknown.toml", "--out", "{t}/s"], 2,
     ["unknown [sweep] key 'learning_rate'"]),
    # item 12: damaged files and wrongly typed TOML values
    ("predict-0-byte-npy", ["predict", "--weights", "{d}/w.npz", "--input", "{d}/empty.npy"], 2,
     ["empty.npy: not a .npy file (an empty file)"]),
    ("predict-npz-renamed-npy", ["predict", "--weights", "{d}/w.npz", "--input", "{d}/renamed.npy"], 2,
     ["renamed.npy: this is an .npz archive"]),
    ("predict-text-as-npy", ["predict", "--weights", "{d}/w.npz", "--input", "{d}/text.npy"], 2,
     ["not a .npy file"]),
    ("predict-pickled-npy", ["predict", "--weights", "{d}/w.npz", "--input", "{d}/objects.npy"], 2,
     ["objects.npy: not a plain .npy array", "pickle"]),
    ("predict-no-images", ["predict", "--weights", "{d}/w.npz", "--input", "{d}/none.npy"], 2,
     ["holds no images"]),
    ("eval-empty-test-set", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/empty_test.npz",
                             "--metrics-out", "{t}/m"], 2, ["empty_test.npz", "the test set holds no images"]),
    ("toml-lr-string", ["train", "--config", "{d}/lr_string.toml", "--out", "{t}/r"], 2,
     ["lr_string.toml: lr must be a number, got 'abc' (a string)"]),
    ("toml-threads-string", ["train", "--config", "{d}/threads_string.toml", "--out", "{t}/r"], 2,
     ["threads must be an integer ≥ 1, got '2' (a string)"]),
    ("toml-seed-float", ["train", "--config", "{d}/seed_float.toml", "--out", "{t}/r"], 2,
     ["seed must be an integer ≥ 0, got 1.5 (a number)"]),
    ("toml-seed-negative", ["train", "--config", "{d}/seed_negative.toml", "--out", "{t}/r"], 2,
     ["seed must be an integer ≥ 0, got -1"]),
    ("toml-classes-int", ["train", "--config", "{d}/classes_int.toml", "--out", "{t}/r"], 2,
     ["classes must be a string like \"0,1,2\" or a list, got 5 (an integer)", "classes = [0, 1, 2]"]),
    ("toml-lr-bool", ["train", "--config", "{d}/lr_bool.toml", "--out", "{t}/r"], 2,
     ["lr must be a number, got True (a boolean)"]),
    ("toml-epochs-float", ["train", "--config", "{d}/epochs_float.toml", "--out", "{t}/r"], 2,
     ["epochs must be an integer, got 2.5"]),
    ("toml-profile-string", ["train", "--config", "{d}/profile_string.toml", "--out", "{t}/r"], 2,
     ["profile must be true or false, got 'yes'"]),
    ("toml-batch-list", ["train", "--config", "{d}/batch_list.toml", "--out", "{t}/r"], 2,
     ["batch_size must be an integer, got [64] (a list)"]),
    ("toml-train-not-table", ["train", "--config", "{d}/train_not_table.toml", "--out", "{t}/r"], 2,
     ["'train' must be a table"]),
    # item 13: misleading messages
    ("eval-classes-absent-from-test", ["eval", "--weights", "{d}/w.npz", "--data-dir", "{d}/test_0to4.npz",
                                       "--classes", "8,9"], 2,
     ["--classes 8,9: the test set of test_0to4 holds no such images (its classes: 0, 1, 2, 3, 4)"]),
    ("train-classes-absent-from-test", ["train", "--data-dir", "{d}/test_0to4.npz", "--classes", "8,9",
                                        "--out", "{t}/r", "--no-progress"], 2, ["the test set of test_0to4"]),
    ("train-empty-test-set", ["train", "--data-dir", "{d}/empty_test.npz", "--out", "{t}/r", "--no-progress"], 2,
     ["empty_test.npz: the test set holds no images"]),
    ("binary-csv", ["train", "--data-dir", "{d}/binary.csv", "--out", "{t}/r", "--no-progress"], 2,
     ["binary.csv: not a text CSV file (it holds a NUL byte at offset 0)"]),
    ("non-utf8-csv-row", ["train", "--data-dir", "{d}/latin1.csv", "--out", "{t}/r", "--no-progress"], 2,
     ["latin1.csv: not a text CSV file"]),
    ("data-npz-with-objects", ["train", "--data-dir", "{d}/pickled.npz", "--out", "{t}/r", "--no-progress"], 2,
     ["pickled.npz: not a readable data .npz", "np.savez(path, x_train="]),
    ("seed-minus-1", ["train", "--seed", "-1", "--out", "{t}/r"], 2, ["argument --seed: must be an integer ≥ 0"]),
    ("sweep-seed-minus-1", ["sweep", "--lr", "0.1", "--seed", "-1", "--out", "{t}/s"], 2, ["--seed"]),
    ("data-npz-as-weights", ["predict", "--weights", "{d}/data.npz", "--input", "{d}/x28.npy"], 2,
     ["looks like a data set", "x_test, x_train, y_test, y_train", "--data-dir"]),
    ("data-npz-as-weights-with-model", ["eval", "--weights", "{d}/data.npz", "--model", "lenet5"], 2,
     ["checkpoint holds no layer weights", "is it a data file?"]),
    # item 14: sweep exit codes
    ("sweep-trials-0", ["sweep", "--lr", "0.1", "--trials", "0", "--out", "{t}/s"], 2,
     ["argument --trials: must be an integer ≥ 1, got 0"]),
    ("sweep-workers-0", ["sweep", "--lr", "0.1", "--workers", "0", "--out", "{t}/s"], 2, ["--workers"]),
    # item 15
    ("bench-steps-to-97-negative", ["bench", "train", "--steps-to-97", "-5", "--quick"], 2,
     ["argument --steps-to-97: must be an integer ≥ 1, got -5"]),
    ("bench-out-csv-name", ["bench", "conv", "--quick", "--out", "{t}/conv.csv"], 2,
     ["looks like a file name", "results folder"]),
    ("bench-out-is-a-file", ["bench", "conv", "--quick", "--out", "{d}/a_file"], 2, ["a_file: is a file"]),
    ("bench-out-under-a-file", ["bench", "conv", "--quick", "--out", "{d}/a_file/results"], 2,
     ["cannot write the results there"]),
    ("summary-empty-model", ["summary", "--model", ""], 2, ["unknown model ''"]),
]


def _main(argv):
    """fastcnn.cli.main's exit code, argparse's SystemExit included."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


@pytest.fixture
def no_benchmarks(monkeypatch):
    """A benchmark that starts before its options are checked fails the probe at once (instead of
    running for minutes and writing into benchmarks/results)."""
    from fastcnn import bench

    def ran(*a, **k):
        raise AssertionError("the benchmark started before its options were checked")

    monkeypatch.setattr(bench, "bench_conv", ran)
    monkeypatch.setattr(bench, "bench_train", ran)


@pytest.mark.parametrize("name,argv,code,says", PROBES, ids=[p[0] for p in PROBES])
def test_hostile_input_gets_its_exit_code_and_message(name, argv, code, says, d, tmp_path, capsys, no_benchmarks):
    argv = [a.format(d=d, t=tmp_path) for a in argv]
    assert _main(argv) == code, capsys.readouterr()
    out = capsys.readouterr()
    err = out.err.strip().splitlines()
    assert err and err[-1].startswith(f"fastcnn {argv[0]}: error: "), out
    for frag in says:
        assert frag in err[-1], (frag, err[-1])
    assert not (tmp_path / "r" / "model.npz").exists()  # nothing trained on bad input


#: rows that once ended in a traceback (exit 1) or an abort: replayed as real processes
IN_A_PROCESS = ["predict-0-byte-npy", "predict-npz-renamed-npy", "toml-lr-string", "eval-empty-test-set"]


@pytest.mark.parametrize("name", IN_A_PROCESS)
def test_as_a_real_process(name, d, tmp_path):
    _, argv, code, says = next(p for p in PROBES if p[0] == name)
    argv = [a.format(d=d, t=tmp_path) for a in argv]
    r = subprocess.run([sys.executable, "-m", "fastcnn", *argv], capture_output=True, text=True, timeout=300)
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and all(f in r.stderr for f in says), r.stderr


# --- rows that succeed, and behaviour a table row cannot show ------------------------------------------------
def test_float_images_in_0_1_are_scaled_not_rejected(d):
    from fastcnn.data.formats import load_data

    ds = load_data(str(d / "float01.npz"))
    ref = load_mnist()
    assert ds.x_train.dtype == np.uint8 and np.array_equal(ds.x_train, ref.x_train[:100])


def test_batch_norm_preset_trains_when_the_last_batch_holds_one_sample(d, tmp_path, capsys):
    # 65 images at batch 64: the loader drops the one-sample batch instead of stopping in batch norm
    assert cli.main(["train", "--model", "compact", "--data-dir", str(d / "bn65.npz"), "--batch-size", "64",
                     "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "status" in capsys.readouterr().out and (tmp_path / "run" / "model.npz").is_file()


def test_batch_norm_says_what_to_do_with_a_batch_of_one():
    from fastcnn import nn

    bn = nn.BatchNorm1d(4)
    with pytest.raises(nn.ShapeError, match=r"a batch of 1 sample in training mode .*--batch-size.*model.eval\(\)"):
        bn.forward(np.ones((1, 4), np.float32))
    assert bn.eval().forward(np.ones((1, 4), np.float32)).shape == (1, 4)  # evaluation takes one sample


def test_loader_drops_only_a_last_batch_of_one_when_shuffling():
    from fastcnn.data import BatchIterator

    x, y = np.zeros((66, 2, 2), np.uint8), np.zeros(66, np.int64)
    x, y = x[:65], y[:65]
    assert [len(b[1]) for b in BatchIterator(x, y, 64)] == [64]
    assert [len(b[1]) for b in BatchIterator(x, y, 64, shuffle=False)] == [64, 1]  # evaluation keeps every sample
    assert [len(b[1]) for b in BatchIterator(x, y, 64, drop_single=False)] == [64, 1]
    assert [len(b[1]) for b in BatchIterator(x[:1], y[:1], 64)] == [1]  # the only batch stays
    assert [len(b[1]) for b in BatchIterator(np.zeros((66, 2, 2), np.uint8), np.zeros(66), 64)] == [64, 2]


def test_sweep_config_file_runs(d, tmp_path, capsys):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('[sweep]\nlr = [0.1, 0.05]\nfraction = 0.5\nval-fraction = 0.2\n'
                   f'[train]\nmodel = "mlp"\nepochs = 1\nseed = 3\ndata_dir = "{d / "data.npz"}"\n')
    assert cli.main(["sweep", "--config", str(cfg), "--hidden", "16", "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "trial 0: lr=0.1, hidden=16" in out and "trial 1: lr=0.05, hidden=16" in out
    import json

    spec = json.loads((tmp_path / "s" / "sweep-spec.json").read_text())
    assert spec["base"]["seed"] == 3 and spec["base"]["fraction"] == 0.5 and spec["base"]["model"] == "mlp"
    assert spec["base"]["val_fraction"] == 0.2 and spec["base"]["epochs"] == 1


@pytest.mark.parametrize("status", ["error: ValueError: boom", "lost: BrokenProcessPool: a worker died"])
def test_sweep_with_unfinished_trials_exits_1_and_says_how_many(status, tmp_path, monkeypatch, capsys):
    from fastcnn import sweep

    def fake_trial(job):
        ok = job["trial"] != 1
        return {"trial": job["trial"], **job["params"], "val_accuracy": 0.9 if ok else None,
                "test_accuracy": 0.9 if ok else None, "train_seconds": 0.1, "epochs_done": 1,
                "status": "completed" if ok else status, "worker": "here", "wall_seconds": 0.1, "files": {}}

    monkeypatch.setattr(sweep, "_run_trial", fake_trial)
    assert cli.main(["sweep", "--lr", "0.1,0.01,0.001", "--model", "mlp", "--out", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 trials did not finish" in err and f"fastcnn sweep --resume {tmp_path / 's'}" in err
    assert ("1 lost" if status.startswith("lost") else "1 failed") in err


def test_sweep_trials_0_in_the_library_is_an_error():
    from fastcnn import sweep

    with pytest.raises(ValueError, match="--trials must be an integer ≥ 1"):
        sweep.trials({"lr": "0.1"}, "grid", 0)


def test_bench_out_is_checked_before_the_benchmark_runs(tmp_path, capsys, no_benchmarks):
    assert _main(["bench", "conv", "--quick", "--out", str(tmp_path / "conv.md")]) == 2
    assert "timing every conv" not in capsys.readouterr().out


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a read-only folder (not as root)")
def test_bench_out_read_only_folder(tmp_path, capsys, no_benchmarks):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert _main(["bench", "conv", "--quick", "--out", str(ro)]) == 2
        assert "cannot write the results there" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_submission_is_written_atomically(tmp_path, monkeypatch):
    from fastcnn import files
    from fastcnn.data.formats import write_submission

    path = tmp_path / "submission.csv"
    path.write_text("ImageId,Label\n1,7\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_submission(path, np.arange(1000) % 10)
    assert path.read_text() == "ImageId,Label\n1,7\n"  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]  # no temporary file left
