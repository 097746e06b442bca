"""kernels/cpu/team.py: every share runs once, errors reach the caller, and the direct kernels
give the same results on any number of threads and from several caller threads at once."""
import threading

import numpy as np
import pytest
from numba import njit

from fastcnn.kernels.cpu import conv as kd
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
