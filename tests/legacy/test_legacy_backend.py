"""The cmsis-nn-legacy backend end to end on small ONNX models that reach every function it can emit:
compile, build the generated C with the host q7 kernels (ASan + UBSan), run it and compare with the
simulator bit for bit; function selection, quantization relations and compile-time errors."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from kwscc.backends.cmsis_nn_legacy.quantize import MAX_BIAS_SHIFT, MAX_OUT_SHIFT, nn_round
from kwscc.driver import CompileOptions, compile_model
from kwscc.errors import UnsupportedError
from kwscc.validate.validate import validate
from tests.models_util import make_model, save

RNG = np.random.default_rng(11)


def _w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def conv(name, x, y, w, pads=(0, 0, 0, 0), strides=(1, 1), group=1, inits=None, bias=True):
    inits[f"{name}_w"] = w
    inputs = [x, f"{name}_w"]
    if bias:
        inits[f"{name}_b"] = _w(w.shape[0], scale=0.3)
        inputs.append(f"{name}_b")
    return helper.make_node("Conv", inputs, [y], name=name, pads=list(pads), strides=list(strides), group=group,
                            kernel_shape=list(w.shape[2:]))


def reshape(name, x, y, shape, inits):
    inits[f"{name}_shape"] = np.array(shape, np.int64)
    return helper.make_node("Reshape", [x, f"{name}_shape"], [y], name=name)


def gemm(name, x, y, n_in, n_out, inits):
    inits[f"{name}_w"], inits[f"{name}_b"] = _w(n_out, n_in, scale=0.3), _w(n_out, scale=0.2)
    return helper.make_node("Gemm", [x, f"{name}_w", f"{name}_b"], [y], name=name, transB=1)


def nchw(x="x", y="x_nchw"):
    return helper.make_node("Transpose", [x], [y], name="to_nchw", perm=[0, 3, 1, 2])


def nhwc(x, y):
    return helper.make_node("Transpose", [x], [y], name=f"{x}_to_nhwc", perm=[0, 2, 3, 1])


def model_a():
    """1x1 basic, RGB, ReLU6 clamp, _fast square, arm_maxpool, _basic for a TF-SAME stride-2 even input,
    arm_fully_connected_q7_opt, softmax."""
    i = {}
    nodes = [
        nchw(),
        conv("c0", "x_nchw", "t0", _w(3, 4, 1, 1), inits=i),  # Cout 3: not the 1x1 fast function
        conv("rgb", "t0", "t1", _w(8, 3, 3, 3), pads=(1, 1, 1, 1), inits=i),
        helper.make_node("Clip", ["t1", "lo", "hi"], ["t2"], name="relu6"),
        conv("fast", "t2", "t3", _w(8, 8, 3, 3, scale=0.2), pads=(1, 1, 1, 1), inits=i),
        helper.make_node("Relu", ["t3"], ["t4"], name="relu"),
        helper.make_node("MaxPool", ["t4"], ["t5"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        conv("same_s2", "t5", "t6", _w(6, 8, 3, 3, scale=0.2), pads=(0, 0, 1, 1), strides=(2, 2), inits=i),
        nhwc("t6", "t6h"),
        reshape("flat", "t6h", "t7", [1, 24], i),
        gemm("fc", "t7", "t8", 24, 10, i),
        helper.make_node("Softmax", ["t8"], ["y"], name="softmax", axis=1),
    ]
    i["lo"], i["hi"] = np.array(0, np.float32), np.array(6, np.float32)
    return make_model(nodes, {"x": [1, 8, 8, 4]}, ["y"], i), (1, 8, 8, 4)


def model_b():
    """_fast_nonsquare, depthwise nonsquare, grouped and depth-multiplier convs (as dense convs), kwscc average
    and max pools with padding, arm_fully_connected_q7 (3 rows), a softmax over several rows."""
    i = {}
    nodes = [
        nchw(),
        conv("fast_ns", "x_nchw", "t0", _w(8, 4, 3, 3, scale=0.3), pads=(1, 1, 1, 1), inits=i),
        helper.make_node("Relu", ["t0"], ["t1"], name="relu0"),
        conv("dw_ns", "t1", "t2", _w(8, 1, 3, 3), pads=(1, 0, 1, 1), strides=(2, 2), group=8, inits=i),
        conv("grouped", "t2", "t3", _w(6, 4, 1, 1), group=2, inits=i),
        conv("dw_mult", "t3", "t4", _w(12, 1, 3, 3), pads=(1, 1, 1, 1), group=6, inits=i),
        helper.make_node("Relu", ["t4"], ["t5"], name="relu1"),
        helper.make_node("AveragePool", ["t5"], ["t6"], name="avg", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[1, 1]),
        helper.make_node("MaxPool", ["t6"], ["t7"], name="maxpad", kernel_shape=[3, 2], pads=[1, 0, 1, 1],
                         strides=[2, 2]),
        nhwc("t7", "t7h"),
        reshape("flat", "t7h", "t8", [1, 72], i),
        gemm("fc3", "t8", "t9", 72, 3, i),
        helper.make_node("Relu", ["t9"], ["t10"], name="relu2"),
        gemm("fc", "t10", "t11", 3, 12, i),
        reshape("rows", "t11", "t12", [1, 3, 4], i),
        helper.make_node("Softmax", ["t12"], ["y"], name="softmax", axis=2),
    ]
    return make_model(nodes, {"x": [1, 9, 7, 4]}, ["y"], i), (1, 9, 7, 4)


def model_c():
    """A max pool on the caller's input (kwscc kernel), square depthwise, 1x1 fast, global average pool."""
    i = {}
    nodes = [
        nchw(),
        helper.make_node("MaxPool", ["x_nchw"], ["t0"], name="inpool", kernel_shape=[2, 2], strides=[2, 2]),
        conv("dw_sq", "t0", "t1", _w(4, 1, 3, 3), pads=(1, 1, 1, 1), group=4, inits=i),
        conv("pw", "t1", "t2", _w(8, 4, 1, 1), inits=i),
        helper.make_node("Relu", ["t2"], ["t3"], name="relu"),
        helper.make_node("GlobalAveragePool", ["t3"], ["t4"], name="gap"),
        reshape("flat", "t4", "t5", [1, 8], i),
        gemm("fc", "t5", "t6", 8, 5, i),
        helper.make_node("Softmax", ["t6"], ["y"], name="softmax", axis=1),
    ]
    return make_model(nodes, {"x": [1, 10, 10, 4]}, ["y"], i), (1, 10, 10, 4)


