"""The stand-in's counters: launches, host syncs, transfers and allocations as CuPy would issue them,
and its custom kernels (ElementwiseKernel & co. running registered NumPy twins)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastcnn.testing import fake_cupy as cp

ROOT = Path(__file__).resolve().parents[2]


def test_counters_api():
    cp.reset_counters()
    assert cp.counters() == dict.fromkeys(cp.COUNTERS, 0)
    assert set(cp.COUNTERS) == {"launches", "syncs", "h2d", "d2h", "h2d_bytes", "d2h_bytes", "allocs"}
    with cp.counting() as c:
        a = cp.zeros((4, 4), dtype=np.float32)
    assert c == {"launches": 1, "syncs": 0, "h2d": 0, "d2h": 0, "h2d_bytes": 0, "d2h_bytes": 0, "allocs": 1}
    assert cp.counters()["launches"] == 1 and cp.counters()["allocs"] == 1
    del a


def test_transfers_and_syncs():
    host = np.arange(12, dtype=np.float32).reshape(3, 4)
    with cp.counting() as c:
        a = cp.asarray(host)
    assert (c["h2d"], c["h2d_bytes"], c["launches"], c["syncs"]) == (1, 48, 0, 0)
    for leave, nbytes in ((lambda: a.get(), 48), (lambda: cp.asnumpy(a), 48), (lambda: float(a[0, 0]), 4),
                          (lambda: a.sum().item(), 4), (lambda: bool(a[1, 1]), 4), (lambda: a.tolist(), 48),
                          (lambda: f"{a[0, 1]:.2f}", 4), (lambda: str(a), 48)):
        with cp.counting() as c:
            leave()
        assert (c["d2h"], c["syncs"], c["d2h_bytes"]) == (1, 1, nbytes)
    with cp.counting() as c:
        cp.asnumpy(a, blocking=False)  # CuPy: asynchronous, the caller orders the stream
    assert (c["d2h"], c["syncs"]) == (1, 0)
    for sync in (cp.cuda.get_current_stream().synchronize, cp.cuda.Device().synchronize,
                 cp.cuda.runtime.deviceSynchronize):
        with cp.counting() as c:
            sync()
        assert c["syncs"] == 1 and c["d2h"] == 0
    with cp.counting() as c:
        a[np.array([0, 2])]  # a host index array is uploaded, then a gather
    assert (c["h2d"], c["h2d_bytes"], c["launches"]) == (1, 16, 1)
    with cp.counting() as c:
        a[a > 3]  # boolean mask: the result's size is read back (a sync)
    assert c["syncs"] == 1 and c["launches"] >= 2


def test_launches_views_cost_nothing():
    a = cp.asarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    for view in (lambda: a.reshape(6, 4), lambda: a.T, lambda: a.transpose(2, 0, 1), lambda: a[1, :, ::2],
                 lambda: a.ravel(), lambda: cp.ascontiguousarray(a), lambda: a.astype(np.float32, copy=False),
                 lambda: cp.empty((5, 5), np.float32), lambda: a[None], lambda: list(a)):
        with cp.counting() as c:
            view()
        assert c["launches"] == 0, c
    t, m = a.transpose(2, 0, 1), a > 0
    for one in (lambda: t.reshape(2, 12), lambda: t.ravel(), lambda: cp.ascontiguousarray(t), lambda: a + 1,
                lambda: a.sum(axis=0), lambda: cp.exp(a), lambda: a.astype(np.float64), lambda: a.copy(),
                lambda: a.fill(0), lambda: cp.zeros_like(a), lambda: cp.where(m, a, 0.0),
                lambda: cp.maximum(a, 0, out=a), lambda: a[:, 1].__setitem__(Ellipsis, 2.0),
                lambda: cp.random.default_rng(0).random((3,), dtype=np.float32)):
        with cp.counting() as c:
            one()
        assert c["launches"] == 1, c
    with cp.counting() as c:
        a += 1
        a *= a
    assert c["launches"] == 2 and c["allocs"] == 0  # in place: launched, nothing new


def test_gemm_counts_the_copies_cublas_needs():
    a = cp.asarray(np.ones((4, 6), np.float32))
    b = cp.asarray(np.ones((6, 5), np.float32))
    with cp.counting() as c:
        a @ b
        cp.matmul(a.T.T, b[:, ::-1][:, ::-1])
        a.T.T.dot(b)
    assert c["launches"] == 3  # transposed operands are fine for cuBLAS
    with cp.counting() as c:
        cp.matmul(a[:, ::2], b[::2])  # strided: neither C nor F order -> copied first
    assert c["launches"] == 3
    x = cp.asarray(np.ones((2, 3, 4, 5), np.float32))
    w = cp.asarray(np.ones((7, 3, 4), np.float32))
    with cp.counting() as c:
        cp.tensordot(x, w, axes=([1, 2], [1, 2]))  # x's axes 1,2 are not trailing: a copy, then GEMM
    assert c["launches"] == 2


def test_take_along_axis_counts_like_cupy_writes_it():
    a = cp.asarray(np.ones((2, 3, 4), np.float32))
    i = cp.zeros((2, 3, 1), dtype=np.int64)
    with cp.counting() as c:
        cp.take_along_axis(a, i, axis=2)
    assert c["launches"] == 3  # an arange for each of the two other axes, then a gather


def test_data_is_a_memory_pointer_and_the_interface_names_a_stream():
    a = cp.asarray(np.arange(6, dtype=np.float32))
    assert isinstance(a.data, cp.cuda.MemoryPointer) and a.data.ptr == a.__cuda_array_interface__["data"][0]
    assert a.data.ptr != 0 and not hasattr(a.data, "shape")
    cai = a.__cuda_array_interface__
    assert cai["version"] == 3 and cai["stream"] == 1 and cai["data"][1] is False  # CuPy: legacy stream


def test_elementwise_kernel_runs_its_registered_twin():
    k = cp.ElementwiseKernel("T x, float32 s", "T y", "y = x * s", "fc_test_scale")
    x = cp.asarray(np.arange(4, dtype=np.float32))
    with pytest.raises(NotImplementedError, match="register its NumPy twin.*gpu_check.sh"):
        k(x, 2.0)

    def twin(x, s, y):
        np.multiply(x, s, out=y)

    cp.register_twin("fc_test_scale", twin)
    with cp.counting() as c:
        y = k(x, 2.0)
    assert c["launches"] == 1 and c["allocs"] == 1
    np.testing.assert_array_equal(y.get(), [0, 2, 4, 6])
    out = cp.empty(4, np.float32)
    assert k(x, 3.0, out) is out and out.get()[3] == 9.0
    with pytest.raises(TypeError, match="Unsupported type"):
        k(np.ones(4, np.float32), 1.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        cp.ElementwiseKernel("T x", "T y", "y = x", "k2", bogus=1)


def test_raw_kernel_runs_its_registered_twin():
    def twin(grid, block, args):
        x, n = args
        x[:n] += 1

    cp.register_twin("fc_test_inc", twin)
    k = cp.RawKernel('extern "C" __global__ void fc_test_inc(float* x, int n) {}', "fc_test_inc")
    x = cp.zeros(4, dtype=np.float32)
    with cp.counting() as c:
        k((1,), (32,), (x, np.int32(3)))
    assert c["launches"] == 1
    np.testing.assert_array_equal(x.get(), [1, 1, 1, 0])


def test_numba_kernel_launch_on_stand_in_arrays_counts_one():
    """kernels/cuda launchers under the simulator report each launch (sim_args -> count_launch)."""
    code = """if True:
        import json, numpy as np
        from fastcnn.testing import fake_cupy as cp
        from fastcnn.kernels.cuda import im2col
        x = cp.asarray(np.ones((1, 1, 4, 4), np.float32))
        cols = cp.empty((1, 1 * 2 * 2, 3 * 3), np.float32)
        with cp.counting() as c:
            im2col.im2col(x, cols, (2, 2), (1, 1), (0, 0))
        print(json.dumps(c))
    """
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", FASTCNN_FAKE_CUPY="1")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    c = json.loads(r.stdout.strip().splitlines()[-1])
    assert c["launches"] == 1 and c["d2h"] == 0 and c["h2d"] == 0, c


def test_indexing_with_several_index_arrays_counts_the_flattening():
    """CuPy flattens k integer index arrays (k multiplies, k - 1 adds) before the gather / scatter."""
    a = cp.zeros((4, 5), dtype=np.float32)
    rows, cols = cp.arange(4), cp.asarray(np.array([0, 1, 2, 3]))
    with cp.counting() as c:
        a[rows, cols]
    assert c["launches"] == 4
    with cp.counting() as c:
        a[rows, cols] = 1.0
    assert c["launches"] == 4
    with cp.counting() as c:
        a[cols]
        a[1:3] = 2.0
    assert c["launches"] == 2


def test_an_old_numba_cuda_is_charged_a_sync_per_array(monkeypatch):
    """numba-cuda before 0.25 synchronises the interface stream of every CuPy array a kernel gets."""
    a, b = cp.zeros(3, dtype=np.float32), cp.zeros(3, dtype=np.float32)
    monkeypatch.setattr(cp, "_old_numba_cuda", lambda: True)
    with cp.counting() as c:
        cp.count_launch(1, arrays=(a, b))
    assert c["launches"] == 1 and c["syncs"] == 2
    monkeypatch.setenv("NUMBA_CUDA_ARRAY_INTERFACE_SYNC", "0")
    with cp.counting() as c:
        cp.count_launch(1, arrays=(a, b))
    assert c["syncs"] == 0
    monkeypatch.setattr(cp, "_old_numba_cuda", lambda: False)
    monkeypatch.delenv("NUMBA_CUDA_ARRAY_INTERFACE_SYNC")
    with cp.counting() as c:
        cp.count_launch(1, arrays=(a, b))
    assert c == {**dict.fromkeys(cp.COUNTERS, 0), "launches": 1}
