"""kernels.cpu.launch: share kernels run on Numba's threads, each once, with the types they
were compiled for; an exception on a worker reaches the caller."""
import numba
import numpy as np
import pytest
from numba import njit

from fastcnn.kernels.cpu.launch import SPLIT, Shares, shares, span, threads


@njit(nogil=True)
def _record(t, nt, out, ids):
    out[t] += 1 + 10 * nt  # += : a share run twice would show
    ids[t] = numba.get_thread_id()


@njit(nogil=True)
def _scaled_copy(t, nt, x, scale, out):
    lo, hi = span(t, nt, x.shape[0])
    for i in range(lo, hi):
        out[i] = x[i] * scale


@njit(nogil=True)
def _check_positive(t, nt, x, out):
    lo, hi = span(t, nt, x.shape[0])
    for i in range(lo, hi):
        if x[i] < 0:
            raise ValueError("a negative entry")
        out[i] = x[i]


@njit(nogil=True)
def _first_share_slow(t, nt, spins, ids, sink):
    ids[t] = numba.get_thread_id()
    if t == 0:
        acc = 0.0
        for i in range(spins):
            acc += (i % 7) * 1e-9
        sink[0] = acc


@pytest.mark.parametrize("nt", [1, 2, 5, 17])
def test_each_share_runs_once_with_its_index_and_the_count(nt):
    out = np.zeros(nt, dtype=np.int64)
    ids = np.full(nt, -1, dtype=np.int64)
    Shares(_record)(nt, out, ids)
    np.testing.assert_array_equal(out, 1 + 10 * nt)
    assert (ids >= 0).all()


def test_shares_run_on_more_than_one_thread():
    if numba.get_num_threads() < 2:
        pytest.skip("one Numba thread")
    out = np.zeros(2, dtype=np.int64)
    ids = np.full(2, -1, dtype=np.int64)
    Shares(_record)(2, out, ids)
    assert ids[0] != ids[1]


