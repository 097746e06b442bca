"""The thread policy: fastcnn computes with BLAS on one thread, scoped, and puts the limit back."""
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from fastcnn import models, threads


def _blas():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_compute_scope_limits_blas_and_restores_it():
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas()
        with threads.compute():
            assert set(_blas()) == {threads.COMPUTE_BLAS_THREADS}
            with threads.compute():  # re-entrant
                assert set(_blas()) == {threads.COMPUTE_BLAS_THREADS}
            assert set(_blas()) == {threads.COMPUTE_BLAS_THREADS}
        assert _blas() == before


def test_compute_scope_restores_when_the_block_raises():
    before = _blas()
    try:
        with threads.compute():
            raise KeyError("boom")
    except KeyError:
        pass
    assert _blas() == before


def test_a_plain_loop_leaves_blas_as_it_was():
    """Sequential.forward/backward run inside the scope, and leave nothing behind."""
    model = models.build("lenet5")
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas()
        y = model.forward(x)
        model.backward(np.ones_like(y))
        assert _blas() == before
