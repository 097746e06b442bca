"""The CUDA C of every fastcnn.gpu_kernels kernel, run on the CPU, against its NumPy twin.

The stand-in runs a kernel's NumPy twin; on a GPU, CuPy compiles the C in ``KERNELS``. So that
the C is not first run on a GPU, each operation is compiled here with the host C++ compiler as
CuPy would run it — the body inside a loop over ``i``, ``raw`` parameters as pointers indexed
flat, the other array parameters as the i-th element, scalars by value — and its results are
compared with the twin's on the same inputs. (Skipped without a C++ compiler.)
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from fastcnn import gpu_kernels

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to run the kernels' C on the CPU")

CTYPES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long long", "uint8": "unsigned char"}
HOST_PREAMBLE = """
#include <cstddef>
#include <cmath>
#include <cstddef>
using namespace std;
static inline float mul_rn(float a, float b) { return a * b; }
static inline double mul_rn(double a, double b) { return a * b; }
static inline float add_rn(float a, float b) { return a + b; }
static inline double add_rn(double a, double b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
"""


def _params(s):
    out = []
    for p in (p.strip() for p in s.split(",") if p.strip()):
        w = p.split()
        out.append((w[0] == "raw", w[-2], w[-1]))
    return out


#: Non-raw input parameters that are arrays (element i); the other non-raw inputs are scalars.
ARRAY_INPUTS = {"adam": {"g"}, "sgd": {"g"}, "ema": {"w"}, "bn_backward": {"inv_std"}, "bn_apply": {"x"},
                "bn_bapply": {"dy", "xhat"}}


def _function(name, t="float32"):
    """The C++ function ``run_<name>(n, args)``: the kernel's operation in a loop over i."""
    inp, outp, op, _ = gpu_kernels.KERNELS[name]
    ctype = {**CTYPES, "T": CTYPES[t]}
    n_in = len(_params(inp))
    lines = []
    for j, (raw, c, pname) in enumerate(_params(inp) + _params(outp)):
        ct = ctype[c]
        if raw:
            lines.append(f"{ct}* {pname} = ({ct}*)args[{j}];")
        elif j >= n_in or pname in ARRAY_INPUTS.get(name, ()):
            lines.append(f"{ct}& {pname} = (({ct}*)args[{j}])[i];")
        else:
            lines.append(f"const {ct} {pname} = *({ct}*)args[{j}];")
    return (f'extern "C" void run_{name}(ptrdiff_t n, void** args) {{\n  typedef {ctype["T"]} T;\n'
            "  for (ptrdiff_t i = 0; i < n; i++) {\n    " + "\n    ".join(lines) + "\n    {" + op + "}\n  }\n}\n")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    """Every kernel's C, compiled once into one shared library (float32)."""
    d = tmp_path_factory.mktemp("kernels_c")
    (d / "kernels.cpp").write_text(HOST_PREAMBLE + "".join(_function(n) for n in gpu_kernels.KERNELS))
    cc = subprocess.run([CXX, "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(d / "kernels.so"),
                         str(d / "kernels.cpp")], capture_output=True, text=True)
    assert cc.returncode == 0, f"the kernels' C does not compile:\n{cc.stderr}"
    return ctypes.CDLL(str(d / "kernels.so"))


def _run_c(name, args, lib):
    """Run kernel ``name``'s C on the host on ``args`` (as for the kernel); outputs filled in place."""
    inp, outp, _, _ = gpu_kernels.KERNELS[name]
    n_in = len(_params(inp))
    holders, size = [], 1
    for j, ((raw, c, pname), a) in enumerate(zip(_params(inp) + _params(outp), args)):
        if isinstance(a, np.ndarray):
            assert a.flags.c_contiguous and (c != "T" or a.dtype == np.float32)
            if not raw:
                size = max(size, a.size)
            holders.append(a)
        else:
            holders.append(np.array(a, dtype=np.float32 if c == "T" else c))
    ptrs = (ctypes.c_void_p * len(holders))(*[h.ctypes.data for h in holders])
    getattr(lib, f"run_{name}")(ctypes.c_ssize_t(size), ptrs)


def _compare(name, args, lib, rtol=1e-6, atol=1e-7):
    n_in = len(_params(gpu_kernels.KERNELS[name][0]))
    a_c = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    a_py = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    _run_c(name, a_c, lib)
    gpu_kernels.twin(name)(*a_py)
    for got, want in zip(a_c[n_in:], a_py[n_in:]):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name, equal_nan=True)


rng = np.random.default_rng(0)
F32 = np.float32


