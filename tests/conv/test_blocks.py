"""kernels.cpu.blocks: every register block and its remainder columns agree with a float64
reference — F4 of 4, 6 and 4 + 6 rows (z_rows4, z_rows6), and rows whose length is not a multiple
of 16 (the remainder loop that reads the weights again, blocks._vector_part)."""
import numpy as np
import pytest

from fastcnn.kernels.cpu import conv


def _reference(x, w2, b, k):
    n, c, h, w = x.shape
    oh, ow = h - k + 1, w - k + 1
    cols = np.stack([x[:, :, p:p + oh, q:q + ow] for p in range(k) for q in range(k)], 2)
    cols = cols.reshape(n, c * k * k, oh, ow).astype(np.float64)
    return np.einsum("fk,nkij->nfij", w2.astype(np.float64), cols) + b[None, :, None, None]


@pytest.mark.parametrize("f", [1, 2, 5, 6, 10])
@pytest.mark.parametrize("c, hw", [(1, 13), (1, 28), (3, 11)])
def test_forward_blocks_and_remainders_equal_the_reference(f, c, hw):
    rng = np.random.default_rng(f * 100 + hw)
    x = rng.standard_normal((5, c, hw, hw)).astype(np.float32)
    w2 = rng.standard_normal((f, c * 25)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    z = _reference(x, w2, b, 5)
    oh = hw - 4
    scale = np.abs(z).max()
    y = conv.conv_forward(x, w2, b, 5, 5, 1, 1, oh, oh, 3)
    np.testing.assert_allclose(y, z, rtol=0, atol=2e-6 * scale)
    poh = oh // 2
    pooled = np.maximum(z[:, :, :2 * poh, :2 * poh].reshape(5, f, poh, 2, poh, 2).max(axis=(3, 5)), 0)
    yp, _ = conv.conv_relu_maxpool_forward(x, w2, b, 5, 5, 1, 1, oh, oh, 2, 2, 2, 2, poh, poh, 3)
    np.testing.assert_allclose(yp, pooled, rtol=0, atol=2e-6 * scale)


@pytest.mark.parametrize("f, c, hw", [(6, 1, 13), (16, 6, 12), (3, 2, 9)])
def test_input_gradient_blocks_and_remainders_equal_the_reference(f, c, hw):
    """dcols_rows4 (its remainder too: oh·ow = 81, 64 and 25 columns a sample) through dx."""
    rng = np.random.default_rng(f + hw)
    x = rng.standard_normal((4, c, hw, hw))
    w2 = rng.standard_normal((f, c * 25))
    oh = hw - 4
    dy = rng.standard_normal((4, f, oh, oh))
    dx, dw, db = conv.conv_backward(x, w2, dy, 5, 5, 1, 1, True, 3)
    ref = np.zeros_like(x)  # dx[n, c, i + p, j + q] += Σ_f w[f, c, p, q] dy[n, f, i, j]
    w = w2.reshape(f, c, 5, 5)
    for p in range(5):
        for q in range(5):
            ref[:, :, p:p + oh, q:q + oh] += np.einsum("fc,nfij->ncij", w[:, :, p, q], dy)
    np.testing.assert_allclose(dx, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-10)
