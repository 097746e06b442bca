"""The GPU convolution: im2col / col2im as Numba CUDA kernels (kernels/cuda/im2col.py), GEMMs in CuPy (cuBLAS).

Same function and same column layout as im2col.py:
    cols[n] = im2col(x[n])                (C·kh·kw, oh·ow), padding handled inside the kernel
    y[n] = W₂ @ cols[n] + b               W₂ = W.reshape(F, C·kh·kw)
    dW₂ = Σ_n dy[n] @ cols[n]ᵀ,  db = Σ_{n,i,j} dy,  dx[n] = col2im(W₂ᵀ @ dy[n])
col2im is a gather kernel (one thread per input element, no atomics) writing the
unpadded dx directly, so neither pass makes a padded copy of x.

Memory: as im2col.py, the columns of one chunk of the batch stay under
``MAX_COLS_BYTES``; they are kept for the backward only when the whole batch fits.

Importing this module needs neither CuPy nor a GPU; ``check()`` says what is missing.
The functions themselves only ask ``xp`` for array operations, so under Numba's CUDA
simulator they also run on numpy arrays (that is how they are tested without a GPU).
"""
from __future__ import annotations

import os

from .. import backend
from . import im2col
from ..geometry import check_geometry
from .im2col import chunk_size

MAX_COLS_BYTES = im2col.MAX_COLS_BYTES
#: The stand-in CuPy under Numba's simulator (both variables are read at start, never written).
SIMULATED_FAKE = os.environ.get(backend.FAKE_ENV) == "1" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
_reason: list = []  # [] until check() has looked; then [None] or [message]


def _find_reason():
    """None when the 'cuda' algorithms can run here, else why not."""
    try:
        xp = backend.get("cupy")
    except backend.BackendError as e:
        return str(e)
    fake = xp.__name__ != "cupy"  # FASTCNN_FAKE_CUPY=1: host memory, so only the simulator can run kernels
    try:
        from numba import cuda
    except Exception as e:  # numba-cuda missing or broken
        return (f"the 'cuda' algorithms need Numba's CUDA target, which does not import ({e}): "
                "run  pip install 'numba-cuda[cu12]'")
    simulated = "simulator" in getattr(cuda.jit, "__module__", "")
    if fake:
        return None if simulated else (f"{backend.FAKE_ENV}=1 is set: its arrays live in host memory, so the "
                                       "'cuda' algorithms run only under Numba's simulator: set NUMBA_ENABLE_CUDASIM=1")
    if simulated:
        return ("NUMBA_ENABLE_CUDASIM=1 is set: Numba's CUDA simulator cannot run kernels on CuPy "
                "arrays; unset it to use the 'cuda' algorithms")
    try:
        ok = cuda.is_available()
    except Exception as e:
        return f"Numba cannot use the CUDA device ({e})"
    if not ok:
        return ("CuPy sees a CUDA device but Numba does not (python -c 'from numba import cuda; "
                "cuda.detect()' says why; a CUDA toolkit matching numba-cuda may be missing)")
    return None


def check() -> None:
    """Raise BackendError saying why the 'cuda' algorithms cannot run here; looked up once."""
    if not _reason:
        _reason.append(_find_reason())
    if _reason[0] is not None:
        raise backend.BackendError(_reason[0])


def forward(x, w, b, stride, padding):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> y (N, F, oh, ow), cache."""
    from ..kernels.cuda import im2col as kern

    xp = backend.array_module(x)
    f, c, kh, kw = w.shape
    n = x.shape[0]
    oh, ow = check_geometry("cuda conv", x.shape[2:], (kh, kw), stride, padding)
    k, L = c * kh * kw, oh * ow
    w2 = w.reshape(f, k)
    step = chunk_size(n, k * L * x.itemsize, MAX_COLS_BYTES)
    y = xp.empty((n, f, L), dtype=x.dtype)
    cols_all = None
    for s in range(0, n, step):
        xs = x[s:s + step]
        cols = kern.im2col(xs, xp.empty((xs.shape[0], k, L), dtype=x.dtype), (kh, kw), stride, padding)
        xp.matmul(w2, cols, out=y[s:s + step])
        if step >= n:
            cols_all = cols
    if b is not None:
        y += b.reshape(1, f, 1)
    return y.reshape(n, f, oh, ow), (x, cols_all, w, stride, padding, b is not None)


def backward(dy, cache, need_dx=True):
    """dy (N, F, oh, ow) -> dx (N, C, H, W) or None, dW (F, C, kh, kw), db (F,) or None."""
    from ..kernels.cuda import im2col as kern

    x, cols_all, w, stride, padding, has_b = cache
    xp = backend.array_module(dy)
    f, c, kh, kw = w.shape
    n, _, oh, ow = dy.shape
    k, L = c * kh * kw, oh * ow
    dy3 = dy.reshape(n, f, L)
    w2 = w.reshape(f, k)
    dw2 = xp.zeros_like(w2)
    dx = xp.empty(x.shape, dtype=dy.dtype) if need_dx else None
    step = chunk_size(n, k * L * dy.itemsize, MAX_COLS_BYTES)
    for s in range(0, n, step):
        g = dy3[s:s + step]
        cols = cols_all
        if cols is None:
            cols = kern.im2col(x[s:s + step], xp.empty((g.shape[0], k, L), dtype=x.dtype), (kh, kw), stride, padding)
        dw2 += xp.tensordot(g, cols, axes=([0, 2], [0, 2]))
        if need_dx:
            kern.col2im(xp.matmul(w2.T, g), dx[s:s + step], (kh, kw), stride, padding)
    db = dy.sum(axis=(0, 2, 3)) if has_b else None
    return dx, dw2.reshape(w.shape), db
