"""kernels/cpu/cache_stamp.py: the kernels' Numba cache is stamped with every source file of
their folder (they inline each other's functions), and nothing else's cache is touched."""
import os

import numba
from numba.core import caching

from fastcnn.kernels.cpu import cache_stamp, conv, pool, unroll


def test_the_kernels_are_cached_under_the_folder_stamp():
    made = conv._backward_kernel(conv._kind(1, 1, 8)).fn  # a share made by a factory (a closure) as well
    for fn in (made, pool.relu_maxpool_2x2, unroll.unroll):
        locator = fn._cache._impl._locator
        assert getattr(type(locator), "_fastcnn_kernels", False)
        assert locator.get_source_stamp() == cache_stamp.stamp()


def test_other_functions_keep_numba_s_own_locator(tmp_path):
    @numba.njit(cache=True)
    def elsewhere(x):
        return x + 1

    locator = elsewhere._cache._impl._locator
    assert not getattr(type(locator), "_fastcnn_kernels", False)
    assert type(locator) in caching.CacheImpl._locator_classes


def test_install_is_idempotent():
    before = list(caching.CacheImpl._locator_classes)
    cache_stamp.install()
    assert caching.CacheImpl._locator_classes == before


def test_the_stamp_changes_with_any_source_file_of_the_folder(tmp_path):
    for name, text in (("a.py", "x = 1\n"), ("b.py", "y = 2\n"), ("notes.txt", "n\n")):
        (tmp_path / name).write_text(text)
    first = cache_stamp.stamp(str(tmp_path))
    (tmp_path / "notes.txt").write_text("other\n")  # not a source file
    assert cache_stamp.stamp(str(tmp_path)) == first
    (tmp_path / "b.py").write_text("y = 3\n")  # one dependency edited, a.py untouched
    os.utime(tmp_path / "b.py", ns=(1, 1))
    changed = cache_stamp.stamp(str(tmp_path))
    assert changed != first
    (tmp_path / "c.py").write_text("")
    assert cache_stamp.stamp(str(tmp_path)) not in (first, changed)
