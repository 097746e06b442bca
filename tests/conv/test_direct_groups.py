"""The direct kernels' sample groups: the size rule, and results that do not depend on it."""
import numpy as np
import pytest

from fastcnn.kernels.cpu import conv as kd


def test_group_size_rule():
    # ~WIDTH columns: L = 16 -> 32 samples, L = 64 -> 8, L >= WIDTH -> 1
    assert kd.group(150, 16, 1024, 2, 4) == kd.WIDTH // 16
    assert kd.group(150, 64, 1024, 2, 4) == kd.WIDTH // 64
    assert kd.group(25, 576, 1024, 2, 4) == 1
    # the unrolled buffer stays within GROUP_BYTES: K = 576, L = 16 -> 14 samples of 36 KiB
    assert kd.group(576, 16, 1024, 2, 4) == kd.GROUP_BYTES // (576 * 16 * 4) == 14
    # at least one group per thread: 20 samples on 2 threads -> groups of 10
    assert kd.group(150, 16, 20, 2, 4) == 10
    assert kd.group(10**6, 16, 20, 2, 4) == 1


@pytest.mark.parametrize("n", [1, 7, 33])
def test_results_do_not_depend_on_the_group_size(n, monkeypatch):
    """Groups of 1 (one sample at a time) and the default groups, with a short last group,
    give the same outputs and gradients (float64: only the summation order of dW differs)."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 3, 9, 9))
    w2 = rng.standard_normal((5, 3 * 4 * 4))
    b = rng.standard_normal(5)
    args = (4, 4, 1, 1, 6, 6)  # kh, kw, sh, sw, oh, ow: L = 36
    outs = {}
    for width in (1, kd.WIDTH):
        monkeypatch.setattr(kd, "WIDTH", width)
        y, arg = kd.conv_relu_maxpool_forward(x, w2, b, *args, 2, 2, 2, 2, 3, 3, 2)
        dy = np.random.default_rng(0).standard_normal(y.shape)
        back = kd.conv_relu_maxpool_backward(x, w2, dy, arg, *args, True, 2)
        z = kd.conv_forward(x, w2, b, *args, 2)
        outs[width] = (y, arg, z) + tuple(back)
    assert kd.group(48, 36, n, 2, 8) == min(-(-kd.WIDTH // 36), -(-n // 2))
    for a, b_ in zip(outs[1], outs[kd.WIDTH]):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)
