"""Convolution and pooling algorithms behind one interface (see registry.py)."""
from . import cuda_conv, cuda_pool, einsum, im2col, naive, numba_conv, numba_pool, pool_naive, pool_xp
from .registry import CONV, POOL, Algo, clear_choices, force, forced, register, resolve

register(CONV, Algo("naive", naive.forward, naive.backward, ("numpy", "cupy"), autotune=False))
register(CONV, Algo("einsum", einsum.forward, einsum.backward, ("numpy", "cupy")))
register(CONV, Algo("im2col", im2col.forward, im2col.backward, ("numpy", "cupy")))
register(CONV, Algo("numba", numba_conv.forward, numba_conv.backward, ("numpy",)))
# Under fake_cupy + Numba's simulator the 'cuda' algorithms are correct but run each GPU thread as
# Python (~10⁴ threads/s): they run only when forced, never picked by 'auto'.
_AUTO = not cuda_conv.SIMULATED_FAKE
register(CONV, Algo("cuda", cuda_conv.forward, cuda_conv.backward, ("cupy",), autotune=_AUTO, check=cuda_conv.check))
register(POOL, Algo("naive", pool_naive.forward, pool_naive.backward, ("numpy", "cupy"), autotune=False))
register(POOL, Algo("vectorised", pool_xp.forward, pool_xp.backward, ("numpy", "cupy")))
register(POOL, Algo("numba", numba_pool.forward, numba_pool.backward, ("numpy",)))
register(POOL, Algo("cuda", cuda_pool.forward, cuda_pool.backward, ("cupy",), autotune=_AUTO, check=cuda_pool.check))

__all__ = ["CONV", "POOL", "Algo", "clear_choices", "force", "forced", "register", "resolve"]
