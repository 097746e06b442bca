"""Sweeps on a real Dask cluster: a scheduler and workers started as separate processes on
127.0.0.1, a three-trial sweep through ``fastcnn sweep --scheduler``, a worker killed mid-trial;
plus resume, Ctrl-C and the errors without Dask. Every process started here is stopped."""
import concurrent.futures as cf
import csv
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from fastcnn import cli, files, sweep, sweep_dask

distributed = pytest.importorskip("distributed", reason="needs the dask extra: pip install -e '.[dask]'")

LOOPBACK = "127.0.0.1"
#: three tiny, deterministic trials (an MLP with 16 hidden units, 400 training images, one epoch)
TRIALS = ["--lr", "0.1,0.05,0.01", "--hidden", "16", "--model", "mlp", "--optimizer", "sgd", "--epochs", "1",
          "--fraction", "0.5", "--threads", "1", "--deterministic"]
SPACE = {"lr": "0.1,0.05,0.01", "hidden": "16", "epochs": "1"}
SETTINGS = dict(model="mlp", optimizer="sgd", fraction=0.5, threads=1, deterministic=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


class Cluster:
    """A `dask scheduler` and `dask worker` processes on the loopback address."""

    def __init__(self, tmp):
        self.tmp, self.procs, self.workers = tmp, [], {}
        self.address = f"tcp://{LOOPBACK}:{_free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self._start("scheduler", ["scheduler", "--host", LOOPBACK, "--port", port, "--no-dashboard"])
        self.client = None

    def _start(self, name, args):
        log = open(self.tmp / f"{name}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT,
                             cwd=self.tmp)
        log.close()
        self.procs.append(p)
        return p

    def add_worker(self, name):
        """Start one single-threaded worker without a nanny (killing it kills the worker); returns its address."""
        addr = f"tcp://{LOOPBACK}:{_free_port()}"
        self.workers[addr] = self._start(name, [
            "worker", self.address, "--host", LOOPBACK, "--worker-port", addr.rsplit(":", 1)[1], "--nthreads", "1",
            "--no-nanny", "--no-dashboard", "--name", name, "--death-timeout", "60"])
        return addr

    def wait_for(self, n):
        if self.client is None:
            self.client = distributed.Client(self.address, timeout=30)
        self.client.wait_for_workers(n, timeout=60)

    def close(self):
        try:
            if self.client is not None:
                self.client.close()
        finally:
            _stop(self.procs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.add_worker("w0")
        c.add_worker("w1")
        c.wait_for(2)
        yield c
    finally:
        c.close()
    assert all(p.poll() is not None for p in c.procs)


@pytest.fixture(scope="module")
def data(tmp_path_factory, small_npz):
    return str(small_npz(tmp_path_factory.mktemp("data") / "mnist.npz", 800, 200))


def _table(out):
    return {int(r["trial"]): r for r in csv.DictReader(open(out / "sweep.csv"))}


def _history(run_dir):
    """history.json without its timings (the rest is the same bit for bit in deterministic mode)."""
    return [{k: v for k, v in h.items() if "seconds" not in k} for h in json.loads((run_dir / "history.json").read_text())]


def test_three_trials_on_dask_equal_local_ones(cluster, data, tmp_path):
    out = tmp_path / "dask"
    assert cli.main(["sweep", *TRIALS, "--data-dir", data, "--scheduler", cluster.address, "--out", str(out)]) == 0
    local = sweep.run_sweep(SPACE, tmp_path / "local", workers=1,
                            data_dir=data, **SETTINGS)
    table = _table(out)
    assert sorted(table) == [0, 1, 2]
    assert {r["worker"] for r in table.values()} <= set(cluster.workers) and all(
        float(r["wall_seconds"]) > 0 for r in table.values())
    for row in local:
        t, d_remote = table[row["trial"]], out / f"trial-{row['trial']:03d}"
        assert t["status"] == "completed" and row["status"] == "completed"
        assert float(t["lr"]) == row["lr"]
        assert float(t["val_accuracy"]) == pytest.approx(row["val_accuracy"], abs=1e-12)
        assert float(t["test_accuracy"]) == pytest.approx(row["test_accuracy"], abs=1e-12)
        assert _history(d_remote) == _history(tmp_path / "local" / f"trial-{row['trial']:03d}")
        w_remote, w_local = files.load_npz(d_remote / "model.npz"), files.load_npz(f"{row['run_dir']}/model.npz")
        assert w_remote.keys() == w_local.keys()
        assert all(np.array_equal(w_remote[k], w_local[k]) for k in w_local)
        assert json.loads((d_remote / "config.json").read_text())["out"] == str(d_remote)  # written by the client


def test_killed_worker_trial_is_rerun(cluster, data, tmp_path):
    victim = cluster.add_worker("victim")
    cluster.wait_for(3)
    out, result = tmp_path / "sw", {}

    def sweep_thread():
        try:
            result["rows"] = sweep.run_sweep(SPACE, out, data_dir=data,
                                             scheduler=cluster.address, lost_after=30, **SETTINGS)
        except BaseException as e:  # reported by the assertion below
            result["error"] = e

    th = threading.Thread(target=sweep_thread, daemon=True)
    th.start()
    deadline, killed = time.monotonic() + 60, False
    while time.monotonic() < deadline and th.is_alive():
        if cluster.client.processing().get(victim):  # a trial is running on the victim: kill it
            cluster.workers[victim].kill()
            cluster.workers[victim].wait(timeout=10)
            killed = True
            break
        time.sleep(0.02)
    th.join(timeout=120)
    assert killed, "the victim worker never ran a trial"
    assert not th.is_alive(), "the sweep did not finish after a worker died"
    assert "error" not in result, result.get("error")
    rows = result["rows"]
    assert sorted(r["trial"] for r in rows) == [0, 1, 2]  # every trial accounted for
    assert all(r["status"] == "completed" and r["worker"] != victim for r in rows)  # the lost one was rerun
    assert sorted(_table(out)) == [0, 1, 2]


def test_interrupt_keeps_rows_and_resume_runs_the_rest(data, tmp_path):
    seen = []

    def stop_after_first(row):
        seen.append(row["trial"])
        raise KeyboardInterrupt

    with cf.ThreadPoolExecutor(max_workers=1) as ex, pytest.raises(KeyboardInterrupt):  # any Executor
        sweep.run_sweep(SPACE, tmp_path, executor=ex, on_result=stop_after_first, data_dir=data, **SETTINGS)
    assert seen == [0] and sorted(_table(tmp_path)) == [0]
    ran = []
    rows = sweep.resume_sweep(tmp_path, on_result=lambda r: ran.append(r["trial"]))
    assert sorted(ran) == [1, 2] and sorted(r["trial"] for r in rows) == [0, 1, 2]
    assert all(r["status"] == "completed" for r in rows) and sorted(_table(tmp_path)) == [0, 1, 2]
    assert sweep.resume_sweep(tmp_path) == rows  # nothing left to run


def test_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="not a Dask scheduler address.*tcp://HOST:PORT"):
        sweep.run_sweep({"lr": "0.1"}, tmp_path, scheduler="127.0.0.1:8786", model="mlp")
    with pytest.raises(FileNotFoundError, match="sweep-spec.json is missing"):
        sweep.resume_sweep(tmp_path)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    with pytest.raises(ValueError, match=r"pip install 'fastcnn\[dask\]'"):
        sweep.run_sweep({"lr": "0.1"}, tmp_path, scheduler="tcp://127.0.0.1:8786", model="mlp")


def test_no_worker_for_too_long_is_a_lost_reason():
    class NoWorkers:
        def get_executor(self, pure):
            assert pure is False  # identical trials must stay separate tasks
            return None

        def nthreads(self):
            return {}

    pool = sweep_dask.DaskPool(NoWorkers(), lost_after=0)
    assert pool.lost_reason() == "no Dask worker connected to the scheduler for 0 s"


def test_trial_threads_are_scoped():
    import numba
    from threadpoolctl import threadpool_info

    def blas():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before_numba, before_blas = numba.get_num_threads(), blas()
    assert before_blas, "numpy's BLAS is not visible to threadpoolctl"
    with sweep._threads_scope(1):
        assert numba.get_num_threads() == 1 and set(blas()) <= {1}
    assert numba.get_num_threads() == before_numba and blas() == before_blas
    # on Dask, a trial without --threads shares its machine's cores among the trials running there
    cores = os.cpu_count()
    job = {"slots": {"127.0.0.1": cores * 2}}
    assert sweep._trial_threads(job, "tcp://127.0.0.1:40000") == 1
    assert sweep._trial_threads({**job, "threads": 3}, "tcp://127.0.0.1:40000") == 3
