"""Convolution algorithms behind one interface (fastcnn.registry): naive loops, stride-trick
einsum, im2col + GEMM, Numba kernels, CUDA kernels. Registered in ``CONV`` on import."""
from .. import registry
from ..registry import CONV, Algo, register
from . import cuda_conv, einsum, im2col, naive, numba_conv

register(CONV, Algo("naive", naive.forward, naive.backward, ("numpy", "cupy"), autotune=False))
register(CONV, Algo("einsum", einsum.forward, einsum.backward, ("numpy", "cupy")))
register(CONV, Algo("im2col", im2col.forward, im2col.backward, ("numpy", "cupy")))
register(CONV, Algo("numba", numba_conv.forward, numba_conv.backward, ("numpy",)))
# Under fake_cupy + Numba's simulator the 'cuda' algorithms are correct but run each GPU thread as
# Python (~10⁴ threads/s): they run only when forced, never picked by 'auto'.
AUTO_CUDA = not cuda_conv.SIMULATED_FAKE
register(CONV, Algo("cuda", cuda_conv.forward, cuda_conv.backward, ("cupy",), autotune=AUTO_CUDA,
                    check=cuda_conv.check))

__all__ = ["CONV", "registry"]