EXPECTED = {
    "a": ["arm_convolve_HWC_q7_basic", "arm_convolve_HWC_q7_RGB + kwscc_clamp_q7",
          "arm_convolve_HWC_q7_fast + arm_relu_q7", "arm_maxpool_q7_HWC", "arm_convolve_HWC_q7_basic",
          "arm_fully_connected_q7_opt", "kwscc_softmax_q7"],
    "b": ["arm_convolve_HWC_q7_fast_nonsquare + arm_relu_q7", "arm_depthwise_separable_conv_HWC_q7_nonsquare",
          "arm_convolve_1x1_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q7_basic_nonsquare + arm_relu_q7",
          "kwscc_avepool_q7_HWC", "kwscc_maxpool_q7_HWC", "arm_fully_connected_q7 + arm_relu_q7",
          "arm_fully_connected_q7_opt", "kwscc_softmax_q7"],
    "c": ["kwscc_maxpool_q7_HWC", "arm_depthwise_separable_conv_HWC_q7",
          "arm_convolve_1x1_HWC_q7_fast_nonsquare + arm_relu_q7", "kwscc_avepool_q7_HWC",
          "arm_fully_connected_q7_opt", "kwscc_softmax_q7"],
}
MODELS = {"a": model_a, "b": model_b, "c": model_c}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """{key: (model path, data spec)} with calibration and test data (x2 wider than calibration: saturation)."""
    out = {}
    for key, make in MODELS.items():
        work = tmp_path_factory.mktemp(f"legacy_{key}")
        model, shape = make()
        path = save(model, work)
        rng = np.random.default_rng(ord(key))
        np.savez(work / "data.npz", calib=rng.standard_normal((64, *shape[1:])).astype(np.float32),
                 test=(rng.standard_normal((200, *shape[1:])) * 1.5).astype(np.float32))
        out[key] = (path, work / "data.npz")
    return out


def _compile(built, key, **options):
    path, data = built[key]
    return compile_model(path, CompileOptions(calib=f"{data}:calib", backend="cmsis-nn-legacy", **options))


@pytest.mark.parametrize("softmax", ["kwscc", "cmsis"])
@pytest.mark.parametrize("key", sorted(MODELS))
def test_small_model_runs_bit_exact(built, key, softmax):
    compiled = _compile(built, key, legacy_softmax=softmax)
    expected = [f.replace("kwscc_softmax_q7", "arm_softmax_q7") if softmax == "cmsis" else f for f in EXPECTED[key]]
    assert [c.function for c in compiled.calls] == expected
    result = validate(compiled, f"{built[key][1]}:test", sanitize=True)
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.5, result["top1_agreement"]


