import numpy as np
import pytest

from fastcnn.augment import (Augmenter, AugmentedBatchIterator, affine_warp, gaussian_blur, maybe_wrap,
                             parse_spec)
from fastcnn.data import BatchIterator


def _img(seed=0, n=4, h=28, w=28):
    return np.random.default_rng(seed).integers(1, 256, (n, h, w)).astype(np.uint8)


def test_parse_spec():
    assert parse_spec("shift,rotate=15") == {"shift": 0.1, "rotate": 15.0}
    assert parse_spec(None) == {}
    for bad, msg in (("wobble", "unknown transform 'wobble'"), ("shift=x", "must be a number"),
                     ("rotate=-3", "≥ 0"), ("shift,shift", "twice"), ("scale=1.5", "must be < 1"),
                     (",", "names no transform")):
        with pytest.raises(ValueError, match="--augment") as e:
            parse_spec(bad)
        assert msg in str(e.value)


def test_integer_shift_moves_pixels_exactly():
    x = _img()
    m = np.tile(np.eye(2), (4, 1, 1))
    t = np.array([[3, 0], [0, -2], [-1, 4], [0, 0]], float)  # (dx, dy)
    y = affine_warp(x, m, t)
    assert np.array_equal(y[0, :, 3:], x[0, :, :-3]) and not y[0, :, :3].any()
    assert np.array_equal(y[1, :-2, :], x[1, 2:, :]) and not y[1, -2:, :].any()
    assert np.array_equal(y[2, 4:, :-1], x[2, :-4, 1:]) and not y[2, :4].any() and not y[2, :, -1].any()
    assert np.array_equal(y[3], x[3])


def test_rotation_by_90_degrees_is_rot90():
    x = _img(1, n=1)
    rot = np.array([[[0.0, -1.0], [1.0, 0.0]]])  # +90° in (col, row) coordinates, rows pointing down
    y = affine_warp(x, rot, np.zeros((1, 2)))
    assert np.array_equal(y[0], np.rot90(x[0], k=-1).astype(np.float32))


def test_random_shift_is_whole_pixels_within_bound():
    x = np.zeros((50, 28, 28), np.uint8)
    x[:, 13, 13] = 255
    y = Augmenter("shift=0.1")(x, np.random.default_rng(0))
    pos = [np.argwhere(img == 255) for img in y]
    assert all(len(p) == 1 for p in pos)  # one pixel, moved, not smeared
    d = np.array([p[0] - 13 for p in pos])
    assert np.abs(d).max() <= 3 and np.abs(d).max() >= 1 and y.sum(axis=(1, 2)).tolist() == [255] * 50


def test_noise_blur_and_shapes():
    rng = np.random.default_rng(0)
    x = np.full((8, 1, 28, 28), 128, np.uint8)
    y = Augmenter("noise=0.1")(x, rng)
    assert y.shape == x.shape and y.dtype == np.uint8
    assert abs(float(y.astype(float).std()) - 25.5) < 1.5 and abs(float(y.mean()) - 128) < 1
    # blur keeps a constant image's interior constant and spreads a point symmetrically
    pt = np.zeros((1, 9, 9), np.float32)
    pt[0, 4, 4] = 100
    b = gaussian_blur(pt, np.array([1.0]))
    assert b.sum() == pytest.approx(100, rel=1e-5) and b[0, 4, 4] < 100
    assert b[0, 4, 3] == pytest.approx(b[0, 4, 5]) == pytest.approx(b[0, 3, 4])
    # rotate/scale/squeeze keep shape and dtype, and do change the image
    z = Augmenter("rotate=20,scale=0.2,squeeze=0.2,blur=1")(_img(2, 6), np.random.default_rng(1))
    assert z.shape == (6, 28, 28) and z.dtype == np.uint8 and not np.array_equal(z, _img(2, 6))
    with pytest.raises(TypeError, match="uint8"):
        Augmenter("shift")(np.zeros((2, 28, 28)), rng)


def test_augmented_batches_and_mistakes():
    from fastcnn import models

    x, y = _img(3, 40), np.arange(40) % 10
    it = AugmentedBatchIterator(x, y, 16, augment="shift", seed=0)
    batches = list(it)
    assert [len(b[1]) for b in batches] == [16, 16, 8] and batches[0][0].shape == (16, 1, 28, 28)
    again = AugmentedBatchIterator(x, y, 16, augment="shift", seed=0)
    assert np.array_equal(next(iter(again))[0], batches[0][0])  # reproducible per (seed, epoch, batch)
    model = models.build("mlp", hidden=8)
    it = AugmentedBatchIterator(x, y, 16, mistakes=True, model=model, seed=0)
    first = sum(len(b[1]) for b in it)
    second = sum(len(b[1]) for b in it)  # epoch 1: + augmented copies of the mistakes
    assert first == 40 and second == 40 + it.last_mistakes and it.last_mistakes > 0
    assert len(it) == 3

    class C:  # a config without the options leaves the iterator alone
        augment, augment_mistakes = None, False
    base = BatchIterator(x, y, 16)
    assert maybe_wrap(base, C, model) is base
    C.augment = "noise"
    assert isinstance(maybe_wrap(base, C, model), AugmentedBatchIterator)


def test_translate_moves_whole_pixels_up_to_p_each_way():
    x = np.zeros((200, 28, 28), np.uint8)
    x[:, 14, 14] = 255  # one bright pixel: where it lands is the shift
    y = Augmenter("translate=2")(x, np.random.default_rng(0))
    pos = np.array([np.unravel_index(np.argmax(im), im.shape) for im in y]) - 14
    assert (y.reshape(200, -1).max(1) == 255).all() and (y.reshape(200, -1) > 0).sum(1).max() == 1  # exact moves
    assert np.abs(pos).max() == 2 and set(np.unique(pos)) == {-2, -1, 0, 1, 2}
    assert parse_spec("translate") == {"translate": 2.0}
    for bad, msg in (("translate=1.5", "whole number"), ("shift,translate=1", "not both")):
        with pytest.raises(ValueError, match=msg):
            parse_spec(bad)
