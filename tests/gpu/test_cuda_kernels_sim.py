"""The Numba CUDA kernels (kernels/cuda) under Numba's CUDA simulator, against the CPU references.

Runs on any machine: the simulator executes each CUDA thread as Python on the host.

Isolation. Numba picks the simulator or the real CUDA target once, when numba.cuda is
first imported, from NUMBA_ENABLE_CUDASIM. A process cannot hold both, and other tests
(the CuPy ones, anything importing fastcnn.kernels.cuda) need the real target. So this
file has two faces, chosen by that variable when pytest imports it:

* variable unset (a normal ``pytest`` run): one test, which re-runs this very file under
  pytest in a fresh subprocess with NUMBA_ENABLE_CUDASIM=1 and passes only if every
  check there passed (the subprocess's report is the failure message);
* NUMBA_ENABLE_CUDASIM=1 (that subprocess, or a person running
  ``NUMBA_ENABLE_CUDASIM=1 pytest tests/gpu/test_cuda_kernels_sim.py``): the checks themselves,
  one test per case.

Tolerances: im2col and the max-pool forward are copies/comparisons, so exactly equal;
sums (col2im, pooling backward, avg forward) are ≤ 1e-12 relative in float64 (they are in
fact summed in the CPU's order) and ≤ 1e-5 in float32.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
ROOT = Path(__file__).resolve().parents[2]

if not SIM:

    def test_cuda_kernels_under_simulator():
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
        cmd = [sys.executable, "-m", "pytest", str(Path(__file__).resolve()), "-q", "-rs",
               "-p", "no:cacheprovider", "-o", "addopts="]
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
        out = r.stdout[-20000:] + r.stderr[-5000:]
        if r.returncode == 0 and " passed" not in out:
            pytest.skip(f"the simulator checks were skipped:\n{out}")
        assert r.returncode == 0, f"CUDA-simulator checks failed (NUMBA_ENABLE_CUDASIM=1 {' '.join(cmd)}):\n{out}"

else:
    cuda = pytest.importorskip("numba.cuda", reason="Numba's CUDA target is missing: pip install numba-cuda")

    from fastcnn.conv import cuda_conv
    from fastcnn.pool import cuda_pool
    from fastcnn.pool import vectorised as pool_xp
    from fastcnn.conv import im2col as ref
    from fastcnn.geometry import out_size, pad, unpad
    from fastcnn.kernels.cuda import im2col as kim
    from fastcnn.kernels.cuda import launch
    from fastcnn.kernels.cuda import pool as kpool

    if not launch.simulated():
        pytest.skip("numba.cuda was imported before NUMBA_ENABLE_CUDASIM=1 took effect", allow_module_level=True)

    # (N, C, H, W, (kh, kw), (sh, sw), (ph, pw)): strides 1–2, padding 0–1, rectangular kernels,
    # a stride larger than the kernel (uncovered pixels), a 1×1 kernel.
    CONV_GEOMS = [
        (1, 1, 4, 4, (2, 2), (1, 1), (0, 0)),
        (2, 3, 5, 4, (3, 2), (2, 1), (1, 1)),
        (1, 2, 6, 5, (3, 3), (2, 2), (1, 0)),
        (2, 1, 5, 6, (2, 3), (1, 2), (0, 1)),
        (1, 2, 5, 5, (1, 2), (2, 2), (0, 1)),
        (1, 3, 3, 4, (1, 1), (1, 1), (0, 0)),
    ]
    # Pooling layers keep padding ≤ half the kernel.
    POOL_GEOMS = [
        (1, 1, 4, 4, (2, 2), (2, 2), (0, 0)),
        (2, 3, 5, 4, (3, 2), (2, 1), (1, 1)),
        (1, 2, 6, 5, (3, 3), (1, 2), (1, 0)),
        (2, 1, 5, 7, (2, 3), (1, 2), (0, 1)),
        (1, 2, 5, 5, (1, 2), (2, 2), (0, 1)),
    ]
    DTYPES = [np.float64, np.float32]

    def ids(g):
        n, c, h, w, k, s, p = g
        return f"x{n}x{c}x{h}x{w}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}"

    def rel(a, b):
        """max |a − b| / max |b| (relative to the reference's scale)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    def tol(dtype):
        return 1e-12 if dtype == np.float64 else 1e-5

    def outhw(g):
        _, _, h, w, (kh, kw), (sh, sw), (ph, pw) = g
        return out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)

    def distinct(shape, dtype, seed):
        """Values without ties (a shuffled ramp), for max pooling."""
        rng = np.random.default_rng(seed)
        return (rng.permutation(int(np.prod(shape))) - 7.5).reshape(shape).astype(dtype) * dtype(0.25)

    def device(a):
        return cuda.to_device(np.ascontiguousarray(a))

    # --- im2col / col2im ---------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("g", CONV_GEOMS, ids=ids)
    def test_im2col_matches_cpu(g, dtype):
        n, c, h, w, (kh, kw), (sh, sw), (ph, pw) = g
        oh, ow = outhw(g)
        x = np.random.default_rng(1).standard_normal((n, c, h, w)).astype(dtype)
        cols = cuda.device_array((n, c * kh * kw, oh * ow), dtype=dtype)
        kim.im2col(device(x), cols, (kh, kw), (sh, sw), (ph, pw))
        expected = ref.im2col(np, pad(np, x, ph, pw), kh, kw, sh, sw, oh, ow)
        np.testing.assert_array_equal(cols.copy_to_host(), expected)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("g", CONV_GEOMS, ids=ids)
    def test_col2im_matches_cpu(g, dtype):
        n, c, h, w, (kh, kw), (sh, sw), (ph, pw) = g
        oh, ow = outhw(g)
        cols = np.random.default_rng(2).standard_normal((n, c * kh * kw, oh * ow)).astype(dtype)
        dx = cuda.device_array((n, c, h, w), dtype=dtype)
        kim.col2im(device(cols), dx, (kh, kw), (sh, sw), (ph, pw))
        expected = unpad(ref.col2im(np, cols, (n, c, h + 2 * ph, w + 2 * pw), kh, kw, sh, sw, oh, ow), ph, pw)
        got = dx.copy_to_host()
        assert got.dtype == dtype
        assert rel(got, expected) <= tol(dtype)

    # --- pooling kernels ---------------------------------------------------------------------
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("g", POOL_GEOMS, ids=ids)
    def test_max_pool_matches_cpu(g, dtype):
        n, c, h, w, k, s, p = g
        oh, ow = outhw(g)
        x = distinct((n, c, h, w), dtype, 3)
        y, arg = cuda.device_array((n, c, oh, ow), dtype=dtype), cuda.device_array((n, c, oh, ow), dtype=np.int32)
        kpool.max_forward(device(x), y, arg, k, s, p)
        y_ref, cache = pool_xp.forward(x, k, s, p, "max")
        np.testing.assert_array_equal(y.copy_to_host(), y_ref)
        np.testing.assert_array_equal(arg.copy_to_host(), cache[1])

        dy = np.random.default_rng(4).standard_normal((n, c, oh, ow)).astype(dtype)
        dx = cuda.device_array((n, c, h, w), dtype=dtype)
        kpool.max_backward(device(dy), arg, dx, k, s, p)
        assert rel(dx.copy_to_host(), pool_xp.backward(dy, cache)) <= tol(dtype)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("g", POOL_GEOMS, ids=ids)
    def test_avg_pool_matches_cpu(g, dtype):
        n, c, h, w, k, s, p = g
        oh, ow = outhw(g)
        x = np.random.default_rng(5).standard_normal((n, c, h, w)).astype(dtype)
        y = cuda.device_array((n, c, oh, ow), dtype=dtype)
        kpool.avg_forward(device(x), y, k, s, p)
        y_ref, cache = pool_xp.forward(x, k, s, p, "avg")
        assert rel(y.copy_to_host(), y_ref) <= tol(dtype)

        dy = np.random.default_rng(6).standard_normal((n, c, oh, ow)).astype(dtype)
        dx = cuda.device_array((n, c, h, w), dtype=dtype)
        kpool.avg_backward(device(dy), dx, k, s, p)
        got = dx.copy_to_host()
        assert got.dtype == dtype
        assert rel(got, pool_xp.backward(dy, cache)) <= tol(dtype)

    @pytest.mark.parametrize("x, k, s, p", [
        (np.ones((1, 2, 4, 4)), (2, 2), (1, 1), (1, 1)),  # flat input: the first real element, never padding
        (-np.ones((1, 1, 3, 5)), (3, 2), (2, 1), (1, 0)),  # negative flat: −inf padding still loses
        (np.random.default_rng(7).integers(0, 3, (2, 2, 5, 6)).astype(np.float64), (3, 3), (1, 2), (1, 1)),
        (np.array([[[[1.0, 2.0, 2.0], [2.0, 0.0, 2.0], [1.0, 2.0, 1.0]]]]), (2, 2), (1, 1), (0, 0)),
    ])
    def test_max_pool_ties_go_to_first_maximum(x, k, s, p):
        """Ties: the argmax is the first maximum in row-major window order, as on the CPU."""
        n, c, h, w = x.shape
        oh, ow = out_size(h, k[0], s[0], p[0]), out_size(w, k[1], s[1], p[1])
        y, arg = cuda.device_array((n, c, oh, ow)), cuda.device_array((n, c, oh, ow), dtype=np.int32)
        kpool.max_forward(device(x), y, arg, k, s, p)
        y_ref, cache = pool_xp.forward(x, k, s, p, "max")
        np.testing.assert_array_equal(y.copy_to_host(), y_ref)
        np.testing.assert_array_equal(arg.copy_to_host(), cache[1])
        dy = np.arange(1.0, 1.0 + n * c * oh * ow).reshape(n, c, oh, ow)
        dx = cuda.device_array(x.shape)
        kpool.max_backward(device(dy), arg, dx, k, s, p)
        np.testing.assert_array_equal(dx.copy_to_host(), pool_xp.backward(dy, cache))
        if x.shape == (1, 1, 3, 3):  # spelled out: window (0, 0) holds 1 2 / 2 0 -> the 2 at offset 1
            assert arg.copy_to_host()[0, 0, 0, 0] == 1

    def test_launchers_reject_wrong_shapes():
        x = device(np.zeros((1, 1, 4, 4)))
        with pytest.raises(ValueError, match="expected shape"):
            kim.im2col(x, cuda.device_array((1, 4, 8)), (2, 2), (1, 1), (0, 0))
        with pytest.raises(ValueError, match="expected shape"):
            kpool.avg_forward(x, cuda.device_array((1, 1, 3, 2)), (2, 2), (1, 1), (0, 0))

    # --- the algorithms end to end (numpy as xp: the GEMMs on the host, the kernels simulated) ---
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("g", CONV_GEOMS[:4], ids=ids)
    @pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
    def test_cuda_conv_matches_im2col(g, dtype, chunked, monkeypatch):
        n, c, h, w, k, s, p = g
        if chunked:  # one sample per chunk: the backward rebuilds the columns
            monkeypatch.setattr(cuda_conv, "MAX_COLS_BYTES", 1)
        rng = np.random.default_rng(8)
        f = 2
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wt = rng.standard_normal((f, c) + k).astype(dtype)
        b = rng.standard_normal(f).astype(dtype)
        y, cache = cuda_conv.forward(x, wt, b, s, p)
        y_ref, cache_ref = ref.forward(x, wt, b, s, p)
        assert y.dtype == dtype and (cache[1] is None) == (chunked and n > 1)
        assert rel(y, y_ref) <= tol(dtype) * 10
        dy = rng.standard_normal(y.shape).astype(dtype)
        for got, want in zip(cuda_conv.backward(dy, cache), ref.backward(dy, cache_ref)):
            assert got.dtype == dtype and got.shape == want.shape
            assert rel(got, want) <= tol(dtype) * 10
        dx, dw, db = cuda_conv.backward(dy, cache, need_dx=False)
        assert dx is None and rel(dw, ref.backward(dy, cache_ref)[1]) <= tol(dtype) * 10

    def test_cuda_conv_without_bias():
        rng = np.random.default_rng(9)
        x, wt = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
        y, cache = cuda_conv.forward(x, wt, None, (1, 1), (1, 1))
        y_ref, cache_ref = ref.forward(x, wt, None, (1, 1), (1, 1))
        assert rel(y, y_ref) <= 1e-12
        dx, dw, db = cuda_conv.backward(np.ones_like(y), cache)
        assert db is None and rel(dx, ref.backward(np.ones_like(y), cache_ref)[0]) <= 1e-12

    @pytest.mark.parametrize("mode", ["max", "avg"])
    @pytest.mark.parametrize("g", POOL_GEOMS[1:3], ids=ids)
    def test_cuda_pool_matches_pool_xp(g, mode):
        n, c, h, w, k, s, p = g
        x = distinct((n, c, h, w), np.float32, 10)
        y, cache = cuda_pool.forward(x, k, s, p, mode)
        y_ref, cache_ref = pool_xp.forward(x, k, s, p, mode)
        assert y.dtype == np.float32 and rel(y, y_ref) <= 1e-5
        dy = np.random.default_rng(11).standard_normal(y.shape).astype(np.float32)
        dx = cuda_pool.backward(dy, cache)
        assert dx.dtype == np.float32 and dx.shape == x.shape
        assert rel(dx, pool_xp.backward(dy, cache_ref)) <= 1e-5

    def test_cuda_pool_rejects_unknown_mode():
        with pytest.raises(ValueError, match="mode"):
            cuda_pool.forward(np.zeros((1, 1, 2, 2)), (2, 2), (2, 2), (0, 0), "min")
