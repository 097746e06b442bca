"""kernels/cpu/team.py: every share runs once, errors reach the caller, and the direct, pooling
and im2col kernels give the same results on any number of threads and from several caller
threads at once."""
import threading

import numba
import numpy as np
import pytest
from numba import njit

from fastcnn.kernels.cpu import conv as kd
from fastcnn.kernels.cpu import im2col as ki
from fastcnn.kernels.cpu import pool as kp
from fastcnn.kernels.cpu import team


@njit(nogil=True)
def _mark(out, t, nt):
    out[t] += nt


@pytest.mark.parametrize("nt", [1, 2, 3, 5])
def test_every_share_runs_once(nt):
    out = np.zeros(nt, dtype=np.int64)
    for _ in range(20):
        team.run(nt, _mark, (out,))
    np.testing.assert_array_equal(out, np.full(nt, 20 * nt))


def test_a_share_that_raises_raises_in_the_caller_after_all_shares_finished():
    done = []

    def share(t, nt):
        done.append(t)
        if t == 1:
            raise ValueError("share 1 failed")

    with pytest.raises(ValueError, match="share 1 failed"):
        team.run(3, share, ())
    assert sorted(done) == [0, 1, 2]
    out = np.zeros(3, dtype=np.int64)
    team.run(3, _mark, (out,))  # the team still works afterwards
    np.testing.assert_array_equal(out, [3, 3, 3])


def _case(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 9, 9)).astype(np.float32)
    w2 = rng.standard_normal((5, 3 * 4 * 4)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    return x, w2, b


def _run(x, w2, b, nt):
    args = (4, 4, 1, 1, 6, 6)  # kh, kw, sh, sw, oh, ow
    y, arg = kd.conv_relu_maxpool_forward(x, w2, b, *args, 2, 2, 2, 2, 3, 3, nt)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    dxpad, dw, db = kd.conv_relu_maxpool_backward(x, w2, dy, arg, *args, True, nt)
    z = kd.conv_forward(x, w2, b, *args, nt)
    dz = np.random.default_rng(2).standard_normal(z.shape).astype(np.float32)
    return (y, arg, dxpad, dw, db, z) + tuple(kd.conv_backward(x, w2, dz, *args[:4], True, nt))


def test_outputs_do_not_depend_on_the_thread_count():
    """The forward and dx are computed per sample (equal bit for bit on any thread count); dW
    and db are sums whose order follows the shares (equal to rounding)."""
    x, w2, b = _case(21)
    ref = _run(x, w2, b, 1)
    for nt in (2, 3):
        got = _run(x, w2, b, nt)
        for i in (0, 1, 2, 5, 6):
            np.testing.assert_array_equal(got[i], ref[i])
        for i in (3, 4, 7, 8):
            np.testing.assert_allclose(got[i], ref[i], rtol=1e-5, atol=1e-5)


def test_callers_on_several_threads_get_their_own_results():
    """While one caller holds the team, another runs its shares on its own thread."""
    cases = [_case(17, seed) for seed in range(4)]
    expected = [_run(*c, 2) for c in cases]
    got = [None] * len(cases)

    def work(i):
        for _ in range(10):
            got[i] = _run(*cases[i], 2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, e in zip(got, expected):
        for a, b_ in zip(g, e):
            np.testing.assert_array_equal(a, b_)


def test_team_size_follows_numbas_thread_count():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert team.size(10) == 1
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert team.size(10) == min(10, numba.config.NUMBA_NUM_THREADS)
        assert team.size(1) == 1 and team.size(0) == 1
    finally:
        numba.set_num_threads(before)


def _pool_im2col_outputs():
    """Every pooling and im2col kernel on one small case (ties in the max windows included)."""
    rng = np.random.default_rng(3)
    n, c, f, kh, kw, sh, sw = 7, 3, 4, 3, 3, 1, 1
    x = rng.standard_normal((n, c, 10, 10)).astype(np.float32)
    x[:, :, :2, :2] = 1.0
    oh = ow = 8
    out = []
    y, arg = kp.maxpool_forward(x, 2, 2, 2, 2, 5, 5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    out += [y, arg, kp.maxpool_backward(dy, arg, 10, 10)]
    ya = kp.avgpool_forward(x, 3, 2, 2, 1, 4, 9)  # 3×2 windows, stride 2×1: 4×9 outputs
    dya = rng.standard_normal(ya.shape).astype(np.float32)
    out += [ya, kp.avgpool_backward(dya, 3, 2, 2, 1, 10, 10)]
    cols = ki.im2col(x, kh, kw, sh, sw, oh, ow)
    dcols = rng.standard_normal(cols.shape).astype(np.float32)
    z = rng.standard_normal((f, n * oh * ow)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    dyn = rng.standard_normal((n, f, oh, ow)).astype(np.float32)
    yn = rng.standard_normal((n, f, oh, ow)).astype(np.float32)
    yp, argp = ki.cnhw_bias_relu_maxpool(z, b, n, oh, ow, 2, 2, 2, 2, 4, 4)
    dyp = rng.standard_normal(yp.shape).astype(np.float32)
    out += [cols, ki.col2im(dcols, n, c, 10, 10, kh, kw, sh, sw, oh, ow),
            ki.cnhw_to_nchw_bias(z, b, n, oh, ow, True), ki.cnhw_to_nchw_bias(z, b, n, oh, ow, False),
            ki.nchw_to_cnhw(dyn), ki.nchw_to_cnhw_relu_mask(dyn, yn), ki.dot_rows(z[:, :300].copy(), dcols[:5, :300].copy()),
            yp, argp, ki.maxpool_scatter_cnhw(dyp, argp, oh, ow)]
    return out


def test_pool_and_im2col_kernels_do_not_depend_on_the_thread_count(monkeypatch):
    """Every output is computed per sample (dot_rows: per output element) by the same code on
    any number of shares, so 1, 2 and 3 shares agree bit for bit. The team's size is forced
    through team.size: numba.set_num_threads cannot go above the machine's cores (2 here)."""
    monkeypatch.setattr(team, "size", lambda n: 1)
    ref = _pool_im2col_outputs()
    for nt in (2, 3):
        monkeypatch.setattr(team, "size", lambda n, nt=nt: max(1, min(nt, n)))
        got = _pool_im2col_outputs()
        for g, r in zip(got, ref):
            assert g.dtype == r.dtype and g.shape == r.shape
            np.testing.assert_array_equal(g, r)


def test_on_first_compile_reports_a_compilation_once_and_a_compiled_call_never():
    from fastcnn.kernels.cpu import on_first_compile

    @njit
    def twice(a):
        return a * 2

    seen = []
    with on_first_compile(seen.append):
        twice(1.0)
        twice(np.int32(3))  # a second specialisation: still one call
    assert seen == ["twice"]
    with on_first_compile(seen.append):
        twice(2.0)  # compiled already: nothing to say
    assert seen == ["twice"]
    twice(np.float32(1))  # outside the block: the listener is gone
    assert seen == ["twice"]
