"""The machine a benchmark ran on: CPU, cores, threads, library versions, GPU, date."""
from __future__ import annotations

import os
import platform
import time


def cpu_model() -> str:
    """The CPU's marketing name: /proc/cpuinfo's "model name" on Linux, else platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def blas() -> str:
    """The BLAS numpy uses, as threadpoolctl sees it: "openblas 0.3.27 (2 threads)"."""
    try:
        import numpy  # noqa: F401  (loads the BLAS so that threadpoolctl can find it)
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
                     for i in libs) or "none found"


def gpu() -> str | None:
    """The name of CUDA device 0 when CuPy is installed and sees one, else None."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        return None


def threads_in_use() -> int:
    """The thread count in force for Numba's parallel kernels (== BLAS's after set_threads)."""
    try:
        import numba

        return numba.get_num_threads()
    except Exception:
        return os.cpu_count() or 1


def info(threads: int | None = None, backend: str = "numpy") -> dict:
    """Everything the header of a results file names, as an ordered dict of strings."""
    import numpy

    try:
        import numba
        numba_v = numba.__version__
    except ImportError:
        numba_v = "not installed"
    d = {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count() or 1),
        "threads": str(threads if threads is not None else threads_in_use()),
        "backend": backend,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": numba_v,
        "blas": blas(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    g = gpu()
    if g:
        d["gpu"] = g
    return d


def header_lines(d: dict) -> list:
    """``info()`` as "key: value" lines for the head of a table."""
    return [f"{k}: {v}" for k, v in d.items()]
