"""Pooling algorithms behind one interface (fastcnn.registry): naive loops, vectorised slices
(any xp), Numba kernels, CUDA kernels. Registered in ``POOL`` on import."""
from ..conv import AUTO_CUDA
from ..registry import POOL, Algo, register
from . import cuda_pool, naive, numba_pool, vectorised

register(POOL, Algo("naive", naive.forward, naive.backward, ("numpy", "cupy"), autotune=False))
register(POOL, Algo("vectorised", vectorised.forward, vectorised.backward, ("numpy", "cupy")))
register(POOL, Algo("numba", numba_pool.forward, numba_pool.backward, ("numpy",)))
register(POOL, Algo("cuda", cuda_pool.forward, cuda_pool.backward, ("cupy",), autotune=AUTO_CUDA,
                    check=cuda_pool.check))

__all__ = ["POOL"]
