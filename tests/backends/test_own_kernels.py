"""kwscc's own kernels (backends/cmsis_nn/own_kernels.py, templates/cmsis_nn/kwscc_kernels.c.j2) against the
simulator: they must compute exactly what the CMSIS-NN calls they replace compute.

Random small models (a strided padded convolution, a depthwise convolution, a pointwise convolution and a
dense layer, random shapes) are compiled with --kernels kwscc and built for the host twice, with the plain-C
path and with the SIMD path (the ACLE intrinsics modelled in acle_emulation.h), for both rounding builds;
the int8 outputs must equal the simulator's. The cost table's choice is deterministic and never slower than
the library by its own estimate.
"""
from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from kwscc.backends.cmsis_nn import kernel_choice, own_kernels
from kwscc.driver import CompileOptions, compile_model, output_files, write_outputs
from kwscc.quant import kernels
from kwscc.quant.simulate import simulate_float_inputs
from tests.c.c_harness import Generated, cc_build, run_harness
from tests.models_util import KWS, make_model, save
from tests.vectors import load_family

HERE = Path(__file__).parent
SAMPLES = 8


@pytest.mark.parametrize("rounding", ["default", "single"])
def test_requantize_constants_equal_cmsis_requantize(rounding):
    """(acc + R - 2 [acc < -1, default]) >> k == arm_nn_requantize(acc, 2^30, 1 - k) for 2 <= k <= 30."""
    rng = np.random.default_rng(1)
    for k in range(2, 31):
        acc = np.concatenate([np.arange(-(1 << min(k + 2, 12)), 1 << min(k + 2, 12)),
                              rng.integers(-(1 << 30) + 1, 1 << 30, 4000), [-(1 << 30) + 1, (1 << 30) - 1]])
        r = int(own_kernels.requantize_constants(np.array([k]), rounding)[0])
        got = (acc + r - np.where((acc < -1) & (rounding == "default"), 2, 0)) >> k
        want = kernels.requantize(acc, 1 << 30, 1 - k, rounding)
        np.testing.assert_array_equal(got, want, err_msg=f"k={k}")


