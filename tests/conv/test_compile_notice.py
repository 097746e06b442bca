"""kernels.cpu.on_first_compile: the first-run notice fires only when Numba compiles."""
import numpy as np
from numba import njit


def test_on_first_compile_reports_a_compilation_once_and_a_compiled_call_never():
    from fastcnn.kernels.cpu import on_first_compile

    @njit
    def twice(a):
        return a * 2

    seen = []
    with on_first_compile(seen.append):
        twice(1.0)
        twice(np.int32(3))  # a second specialisation: still one call
    assert seen == ["twice"]
    with on_first_compile(seen.append):
        twice(2.0)  # compiled already: nothing to say
    assert seen == ["twice"]
    twice(np.float32(1))  # outside the block: the listener is gone
    assert seen == ["twice"]
