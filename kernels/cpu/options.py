"""Compilation options shared by the CPU kernels."""
try:
    from numba.core.cpu import ParallelOptions
except ImportError:  # a Numba that moved it: plain parallel=True, slower but correct
    ParallelOptions = None

#: ``parallel=`` for the one parallel kernel (launch._launch): only its explicit ``prange`` loop
#: runs on the thread pool. With ``parallel=True`` Numba also turns np.zeros, sums and array
#: expressions into parallel regions of their own, and each region wakes the pool (≈ 0.03–0.05
#: ms with OMP_WAIT_POLICY=PASSIVE on the 2-core machine): the direct backward, when it was a
#: prange kernel, had six and spent ≈ 0.16 ms per call on them before doing any work.
#: (A ParallelOptions object, not a dict: Numba empties a dict it is given.)
PRANGE_ONLY = (ParallelOptions(dict(comprehension=False, reduction=False, inplace_binop=False, setitem=False,
                                    numpy=False, stencil=False, fusion=False))
               if ParallelOptions is not None else True)