def _model(rng: np.random.Generator):
    """Conv (strided, padded) -> Relu -> 3x3 Conv -> Relu -> depthwise 3x3 or 5x3 -> Relu -> 1x1 Conv -> Relu ->
    Flatten -> Gemm; one input channel (NCHW = NHWC), split into hi and lo by --split-input on."""
    h, w, cin = int(rng.integers(5, 12)), int(rng.integers(4, 9)), 1
    c1 = 4 * int(rng.integers(1, 5))
    c2 = int(rng.integers(3, 10))
    kh, kw = int(rng.integers(2, 5)), int(rng.integers(1, 4))
    dk = (3, 3) if rng.random() < 0.5 else (5, 3)
    classes = int(rng.integers(2, 7))
    inits = {"w1": rng.normal(0, 0.4, (c1, cin, kh, kw)), "b1": rng.normal(0, 0.1, c1),
             "wm": rng.normal(0, 0.2, (c1, c1, 3, 3)), "bm": rng.normal(0, 0.1, c1),
             "w2": rng.normal(0, 0.4, (c1, 1) + dk), "b2": rng.normal(0, 0.1, c1),
             "w3": rng.normal(0, 0.3, (c2, c1, 1, 1)), "b3": rng.normal(0, 0.1, c2)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], strides=[2, 1], pads=[1, kw // 2, 0, kw // 2]),
             helper.make_node("Relu", ["c1"], ["r0"]),
             helper.make_node("Conv", ["r0", "wm", "bm"], ["cm"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["cm"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], group=c1,
                              pads=[dk[0] // 2, dk[1] // 2, dk[0] // 2, dk[1] // 2]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
             helper.make_node("Relu", ["c3"], ["r3"]),
             helper.make_node("Flatten", ["r3"], ["f"])]
    model = make_model(nodes, {"x": [1, cin, h, w]}, ["f"], inits)
    flat = int(np.prod([d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim][1:]))
    inits.update(wf=rng.normal(0, 0.2, (flat, classes)), bf=rng.normal(0, 0.1, classes))
    nodes.append(helper.make_node("Gemm", ["f", "wf", "bf"], ["y"]))
    return make_model(nodes, {"x": [1, cin, h, w]}, ["y"], inits), (cin, h, w)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rounding", ["default", "single"])
def test_own_kernels_match_the_simulator(seed, rounding, tmp_path):
    _check_against_the_simulator(seed, rounding, "balanced", tmp_path,
                                 {own_kernels.CONV, own_kernels.DEPTHWISE, own_kernels.POINTWISE, own_kernels.DENSE})


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("rounding", ["default", "single"])
def test_wide_kernels_match_the_simulator(seed, rounding, tmp_path):
    """--optimize speed: the convolutions on the wide kernels (int16 weights, rows widened in the scratch)."""
    _check_against_the_simulator(seed, rounding, "speed", tmp_path, {
        own_kernels.CONV_WIDE, own_kernels.DEPTHWISE_WIDE, own_kernels.POINTWISE_WIDE, own_kernels.DENSE})


def _check_against_the_simulator(seed: int, rounding: str, optimize: str, tmp_path: Path, expected: set[str]):
    rng = np.random.default_rng(seed)
    model, shape = _model(rng)
    path = save(model, tmp_path)
    calib = tmp_path / "calib.npy"
    np.save(calib, rng.normal(0, 1, (64,) + shape).astype(np.float32))
    compiled = compile_model(path, CompileOptions(calib=str(calib), rounding=rounding, kernels="kwscc",
                                                  split_input="on", optimize=optimize))
    functions = {call.function for call in compiled.calls}
    assert expected <= functions, functions
    out = tmp_path / "out"
    write_outputs(output_files(compiled, True, {}), out)
    gen = Generated(out, compiled.name, compiled)
    x = rng.normal(0, 1.5, (SAMPLES,) + shape).astype(np.float32)
    name = compiled.graph.inputs[0]
    feeds = {name: x.reshape((SAMPLES,) + compiled.graph.tensors[name].shape[1:])}
    want = simulate_float_inputs(compiled.qm, feeds)[compiled.graph.outputs[0]].reshape(SAMPLES, -1)
    for path_name, flags in (("plain C", []), ("SIMD", [f'-DKWSCC_SIMD_HEADER="{HERE / "acle_emulation.h"}"'])):
        exe = tmp_path / f"prog_{len(flags)}"
        cc_build(gen, exe, ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", *flags])
        got = run_harness(exe, gen, x).y
        mismatches = int(np.count_nonzero(got != want))
        assert mismatches == 0, f"{path_name} path: {mismatches} of {want.size} outputs differ from the simulator"


def test_choice_is_deterministic_and_no_slower_by_the_table():
    options = CompileOptions(calib=f"{KWS / 'kws_synth.npz'}:calib_x490", cpu="cortex-m4")
    first = compile_model(KWS / "ds_cnn_s.onnx", options)
    again = first.backend.lower(first.qm, first.name, "cortex-m4")
    assert [c.function for c in first.calls] == [c.function for c in again]
    library = first.backend.__class__(CompileOptions(kernels="cmsis-nn")).lower(first.qm, first.name, "cortex-m4")
    chosen = {c.node.name: c.estimated_instructions for c in first.calls if c.estimated_instructions is not None}
    for call in library:
        if call.node.name in chosen:
            assert chosen[call.node.name] <= call.estimated_instructions
    assert any(c.function.startswith("kwscc_") for c in first.calls)
    assert kernel_choice.TABLE_CORE["cortex-m4"] in kernel_choice.cost_table()


# ------------------------------------------------------------------------------------------------
# the kernels alone on the golden vectors' shapes (tests/data/cmsis_nn_vectors, power-of-two cases):
# their output must equal the real CMSIS-NN's, with the plain-C and the SIMD path, both rounding builds
# ------------------------------------------------------------------------------------------------

GOLDEN_ENTRY_POINTS = r"""
void t_depthwise(const int8_t *in, int8_t *out, const int16_t *w, const int32_t *b, const int32_t *t,
                 const int32_t *k, int32_t in_h, int32_t in_w, int32_t ch, int32_t k_h, int32_t k_w, int32_t s_h,
                 int32_t s_w, int32_t p_h, int32_t p_w, int32_t o_h, int32_t o_w, int32_t off, int32_t lo, int32_t hi)
{
    kwscc_depthwise_s8(in, out, w, b, t, k, in_h, in_w, ch, k_h, k_w, s_h, s_w, p_h, p_w, o_h, o_w, off, lo, hi);
}
void t_conv(const int8_t *in, int8_t *out, int8_t *scratch, const int8_t *w, const int32_t *b, const int32_t *t,
            const int32_t *k, int32_t in_h, int32_t in_w, int32_t ch, int32_t k_h, int32_t k_w, int32_t s_h,
            int32_t s_w, int32_t p_h, int32_t p_w, int32_t o_h, int32_t o_w, int32_t cout, int32_t pad, int32_t lo,
            int32_t hi)
{
    kwscc_conv_s8(in, out, scratch, w, b, t, k, in_h, in_w, ch, k_h, k_w, s_h, s_w, p_h, p_w, o_h, o_w, cout,
                  (int8_t)pad, lo, hi);
}
void t_pointwise(const int8_t *in, int8_t *out, const int8_t *w, const int32_t *b, const int32_t *t, const int32_t *k,
                 int32_t pixels, int32_t cin, int32_t cout, int32_t lo, int32_t hi)
{
    kwscc_pointwise_s8(in, out, w, b, t, k, pixels, cin, cout, lo, hi);
}
void t_depthwise_wide(const int8_t *in, int8_t *out, int32_t *scratch, const int32_t *w, const int32_t *b,
                      const int32_t *t, const int32_t *k, int32_t in_h, int32_t in_w, int32_t ch, int32_t k_h,
                      int32_t k_w, int32_t s_h, int32_t s_w, int32_t p_h, int32_t p_w, int32_t o_h, int32_t o_w,
                      int32_t off, int32_t lo, int32_t hi)
{
    kwscc_depthwise_wide_s8(in, out, scratch, w, b, t, k, in_h, in_w, ch, k_h, k_w, s_h, s_w, p_h, p_w, o_h, o_w, off,
                            lo, hi);
}
void t_pointwise_wide(const int8_t *in, int8_t *out, int32_t *scratch, const int32_t *w, const int32_t *b,
                      const int32_t *t, const int32_t *k, int32_t pixels, int32_t cin, int32_t cout, int32_t lo,
                      int32_t hi)
{
    kwscc_pointwise_wide_s8(in, out, scratch, w, b, t, k, pixels, cin, cout, lo, hi);
}
void t_conv_wide(const int8_t *in, int8_t *out, int8_t *scratch, const int32_t *w, const int32_t *b,
                 const int32_t *t, const int32_t *k, int32_t in_h, int32_t in_w, int32_t ch, int32_t k_h, int32_t k_w,
                 int32_t s_h, int32_t s_w, int32_t p_h, int32_t p_w, int32_t o_h, int32_t o_w, int32_t cout,
                 int32_t pad, int32_t lo, int32_t hi)
{
    kwscc_conv_wide_s8(in, out, scratch, w, b, t, k, in_h, in_w, ch, k_h, k_w, s_h, s_w, p_h, p_w, o_h, o_w, cout,
                       (int8_t)pad, lo, hi);
}
void t_dense(const int8_t *in, int8_t *out, const int8_t *w, const int32_t *b, const int32_t *t, const int32_t *k,
             int32_t cin, int32_t cout, int32_t lo, int32_t hi)
{
    kwscc_dense_s8(in, out, w, b, t, k, cin, cout, lo, hi);
}
"""
OWN = ("kwscc_depthwise_s8", "kwscc_conv_s8", "kwscc_pointwise_s8", "kwscc_dense_s8", "kwscc_pointwise_wide_s8",
       "kwscc_conv_wide_s8", "kwscc_depthwise_wide_s8")
MULTIPLIER_ENTRY_POINT = {  # by full_range: kwscc_requantize saturates, or clamps to an activation range
    True: """
void t_requantize(const int32_t *acc, int8_t *out, const int32_t *mult, const int32_t *shift, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = kwscc_requantize(acc[i], mult[i], shift[i]);
    }
}
""",
    False: """
void t_requantize_clamped(const int32_t *acc, int8_t *out, const int32_t *mult, const int32_t *shift, int32_t n,
                          int32_t act_min, int32_t act_max)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = kwscc_requantize(acc[i], mult[i], shift[i], act_min, act_max);
    }
}
"""}


def _kernel_library(tmp_path: Path, rounding: str, simd: bool, multiplier: bool = False,
                    full_range: bool = False) -> ctypes.CDLL:
    """kwscc's kernel templates rendered for one rounding (generic clamp unless full_range), requantizing by
    add-and-shift or (multiplier, shift), built as a shared library."""
    from kwscc.backends.cmsis_nn.kernels import KWSCC_KERNELS
    from kwscc.codegen import environment

    env = environment()
    needed = [k for k in KWSCC_KERNELS if k in own_kernels.needed_kernels(OWN)]
    text = "#include <stdint.h>\n#include <stddef.h>\n" + "\n".join(
        env.get_template(f"cmsis_nn/kernels/{k}.c.j2").render(
            single_rounding=rounding == "single", full_range_requantize=full_range, requantize_multiplier=multiplier)
        for k in needed)
    tag = f"{rounding}_{simd}_{multiplier}_{full_range}"
    src = tmp_path / f"kernels_{tag}.c"
    src.write_text(text + GOLDEN_ENTRY_POINTS + (MULTIPLIER_ENTRY_POINT[full_range] if multiplier else ""))
    lib = tmp_path / f"libkernels_{tag}.so"
    flags = [f'-DKWSCC_SIMD_HEADER="{HERE / "acle_emulation.h"}"'] if simd else []
    proc = subprocess.run(["cc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC",
                           "-Wno-missing-prototypes", *flags, str(src), "-o", str(lib)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def _golden_runs(family: str, multiplier: bool = False):
    """(case, arrays, k, multiplier per channel, bias) for each applicable case: power-of-two requantizations
    (multiplier 2^30), and with `multiplier` the general ones too."""
    for case, arrays in load_family(family):
        if case["input_dims"]["n"] != 1 or case.get("output_offset", 0) or case.get("filter_offset", 0):
            continue
        bias = arrays.get("bias", np.zeros(case["output_dims"]["c"], np.int32)).astype(np.int64)
        if case.get("quant_kind") == "pow2":
            k = np.asarray(case["pow2_k"], np.int64)
            mult = np.full(k.shape, 1 << 30, np.int64)
        elif multiplier:
            mult = np.asarray(arrays.get("multiplier", case.get("multiplier")), np.int64)
            k = 1 - np.asarray(arrays.get("shift", case.get("shift")), np.int64)
        else:
            continue
        yield case, arrays, k, mult, bias


def _requantization(bias, k, mult, rounding: str, multiplier: bool):
    """The kernels' (bias, threshold or multiplier, k or shift) arrays."""
    if not multiplier:
        return own_kernels.requantize_arrays(bias, k, rounding)
    n = np.asarray(bias).shape[0]
    return (np.asarray(bias, np.int64).astype(np.int32), np.broadcast_to(mult, n).astype(np.int32),
            np.broadcast_to(1 - k, n).astype(np.int32))


def _run_depthwise(lib, case, arrays, k, mult, bias, rounding, multiplier, wide=False):
    i, f, o = case["input_dims"], case["filter_dims"], case["output_dims"]
    if case["ch_mult"] != 1 or i["c"] % 4 or case["dilation"] != {"h": 1, "w": 1}:
        return None
    w_taps = arrays["weights"].reshape(f["h"] * f["w"], f["c"])
    if not own_kernels.depthwise_fits(bias, w_taps, case["input_offset"], k, multiplier):
        return None
    w16 = own_kernels.depthwise_weights(w_taps)
    b, t, kk = _requantization(bias, k, mult, rounding, multiplier)
    x = np.ascontiguousarray(arrays["input"], np.int8)
    y = np.zeros((o["h"], o["w"], o["c"]), np.int8)
    act = case["activation"]
    geometry = (i["h"], i["w"], i["c"], f["h"], f["w"], case["stride"]["h"], case["stride"]["w"], case["padding"]["h"],
                case["padding"]["w"], o["h"], o["w"], case["input_offset"], act["min"], act["max"])
    if wide:
        w32 = w16.view(np.int32).copy()  # two int16 per word, low half first (little-endian host)
        scratch = np.zeros((2 * f["h"] - 1) * ((o["w"] - 1) * case["stride"]["w"] + f["w"]) * 2, np.int32)
        lib.t_depthwise_wide(_ptr(x), _ptr(y), _ptr(scratch), _ptr(w32), _ptr(b), _ptr(t), _ptr(kk), *geometry)
    else:
        lib.t_depthwise(_ptr(x), _ptr(y), _ptr(w16), _ptr(b), _ptr(t), _ptr(kk), *geometry)
    return y


def _run_depthwise_wide(lib, case, arrays, k, mult, bias, rounding, multiplier):
    return _run_depthwise(lib, case, arrays, k, mult, bias, rounding, multiplier, wide=True)


def _run_conv(lib, case, arrays, k, mult, bias, rounding, multiplier, wide=False):
    i, f, o = case["input_dims"], case["filter_dims"], case["output_dims"]
    if case["dilation"] != {"h": 1, "w": 1} or f["c"] != i["c"]:
        return None
    w2 = arrays["weights"].reshape(f["n"], -1)
    folded = own_kernels.folded_bias(bias, w2, case["input_offset"], k, multiplier)
    if folded is None:
        return None
    b, t, kk = _requantization(folded, k, mult, rounding, multiplier)
    w = own_kernels.wide_weights(w2) if wide else own_kernels.pointwise_weights(w2)
    x = np.ascontiguousarray(arrays["input"], np.int8)
    y = np.zeros((o["h"], o["w"], o["c"]), np.int8)
    act = case["activation"]
    pointwise = ((f["h"], f["w"]) == (1, 1) and case["stride"] == {"h": 1, "w": 1}
                 and case["padding"] == {"h": 0, "w": 0})
    depth4 = (w2.shape[1] + 3) // 4 * 4
    if pointwise and wide:
        scratch = np.zeros(depth4, np.int32)
        lib.t_pointwise_wide(_ptr(x), _ptr(y), _ptr(scratch), _ptr(w), _ptr(b), _ptr(t), _ptr(kk), i["h"] * i["w"],
                             i["c"], f["n"], act["min"], act["max"])
    elif pointwise:
        lib.t_pointwise(_ptr(x), _ptr(y), _ptr(w), _ptr(b), _ptr(t), _ptr(kk), i["h"] * i["w"], i["c"], f["n"],
                        act["min"], act["max"])
    else:
        scratch = np.zeros((6 if wide else 2) * depth4 // 4, np.int32)  # int32: 4-byte aligned, as the arena
        conv = lib.t_conv_wide if wide else lib.t_conv
        conv(_ptr(x), _ptr(y), _ptr(scratch), _ptr(w), _ptr(b), _ptr(t), _ptr(kk), i["h"], i["w"], i["c"], f["h"],
             f["w"], case["stride"]["h"], case["stride"]["w"], case["padding"]["h"], case["padding"]["w"], o["h"],
             o["w"], f["n"], -case["input_offset"], act["min"], act["max"])
    return y


def _run_conv_wide(lib, case, arrays, k, mult, bias, rounding, multiplier):
    return _run_conv(lib, case, arrays, k, mult, bias, rounding, multiplier, wide=True)


def _run_dense(lib, case, arrays, k, mult, bias, rounding, multiplier):
    i, f = case["input_dims"], case["filter_dims"]
    depth, cout = f["n"], case["output_dims"]["c"]  # CMSIS-NN's FC filter dims: n = accumulation depth
    if i["n"] != 1:
        return None
    w2 = arrays["weights"].reshape(cout, depth)  # one row per output, as kwscc's Dense
    folded = own_kernels.folded_bias(bias, w2, case["input_offset"], k, multiplier)
    if folded is None:
        return None
    b, t, kk = _requantization(folded, k, mult, rounding, multiplier)
    w = own_kernels.pointwise_weights(w2)
    x = np.ascontiguousarray(arrays["input"], np.int8).reshape(-1)
    y = np.zeros(cout, np.int8)
    act = case["activation"]
    lib.t_dense(_ptr(x), _ptr(y), _ptr(w), _ptr(b), _ptr(t), _ptr(kk), depth, cout, act["min"], act["max"])
    return y


@pytest.mark.parametrize("rounding", ["default", "single"])
@pytest.mark.parametrize("simd", [False, True], ids=["plain", "simd"])
@pytest.mark.parametrize("multiplier", [False, True], ids=["add-shift", "multiplier"])
def test_own_kernels_equal_cmsis_nn_on_the_golden_vectors(rounding, simd, multiplier, tmp_path):
    """Both requantizations: add-and-shift, and (multiplier, shift) on the general cases too (a model that
    keeps a quantized model's int8 weights, kwscc.quant.int8_weights)."""
    lib = _kernel_library(tmp_path, rounding, simd, multiplier)
    ran, general, failures = {}, 0, []
    for family, run in (("modern_depthwise_conv_wrapper_s8", _run_depthwise),
                        ("modern_depthwise_conv_wrapper_s8", _run_depthwise_wide),
                        ("modern_convolve_wrapper_s8", _run_conv), ("modern_convolve_wrapper_s8", _run_conv_wide),
                        ("modern_fully_connected_s8", _run_dense)):
        for case, arrays, k, mult, bias in _golden_runs(family, multiplier):
            got = run(lib, case, arrays, k, mult, bias, rounding, multiplier)
            if got is None:
                continue
            ran[run.__name__] = ran.get(run.__name__, 0) + 1
            general += case.get("quant_kind") != "pow2"
            want = arrays[f"out_host_{rounding}"].reshape(got.shape)
            if not np.array_equal(got, want):
                failures.append(f"{run.__name__} {case['name']}: {np.count_nonzero(got != want)} of {want.size} differ")
    assert not failures, "\n".join(failures)
    assert sum(ran.values()) >= 40 and min(ran.values()) >= 5 and len(ran) == 5, f"golden cases that apply: {ran}"
    assert general >= (5 if multiplier else 0), f"only {general} general-multiplier cases apply"


@pytest.mark.parametrize("rounding", ["default", "single"])
@pytest.mark.parametrize("full_range", [False, True], ids=["clamp", "saturate"])
def test_requantize_by_multiplier_equals_cmsis_requantize(rounding, full_range, tmp_path):
    """The C of kwscc_requantize with multipliers against the simulator's arm_nn_requantize over accumulators
    below 2^30, multipliers in [2^30, 2^31) and shifts 1 - k for k in [0, 31]."""
    lib = _kernel_library(tmp_path, rounding, simd=True, multiplier=True, full_range=full_range)
    rng = np.random.default_rng(5)
    n = 20000
    acc = rng.integers(-(1 << 30) + 1, 1 << 30, n) >> rng.integers(0, 30, n)
    mult = rng.integers(1 << 30, 1 << 31, n)
    shift = 1 - rng.integers(0, 32, n)
    acc32, mult32, shift32 = (np.ascontiguousarray(a, np.int32) for a in (acc, mult, shift))
    got = np.zeros(n, np.int8)
    if full_range:
        lib.t_requantize(_ptr(acc32), _ptr(got), _ptr(mult32), _ptr(shift32), n)
    else:
        lib.t_requantize_clamped(_ptr(acc32), _ptr(got), _ptr(mult32), _ptr(shift32), n, -100, 90)
    want = kernels.requantize(acc, mult, shift, rounding)
    np.testing.assert_array_equal(got, np.clip(want, -128 if full_range else -100, 127 if full_range else 90))


def test_optimize_decides_the_split_input_unless_told(tmp_path):
    """--optimize ram drops the split input, accuracy keeps it, balanced and speed leave it to the arena;
    an explicit --split-input wins."""
    rng = np.random.default_rng(3)
    model, shape = _model(rng)
    path = save(model, tmp_path)
    calib = tmp_path / "calib.npy"
    np.save(calib, rng.normal(0, 1, (32,) + shape).astype(np.float32))

    def split(**options) -> bool:
        compiled = compile_model(path, CompileOptions(calib=str(calib), **options))
        return compiled.qm.split is not None

    assert not split(optimize="ram")
    assert split(optimize="accuracy")
    assert split(optimize="ram", split_input="on")
    assert split(optimize="balanced") == split(optimize="balanced", split_input="auto")
    assert split(optimize="speed") == split(optimize="balanced")
