"""Issue 22 item 1: no input a caller passes to a layer, fused or not, makes a Numba kernel read or
write memory it does not own. Wrong shapes and dtypes are a ShapeError / TypeError naming the
layer (at Sequential.forward and again inside each layer), and every CPU kernel's entry point
checks its arguments too (a ValueError naming the kernel).

The probes run in one child process: before these checks several of them aborted the
interpreter (``double free or corruption``) or returned numbers built from foreign memory."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

PROBES = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    from fastcnn import nn
    from fastcnn.kernels.cpu import conv as kc, im2col as ki, pool as kp

    f32 = np.float32
    def lenet_head(**kw):
        return nn.Sequential(nn.Conv2D(1, 6, 5), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
                             nn.Linear(6 * 12 * 12, 10), **kw)

    def fused(variant=None, pool=True):
        layers = [nn.Conv2D(1, 6, 5), nn.ReLU()] + ([nn.MaxPool2D(2)] if pool else [])
        m = nn.Sequential(*layers)  # no input_shape: only the fused layer's own checks stand
        if variant:
            m.plan()[0].pinned = variant
        return m

    def forward_then_backward(m, x, dy):
        m.forward(x)
        return m.backward(dy)

    def one_layer(layer, x, dy):
        layer.forward(x)
        return layer.backward(dy)

    ones = lambda *s, dt=f32: np.ones(s, dt)
    probes = {
        # the issue's calls: Sequential with input_shape, fused, more and fewer channels
        "seq_3_channels": lambda: lenet_head(input_shape=(1, 28, 28)).forward(ones(2, 3, 28, 28)),
        "seq_0_channels": lambda: lenet_head(input_shape=(1, 28, 28)).forward(ones(2, 0, 28, 28)),
        "seq_32x32": lambda: lenet_head(input_shape=(1, 28, 28)).forward(ones(2, 1, 32, 32)),
        "seq_ndim3": lambda: lenet_head(input_shape=(1, 28, 28)).forward(ones(2, 28, 28)),
        "seq_uint8": lambda: lenet_head(input_shape=(1, 28, 28)).forward(ones(2, 1, 28, 28, dt=np.uint8)),
        "seq_list": lambda: lenet_head(input_shape=(1, 28, 28)).forward([[0.0]]),
        # the fused layers themselves (no input_shape), both variants
        "fused_3_channels": lambda: fused().forward(ones(2, 3, 28, 28)),
        "fused_relu_3_channels": lambda: fused(pool=False).forward(ones(2, 3, 28, 28)),
        "fused_gemm_3_channels": lambda: fused("gemm").forward(ones(2, 3, 28, 28)),
        "fused_gemm_2_channels_batch1": lambda: fused("gemm").forward(ones(1, 2, 28, 28)),
        "fused_too_small": lambda: fused().forward(ones(2, 1, 4, 4)),
        "fused_pool_too_small": lambda: fused().forward(ones(2, 1, 5, 5)),
        "fused_float64": lambda: fused().forward(ones(2, 1, 28, 28, dt=np.float64)),
        "fused_int32": lambda: fused().plan()[0].forward(ones(2, 1, 28, 28, dt=np.int32)),
        "fused_backward_batch": lambda: forward_then_backward(fused(), ones(2, 1, 28, 28), ones(3, 6, 12, 12)),
        "fused_backward_dtype": lambda: forward_then_backward(fused(), ones(2, 1, 28, 28),
                                                              ones(2, 6, 12, 12, dt=np.float64)),
        "fused_gemm_backward_batch": lambda: forward_then_backward(fused("gemm"), ones(2, 1, 28, 28),
                                                                   ones(4, 6, 12, 12)),
        "fused_relu_backward_shape": lambda: forward_then_backward(fused(pool=False), ones(2, 1, 28, 28),
                                                                   ones(2, 6, 25, 25)),
        "fused_backward_first": lambda: fused().plan()[0].backward(ones(2, 6, 12, 12)),
        # unfused layers with the Numba algorithm forced
        "conv_numba_channels": lambda: nn.Conv2D(1, 6, 5, algo="numba").forward(ones(2, 3, 28, 28)),
        "conv_numba_backward_batch": lambda: one_layer(nn.Conv2D(1, 6, 5, algo="numba"), ones(2, 1, 28, 28),
                                                       ones(5, 6, 24, 24)),
        "conv_numba_backward_size": lambda: one_layer(nn.Conv2D(1, 6, 5, algo="numba"), ones(2, 1, 28, 28),
                                                      ones(2, 6, 30, 30)),
        "maxpool_numba_backward": lambda: one_layer(nn.MaxPool2D(2, algo="numba"), ones(2, 3, 8, 8),
                                                    ones(4, 3, 4, 4)),
        "avgpool_numba_backward": lambda: one_layer(nn.AvgPool2D(2, algo="numba"), ones(2, 3, 8, 8),
                                                    ones(2, 3, 9, 9)),
        "maxpool_numba_backward_first": lambda: nn.MaxPool2D(2, algo="numba").backward(ones(2, 3, 4, 4)),
        # the kernels' own entry points
        "k_conv_forward_columns": lambda: kc.conv_forward(ones(2, 3, 28, 28), ones(6, 25), ones(6), 5, 5, 1, 1,
                                                          24, 24, 1),
        "k_conv_forward_oh": lambda: kc.conv_forward(ones(2, 1, 28, 28), ones(6, 25), ones(6), 5, 5, 1, 1,
                                                     40, 24, 1),
        "k_conv_forward_bias": lambda: kc.conv_forward(ones(2, 1, 28, 28), ones(6, 25), ones(2), 5, 5, 1, 1,
                                                       24, 24, 1),
        "k_conv_forward_dtype": lambda: kc.conv_forward(ones(2, 1, 28, 28), ones(6, 25, dt=np.float64), ones(6),
                                                        5, 5, 1, 1, 24, 24, 1),
        "k_conv_relu_maxpool_poh": lambda: kc.conv_relu_maxpool_forward(ones(2, 1, 28, 28), ones(6, 25), ones(6),
                                                                        5, 5, 1, 1, 24, 24, 2, 2, 2, 2, 13, 12, 1),
        "k_conv_backward_batch": lambda: kc.conv_backward(ones(2, 1, 28, 28), ones(6, 25), ones(3, 6, 24, 24),
                                                          5, 5, 1, 1, True, 1),
        "k_maxpool_backward_arg": lambda: kc.conv_relu_maxpool_backward(
            ones(2, 1, 28, 28), ones(6, 25), ones(2, 6, 12, 12), np.zeros((1, 6, 12, 12), np.int32),
            5, 5, 1, 1, 24, 24, True, 1),
        "k_im2col_oh": lambda: ki.im2col(ones(2, 1, 8, 8), 3, 3, 1, 1, 7, 6),
        "k_col2im_shape": lambda: ki.col2im(ones(9, 10), 2, 1, 8, 8, 3, 3, 1, 1, 6, 6),
        "k_cnhw_bias": lambda: ki.cnhw_to_nchw_bias(ones(6, 2 * 16), ones(3), 2, 4, 4, True),
        "k_cnhw_pool": lambda: ki.cnhw_bias_relu_maxpool(ones(6, 2 * 16), ones(6), 2, 4, 4, 2, 2, 2, 2, 3, 2),
        "k_scatter_arg": lambda: ki.maxpool_scatter_cnhw(ones(2, 6, 2, 2), np.zeros((2, 6, 3, 2), np.int32), 4, 4),
        "k_relu_mask": lambda: ki.nchw_to_cnhw_relu_mask(ones(2, 6, 4, 4), ones(2, 6, 2, 8)),
        "k_dot_rows": lambda: ki.dot_rows(ones(3, 10), ones(4, 8)),
        "k_maxpool_forward_oh": lambda: kp.maxpool_forward(ones(2, 3, 8, 8), 2, 2, 2, 2, 5, 4),
        "k_maxpool_backward_arg": lambda: kp.maxpool_backward(ones(2, 3, 4, 4), np.zeros((1, 3, 4, 4), np.int32), 8, 8),
        "k_avgpool_forward_ow": lambda: kp.avgpool_forward(ones(2, 3, 8, 8), 2, 2, 2, 2, 4, 9),
        "k_avgpool_backward_hp": lambda: kp.avgpool_backward(ones(2, 3, 4, 4), 2, 2, 2, 2, 3, 8),
        "k_int_input": lambda: kp.maxpool_forward(np.ones((2, 3, 8, 8), np.int64), 2, 2, 2, 2, 4, 4),
    }
    for name, probe in probes.items():
        try:
            out = probe()
            res = {"ok": True, "shape": list(getattr(out, "shape", ()))}
        except Exception as e:
            res = {"ok": False, "type": type(e).__name__, "msg": str(e)}
        print(json.dumps({"probe": name, **res}), flush=True)
''')

#: probe -> (exception type, fragments of its message)
EXPECTED = {
    "seq_3_channels": ("ShapeError", ["(N, 1, 28, 28)", "(2, 3, 28, 28)", "Conv2D#0", "3 channels"]),
    "seq_0_channels": ("ShapeError", ["(2, 0, 28, 28)"]),
    "seq_32x32": ("ShapeError", ["32×32", "28×28"]),
    "seq_ndim3": ("ShapeError", ["(2, 28, 28)"]),
    "seq_uint8": ("TypeError", ["uint8", "normalize"]),
    "seq_list": ("TypeError", ["list"]),
    "fused_3_channels": ("ShapeError", ["Conv2D#0+ReLU#1+MaxPool2D#2", "(N, 1, H, W)", "(2, 3, 28, 28)"]),
    "fused_relu_3_channels": ("ShapeError", ["Conv2D#0+ReLU#1", "(2, 3, 28, 28)"]),
    "fused_gemm_3_channels": ("ShapeError", ["(2, 3, 28, 28)"]),
    "fused_gemm_2_channels_batch1": ("ShapeError", ["(1, 2, 28, 28)"]),
    "fused_too_small": ("ShapeError", ["5×5 kernel", "4×4"]),
    "fused_pool_too_small": ("ShapeError", ["MaxPool2D#2", "1×1"]),
    "fused_float64": ("TypeError", ["float64", "float32"]),
    "fused_int32": ("TypeError", ["int32", "floating point"]),
    "fused_backward_batch": ("ShapeError", ["(2, 6, 12, 12)", "(3, 6, 12, 12)"]),
    "fused_backward_dtype": ("ShapeError", ["float64"]),
    "fused_gemm_backward_batch": ("ShapeError", ["(4, 6, 12, 12)"]),
    "fused_relu_backward_shape": ("ShapeError", ["(2, 6, 24, 24)", "(2, 6, 25, 25)"]),
    "fused_backward_first": ("RuntimeError", ["forward first"]),
    "conv_numba_channels": ("ShapeError", ["Conv2D", "(N, 1, H, W)"]),
    "conv_numba_backward_batch": ("ShapeError", ["Conv2D", "(2, 6, 24, 24)", "(5, 6, 24, 24)"]),
    "conv_numba_backward_size": ("ShapeError", ["(2, 6, 30, 30)"]),
    "maxpool_numba_backward": ("ShapeError", ["MaxPool2D", "(2, 3, 4, 4)", "(4, 3, 4, 4)"]),
    "avgpool_numba_backward": ("ShapeError", ["AvgPool2D", "(2, 3, 9, 9)"]),
    "maxpool_numba_backward_first": ("RuntimeError", ["forward first"]),
    "k_conv_forward_columns": ("ValueError", ["kernel conv_forward", "w2", "3"]),
    "k_conv_forward_oh": ("ValueError", ["kernel conv_forward", "40 outputs along H"]),
    "k_conv_forward_bias": ("ValueError", ["kernel conv_forward", "b must have shape (6,)"]),
    "k_conv_forward_dtype": ("ValueError", ["kernel conv_forward", "float64"]),
    "k_conv_relu_maxpool_poh": ("ValueError", ["kernel conv_relu_maxpool_forward", "13 outputs along the pooled H"]),
    "k_conv_backward_batch": ("ValueError", ["kernel conv_backward", "dy must have shape (2, 6, 24, 24)"]),
    "k_maxpool_backward_arg": ("ValueError", ["kernel conv_relu_maxpool_backward", "arg"]),
    "k_im2col_oh": ("ValueError", ["kernel im2col", "7 outputs along H"]),
    "k_col2im_shape": ("ValueError", ["kernel col2im", "dcols must have shape (9, 72)"]),
    "k_cnhw_bias": ("ValueError", ["kernel cnhw_to_nchw_bias", "z must have shape (3, 32)"]),
    "k_cnhw_pool": ("ValueError", ["kernel cnhw_bias_relu_maxpool", "3 outputs along the pooled H"]),
    "k_scatter_arg": ("ValueError", ["kernel maxpool_scatter_cnhw", "arg must have shape (2, 6, 2, 2)"]),
    "k_relu_mask": ("ValueError", ["kernel nchw_to_cnhw_relu_mask", "y must have shape (2, 6, 4, 4)"]),
    "k_dot_rows": ("ValueError", ["kernel dot_rows", "rows of one length"]),
    "k_maxpool_forward_oh": ("ValueError", ["kernel maxpool_forward", "5 outputs along H"]),
    "k_maxpool_backward_arg": ("ValueError", ["kernel maxpool_backward", "arg must have shape (2, 3, 4, 4)"]),
    "k_avgpool_forward_ow": ("ValueError", ["kernel avgpool_forward", "9 outputs along W"]),
    "k_avgpool_backward_hp": ("ValueError", ["kernel avgpool_backward", "over 3 values"]),
    "k_int_input": ("ValueError", ["kernel maxpool_forward", "float32 or float64, got int64"]),
}


@pytest.fixture(scope="module")
def probe_results():
    r = subprocess.run([sys.executable, "-c", PROBES], capture_output=True, text=True, timeout=600)
    results = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            results[d.pop("probe")] = d
    assert r.returncode == 0, (f"the probe process died with exit code {r.returncode} after "
                               f"{list(results)[-1:] or 'no probe'}: {r.stderr[-2000:]}")
    return results


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mismatched_input_is_a_clear_error_never_a_crash(probe_results, name):
    assert name in probe_results, f"probe {name} did not report"
    res = probe_results[name]
    kind, fragments = EXPECTED[name]
    assert not res["ok"], f"{name} returned a result of shape {res['shape']} instead of an error"
    assert res["type"] == kind, res
    for frag in fragments:
        assert frag in res["msg"], (frag, res["msg"])


def test_fused_layer_takes_a_non_contiguous_input_and_matches_the_unfused_layers():
    from fastcnn import nn

    rng = np.random.default_rng(0)
    layers = [nn.Conv2D(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2)]
    ref = nn.Sequential(*layers, fusion=False)
    fused = nn.Sequential(*layers, reset=False)
    x = rng.standard_normal((3, 8, 8, 2)).astype(np.float32).transpose(0, 3, 1, 2)  # a strided view
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(fused.forward(x), ref.forward(np.ascontiguousarray(x)), rtol=1e-5, atol=1e-6)