def r(*shape, dtype=F32):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("geo", [(3, 2, 2, 1, 1, 1), (2, 2, 1, 1, 0, 0), (3, 3, 2, 2, 1, 1)])
def test_im2col_and_col2im(lib, geo):
    n, c, h, w = 2, 3, 5, 6
    kh, kw, sh, sw, ph, pw = geo
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    g = (c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, n)
    _compare("im2col_t", [r(n, c, h, w), *g, np.zeros((c * kh * kw, n * oh * ow), F32)], lib)
    _compare("col2im_t", [r(c * kh * kw, n * oh * ow), *g, np.zeros((n, c, h, w), F32)], lib, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pool", [(2, 2, 2, 2), (3, 3, 2, 2), (2, 3, 1, 2)])
def test_conv_pool_and_scatter(lib, pool):
    f, n, oh, ow = 3, 2, 6, 7
    pkh, pkw, psh, psw = pool
    qh, qw = (oh - pkh) // psh + 1, (ow - pkw) // psw + 1
    z = r(f, n, oh, ow)
    z[0, 0, :2, :2] = 1.5  # ties: the first maximum wins
    args = [z, r(f), f, n, oh, ow, pkh, pkw, psh, psw, qh, qw, np.zeros((n, f, qh, qw), F32),
            np.zeros((n, f, qh, qw), np.int32)]
    _compare("conv_pool", args, lib)
    arg = args[-1].copy()
    gpu_kernels.twin("conv_pool")(*args[:-2], args[-2], arg)
    _compare("pool_scatter", [r(n, f, qh, qw), arg, f, n, oh, ow, pkh, pkw, psh, psw, qh, qw,
                              np.zeros((f, n * oh * ow), F32)], lib, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("relu", [0, 1])
def test_linear_epilogues(lib, relu):
    _compare("bias_act", [r(5), 5, relu, r(4, 5)], lib)
    _compare("relu_colsum", [r(4, 5), r(4, 5), 4, 5, np.zeros((4, 5), F32), np.zeros(5, F32)], lib, rtol=1e-5)


def test_batchnorm(lib):
    n, f, hw = 3, 4, 6
    x = r(n, f, hw) * 2 + 1
    _compare("bn_train", [x, r(f), r(f), n, f, hw, 1e-5, 0.1, 0.1 * 18 / 17, np.zeros_like(x), np.zeros_like(x),
                          np.zeros(f, F32), r(f), np.abs(r(f)) + 0.5], lib, rtol=1e-5, atol=1e-6)
    for need in (0, 1):
        _compare("bn_backward", [r(n, f, hw), r(n, f, hw), r(f), np.abs(r(f)) + 0.5, n, f, hw, need,
                                 np.zeros((n, f, hw), F32), np.zeros(f, F32), np.zeros(f, F32)], lib,
                 rtol=1e-5, atol=1e-6)


def test_batchnorm_2d_in_slices(lib):
    n, f, hw = 3, 4, 6
    x = r(n, f, hw) * 2 + 1
    pm, p2 = np.zeros((f, n), F32), np.zeros((f, n), F32)
    _compare("bn_partial", [x, n, f, hw, pm, p2], lib, rtol=1e-5, atol=1e-6)
    gpu_kernels.twin("bn_partial")(x, n, f, hw, pm, p2)
    _compare("bn_finalize", [pm, p2, n, hw, 1e-5, 0.1, 0.1 * 18 / 17, np.zeros(f, F32), np.zeros(f, F32), r(f),
                             np.abs(r(f)) + 0.5], lib, rtol=1e-5, atol=1e-6)
    mean, inv = r(f), np.abs(r(f)) + 0.5
    _compare("bn_apply", [x, mean, inv, r(f), r(f), f, hw, np.zeros_like(x), np.zeros_like(x)], lib, rtol=1e-5, atol=1e-6)
    dy, xh = r(n, f, hw), r(n, f, hw)
    _compare("bn_bpartial", [dy, xh, n, f, hw, np.zeros((f, n), F32), np.zeros((f, n), F32)], lib, rtol=1e-5, atol=1e-6)
    _compare("bn_bfinal", [r(f, n), r(f, n), n, np.zeros(f, F32), np.zeros(f, F32)], lib, rtol=1e-5, atol=1e-6)
    _compare("bn_bapply", [dy, xh, r(f), inv, r(f), r(f), f, hw, n * hw, np.zeros_like(dy)], lib, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sm", [0.0, 0.1])
def test_softmax_cross_entropy(lib, sm):
    n, k = 6, 5
    labels = np.array([0, 4, 2, 5, -1, 3], np.int64)  # 5 and -1 are out of range: NaN rows
    args = [r(n, k) * 3, labels, k, sm, 1 - sm, sm / k, 1.0 / n, float("nan"), np.zeros((n, k), F32),
            np.zeros(n, F32), np.zeros(n, np.int32)]
    _compare("xent_rows", args, lib, rtol=1e-5, atol=1e-6)
    _compare("xent_mean", [r(n), np.array([1, 0, 1, 1, 0, 1], np.int32), n, np.zeros((), F32),
                           np.zeros((), np.int64)], lib, rtol=1e-6)


def test_gather_normalise(lib):
    x = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    _compare("gather_norm", [x, rng.permutation(10).astype(np.int64), 3, 12, F32(1 / (255 * 0.3081)),
                             F32(-0.1307 / 0.3081), np.zeros((4, 1, 3, 4), F32)], lib, rtol=0, atol=0)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_optimizer_and_ema_updates(lib, mode):
    n = 50
    w, g, m, v = r(n), r(n), r(n) * 0.1, np.abs(r(n)) * 0.01
    _compare("adam", [g, 0.9, 0.1, 0.999, 0.001, 0.01 / 0.1, 1 / np.sqrt(0.001), 1e-8, 0.01, 1 - 1e-4, mode, w, m, v],
             lib, rtol=0, atol=0)
    _compare("sgd", [g, 0.01, 0.009, 0.9, 0.001 * (mode != 1), mode, w, v], lib, rtol=0, atol=0)
    _compare("ema", [w, 0.1, r(n)], lib, rtol=0, atol=0)


def test_warp_normalise(lib):
    """The augmentation kernel: rotations, shifts, squeezes; exact (the same bits as the host's Augmenter)."""
    from fastcnn.augment import Augmenter

    n, h, w = 6, 9, 8
    x = rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    m, t = Augmenter("translate=2,rotate=30,squeeze=0.2").affine(n, h, w, np.random.default_rng(1))
    affine = np.concatenate([np.linalg.inv(m).reshape(n, 4), t], axis=1)
    _compare("warp_norm", [x, rng.permutation(n).astype(np.int64), affine, 1, h, w, F32(0.5), F32(-1.0),
                           np.zeros((4, 1, h, w), F32)], lib, rtol=0, atol=0)


def _cupy_include():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("cupy")
    if spec is None or not spec.submodule_search_locations:
        return None
    inc = Path(list(spec.submodule_search_locations)[0]) / "_core" / "include"
    return inc if (inc / "cupy" / "carray.cuh").exists() else None


def test_the_kernels_compile_with_nvcc_as_cupy_builds_them(tmp_path):
    """Where nvcc and CuPy's headers are at hand (no GPU needed): every kernel, in the form CuPy's
    ElementwiseKernel generates (CArray parameters, CIndexer, CUPY_FOR, the preamble), compiles."""
    import re

    nvcc, inc = shutil.which("nvcc"), _cupy_include()
    if nvcc is None or inc is None:
        pytest.skip("needs nvcc and CuPy's headers (pip install cupy-cuda12x) to compile the kernels")
    parts = ["#include <cassert>", "#include <cupy/carray.cuh>", gpu_kernels.PREAMBLE]
    for name, (inp, outp, op, _) in gpu_kernels.KERNELS.items():
        for dt in ("float32", "float64"):
            i_, o_, body, td = inp, outp, op, f"typedef {CTYPES[dt]} T;"
            if name in ("gather_norm", "warp_norm"):  # specialised per dtype (gpu_kernels.kernel)
                i_, o_ = (re.sub(r"\bT\b", dt, s) for s in (inp, outp))
                body, td = f"typedef {CTYPES[dt]} T;\n" + op, ""
            ctype = {**CTYPES, "T": CTYPES[dt]}
            n_in, args, binds = len(_params(i_)), [], []
            for j, (raw, c, p) in enumerate(_params(i_) + _params(o_)):
                ct = ctype[c]
                if raw:
                    args.append(f"CArray<{ct}, 2, true, true> {p}")
                elif j >= n_in or p in ARRAY_INPUTS.get(name, ()):
                    args.append(f"CArray<{ct}, 1, true, true> _raw_{p}")
                    binds.append(f"{ct} &{p} = _raw_{p}[_ind.get()];")
                else:
                    args.append(f"const {ct} {p}")
            parts.append(f'extern "C" __global__ void fastcnn_{name}_{dt}({", ".join(args)}, CIndexer<1> _ind) {{\n'
                         f"  {td}\n  CUPY_FOR(i, _ind.size()) {{\n    _ind.set(i);\n    " + "\n    ".join(binds)
                         + "\n    " + body + "\n  }\n}\n")
    src = tmp_path / "kernels.cu"
    src.write_text("\n".join(parts))
    r = subprocess.run([nvcc, "-std=c++17", "-arch=sm_75", f"-I{inc}", f"-I{inc / 'cupy' / '_cccl' / 'libcudacxx'}",
                        "-c", str(src), "-o", str(tmp_path / "kernels.o")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
