"""The one clock of fastcnn's timings (the tuner, `fastcnn bench`, the profiler).

A reading waits for the device first (``backend.synchronize``), so queued GPU work is counted
where it was issued; results are medians, so that a burst of load from another process on a
shared machine moves them little.
"""
from __future__ import annotations

import statistics
import time

from . import backend


def clock(xp=None) -> float:
    """Seconds (``time.perf_counter``) after ``xp``'s device has finished its queued work."""
    if xp is not None:
        backend.synchronize(xp)
    return time.perf_counter()


def seconds(fn, *args, xp=None):
    """(``fn(*args)``, the seconds it took, device work included)."""
    t0 = clock(xp)
    out = fn(*args)
    return out, clock(xp) - t0


def median(values) -> float:
    """The median of a non-empty sequence of timings."""
    return statistics.median(values)