def test_quantization_relations(built):
    compiled = _compile(built, "b")
    qm = compiled.qm
    for node in qm.graph.nodes():
        layer = qm.layers.get(node.name)
        if node.op not in ("Conv", "Dense"):
            continue
        n_in, n_out = qm.formats[node.inputs[0]].frac, qm.formats[node.outputs[0]].frac
        n_w = int(layer.weight_frac[0])
        assert not layer.per_channel and (layer.weight_frac == n_w).all()
        assert layer.out_shift == n_in + n_w - n_out and 0 <= layer.out_shift <= MAX_OUT_SHIFT
        assert layer.bias_shift == n_in + n_w - layer.bias_frac and 0 <= layer.bias_shift <= MAX_BIAS_SHIFT
        assert layer.bias_q7.dtype == np.int8 and layer.weights.dtype == np.int8
        np.testing.assert_array_equal(layer.bias, layer.bias_q7.astype(np.int64) << layer.bias_shift)
        assert (layer.shift == layer.out_shift).all()
        b = qm.graph.tensors[node.inputs[2]].data
        assert np.abs(layer.bias_q7 * 2.0**-layer.bias_frac - b).max() <= 2.0**-layer.bias_frac / 2 + 1e-9 \
            or np.abs(b).max() * 2.0**layer.bias_frac > 127
    assert nn_round(0) == 0 and nn_round(1) == 1 and nn_round(7) == 64


def test_average_pool_gains_fraction_bits(built):
    compiled = _compile(built, "c")
    gap = next(n for n in compiled.graph.nodes() if n.op == "AveragePool")
    layer = compiled.qm.layers[gap.name]
    fmt_in, fmt_out = compiled.qm.formats[gap.inputs[0]], compiled.qm.formats[gap.outputs[0]]
    assert fmt_out.frac == fmt_in.frac + layer.lshift and layer.lshift >= 1


def test_rgb_falls_back_to_basic_at_the_arena_end(built):
    """_RGB reads one byte past its input: when that input ends the arena, _basic is emitted instead."""
    compiled = _compile(built, "a")
    call = next(c for c in compiled.calls if c.node.name == "rgb")
    where, offset = compiled.plan.location(call.node.inputs[0])
    size = compiled.graph.tensors[call.node.inputs[0]].size
    if offset + size < compiled.plan.arena_size:
        assert call.params["fn"] == "arm_convolve_HWC_q7_RGB"
    from kwscc.backends.cmsis_nn_legacy.backend import _keep_rgb_inside_arena

    compiled.plan.arena_size = offset + size  # pretend the input ends the arena
    _keep_rgb_inside_arena(compiled.qm, call, compiled.plan)
    assert call.params["fn"] == "arm_convolve_HWC_q7_basic" and "RGB" not in call.function


def test_header_contract(built):
    compiled = _compile(built, "a", name="small")
    header = compiled.files["small.h"]
    for define in ("INPUT_SIZE", "OUTPUT_SIZE", "ARENA_SIZE", "INPUT_FRAC_BITS", "OUTPUT_FRAC_BITS",
                   "OUTPUT_ZERO_POINT"):
        assert f"#define SMALL_{define} " in header
    for fn in ("int small_run(const int8_t *input, int8_t *output);",
               "void small_quantize_input(const float *x, int8_t *q);",
               "void small_dequantize_output(const int8_t *q, float *y);"):
        assert fn in header
    assert "kwscc_softmax_q7" in header
    assert "arm_softmax_q7" in _compile(built, "a", name="small", legacy_softmax="cmsis").files["small.h"]
    source = compiled.files["small.c"]
    assert '#include "arm_nnfunctions.h"' in source and "static void kwscc_clamp_q7(" in source
    assert "kwscc_avepool_q7_HWC" not in source  # only the kernels a model uses


def test_options_the_q7_api_cannot_honour(built):
    with pytest.raises(UnsupportedError, match="rounding"):
        _compile(built, "a", rounding="single")
    with pytest.raises(UnsupportedError, match="legacy-softmax"):
        _compile(built, "a", legacy_softmax="other")


def _single_conv(tmp_path, w, x_shape, **attrs):
    i = {}
    nodes = [nchw(), conv("conv", "x_nchw", "y", w, inits=i, **attrs)]
    path = save(make_model(nodes, {"x": list(x_shape)}, ["y"], i), tmp_path)
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal((4, *x_shape[1:])).astype(np.float32))
    return compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy"), backend="cmsis-nn-legacy"))


def test_uint16_column_count_is_checked(tmp_path):
    with pytest.raises(UnsupportedError, match="ch_in \\* kernel_x \\* kernel_y must stay below 65536"):
        _single_conv(tmp_path, _w(2, 8192, 3, 3, scale=0.01), (1, 3, 3, 8192))


def test_dilation_is_refused(tmp_path):
    i = {}
    i["conv_w"] = _w(4, 4, 3, 3)
    node = helper.make_node("Conv", ["x_nchw", "conv_w"], ["y"], name="conv", dilations=[2, 2], kernel_shape=[3, 3])
    path = save(make_model([nchw(), node], {"x": [1, 9, 9, 4]}, ["y"], i), tmp_path)
    np.save(tmp_path / "calib.npy", np.ones((2, 9, 9, 4), np.float32))
    with pytest.raises(UnsupportedError, match="dilated"):
        compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy"), backend="cmsis-nn-legacy"))