@pytest.mark.parametrize("n, nt", [(0, 3), (1, 3), (7, 2), (10, 3), (64, 4)])
def test_span_splits_a_range_into_contiguous_near_equal_parts(n, nt):
    parts = [span(t, nt, n) for t in range(nt)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1


def test_a_running_thread_takes_over_the_shares_a_busy_one_has_not_started():
    """Share 0 runs for a long time (≈ 0.1 s); the other worker takes every other share meanwhile
    instead of leaving half of them queued behind share 0 (a fixed split would)."""
    if numba.get_num_threads() < 2:
        pytest.skip("one Numba thread")
    nt = 16
    ids = np.full(nt, -1, dtype=np.int64)
    shares = Shares(_first_share_slow)
    shares(nt, 10, ids, np.zeros(1))  # compile
    shares(nt, 60_000_000, ids, np.zeros(1))
    assert (ids[1:] == ids[1]).all() and ids[1] != ids[0]


def test_shares_is_split_per_thread_at_most_n():
    assert shares(0) == 1 and shares(3) == 3
    assert shares(10**6) == SPLIT * numba.get_num_threads()


def test_each_argument_type_gets_its_own_compiled_share():
    """float32, float64, a strided view, a read-only array and an int scale: every call
    gives the exact result, so no share ran with another call's types."""
    shares = Shares(_scaled_copy)
    rng = np.random.default_rng(0)
    base = rng.standard_normal(41)
    readonly = base.copy()
    readonly.flags.writeable = False
    for x, scale in [(base.astype(np.float32), 2.0), (base, 2.0), (base[::2], 3.0), (readonly, 0.5),
                     (base.astype(np.float32), 3)]:
        out = np.empty(len(x), dtype=x.dtype)
        shares(threads(len(x)), x, scale, out)
        np.testing.assert_array_equal(out, (x * scale).astype(x.dtype))
    assert len(shares._addresses) == 5


def test_an_exception_in_a_share_reaches_the_caller():
    shares = Shares(_check_positive)
    out = np.zeros(6)
    shares(2, np.arange(6.0), out)
    np.testing.assert_array_equal(out, np.arange(6.0))
    with pytest.raises(ValueError, match="a negative entry"):
        shares(2, np.array([1.0, 2.0, 3.0, 4.0, -5.0, 6.0]), out)


def test_threads_is_numba_s_count_at_most_n_at_least_one():
    assert threads(0) == 1
    assert threads(1) == 1
    assert threads(10**6) == numba.get_num_threads()


def test_a_plain_python_share_runs_in_turn():
    """With NUMBA_DISABLE_JIT=1 the kernels are plain functions: the shares still all run."""
    seen = []
    Shares(lambda t, nt, out: seen.append((t, nt)))(3, None)
    assert seen == [(0, 3), (1, 3), (2, 3)]


# --- all threads or one, as timed (launch.Pace) ------------------------------------------------

def _drive(pace, seconds_of):
    """One call through ``pace`` the way Shares makes it: -> whether it ran on one thread."""
    one = pace.one_thread()
    pace.record(one, seconds_of(one))
    return one


def test_pace_runs_the_faster_way_and_probes_the_other_less_and_less_often():
    from fastcnn.kernels.cpu.launch import PROBE, PROBE_MAX, WARM, Pace

    pace = Pace()
    ways = [_drive(pace, lambda one: 2e-3 if one else 1e-3) for _ in range(2000)]
    assert ways[:WARM] == [False] * WARM and ways[WARM] is True  # all threads first, then one probe
    probes = [i for i, one in enumerate(ways) if one]
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    assert gaps[0] == 2 * PROBE and gaps == sorted(gaps) and gaps[-1] == PROBE_MAX  # each probe agreed
    assert len(probes) < 2000 / PROBE_MAX + 8


def test_pace_moves_to_one_thread_when_it_becomes_faster_and_back():
    from fastcnn.kernels.cpu.launch import PROBE_MAX, Pace

    pace = Pace()
    busy = [False]
    seconds = lambda one: (1.5e-3 if one else 4e-3) if busy[0] else (2e-3 if one else 1e-3)  # noqa: E731
    for _ in range(500):
        _drive(pace, seconds)
    assert pace.one is False
    busy[0] = True  # a busy process beside: all threads are slow now
    ways = [_drive(pace, seconds) for _ in range(PROBE_MAX + 50)]
    assert sum(ways[-50:]) >= 49  # one thread (but for a probe), within one probe interval
    busy[0] = False
    ways = [_drive(pace, seconds) for _ in range(PROBE_MAX + 50)]
    assert sum(ways[-50:]) <= 1


def test_pace_undoes_a_switch_made_on_one_lucky_probe():
    from fastcnn.kernels.cpu.launch import Pace

    pace = Pace()
    for _ in range(100):
        _drive(pace, lambda one: 2e-3 if one else 1e-3)
    pace.next_probe = pace.calls + 1
    _drive(pace, lambda one: 0.5e-3)  # a probe on one thread, much faster than usual
    assert pace.one is True
    ways = [_drive(pace, lambda one: 2e-3 if one else 1e-3) for _ in range(10)]
    assert ways[0] is True and not any(ways[2:])  # its own next time puts it back


def test_a_call_on_one_thread_runs_every_share_there_in_order_and_restores_the_thread_count():
    if numba.get_num_threads() < 2:
        pytest.skip("one Numba thread")
    nt = 8
    shares = Shares(_record)
    out = np.zeros(nt, dtype=np.int64)
    ids = np.full(nt, -1, dtype=np.int64)
    shares(nt, out, ids)  # compile
    (pace,) = shares._paces.values()
    pace.one, pace.next_probe = True, 10**9  # as if timed faster on one thread
    before = numba.get_num_threads()
    out[:] = 0
    shares(nt, out, ids)
    np.testing.assert_array_equal(out, 1 + 10 * nt)
    assert len(set(ids)) == 1
    assert numba.get_num_threads() == before


def test_a_failing_share_on_one_thread_still_restores_the_thread_count():
    if numba.get_num_threads() < 2:
        pytest.skip("one Numba thread")
    shares = Shares(_check_positive)
    out = np.zeros(6)
    shares(2, np.arange(6.0), out)
    (pace,) = shares._paces.values()
    pace.one, pace.next_probe = True, 10**9
    before = numba.get_num_threads()
    with pytest.raises(ValueError, match="a negative entry"):
        shares(2, np.array([1.0, 2.0, 3.0, 4.0, -5.0, 6.0]), out)
    assert numba.get_num_threads() == before


def test_conv_results_are_the_same_bit_for_bit_on_one_thread_and_on_all():
    from fastcnn.kernels.cpu import conv, launch

    if numba.get_num_threads() < 2:
        pytest.skip("one Numba thread")
    rng = np.random.default_rng(3)
    xpad = rng.standard_normal((37, 3, 12, 12)).astype(np.float32)
    w2 = rng.standard_normal((8, 27)).astype(np.float32)
    dy = rng.standard_normal((37, 8, 10, 10)).astype(np.float32)
    nt = launch.shares(37)

    def run():
        return conv.conv_backward(xpad, w2, dy, 3, 3, 1, 1, True, nt)

    before = launch.ADAPT
    try:
        launch.ADAPT = False
        parallel = run()
        launch.ADAPT = True
        run()
        for pace in conv._backward_kernel(conv._kind(1, 1, 10))._paces.values():
            pace.one, pace.next_probe = True, 10**9
        one = run()
    finally:
        launch.ADAPT = before
    for a, b in zip(parallel, one):
        np.testing.assert_array_equal(a, b)
