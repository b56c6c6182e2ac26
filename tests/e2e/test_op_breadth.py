"""Small models built with the onnx helper API for the ops and exports beyond the keyword spotters:
lookup-table activations, standalone Pad, ReduceMean over spatial axes, a 3-channel NCHW image input,
a Transpose that moves data, opset 9 and opset 18 files. Each is compiled, built for the host
(-Wall -Wextra -Werror -pedantic) and run by `kwscc validate`: the C must equal the simulator bit for
bit, and the int8 model must agree with onnxruntime's float model within the stated thresholds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from kwscc.driver import CompileOptions, compile_model
from kwscc.errors import UnsupportedError
from kwscc.ir.layout import transpose_walk
from kwscc.report.report import build_report, format_table
from kwscc.validate.validate import validate
from tests.models_util import make_model, save

EXPORTS = Path(__file__).resolve().parent.parent / "data" / "exports"
SAMPLES = 48
MIN_TOP1 = 0.9  # argmax agreement with onnxruntime over the samples
MIN_SQNR_DB = 20.0  # of the dequantized output against onnxruntime's


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _conv_params(rng, name: str, cout: int, cin: int, k: int) -> dict:
    return {f"{name}_w": rng.normal(0, 0.4, (cout, cin, k, k)), f"{name}_b": rng.normal(0, 0.1, cout)}


def _head(rng, x: str, channels: int, classes: int = 5) -> tuple[list, dict]:
    """Global average pool -> flatten -> Gemm: a classifier head whose argmax the test compares."""
    nodes = [helper.make_node("GlobalAveragePool", [x], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], transB=1)]
    return nodes, {"fc_w": rng.normal(0, 0.5, (classes, channels)), "fc_b": rng.normal(0, 0.1, classes)}


def _image_data(tmp_path, shape, seed: int = 1) -> str:
    path = tmp_path / "x.npy"
    np.save(path, _rng(seed).normal(0, 1, (SAMPLES, *shape[1:])).astype(np.float32))
    return str(path)


def _compile_and_validate(tmp_path, model: onnx.ModelProto, input_shape, sanitize: bool = False,
                          min_top1: float = MIN_TOP1, min_sqnr_db: float = MIN_SQNR_DB, **options):
    path = save(model, tmp_path)
    data = _image_data(tmp_path, input_shape)
    compiled = compile_model(path, CompileOptions(calib=data, **options))
    result = validate(compiled, data, sanitize=sanitize)
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= min_top1, result["top1_agreement"]
    assert result["output_sqnr_db"] >= min_sqnr_db, result["output_sqnr_db"]
    return compiled, result


def _functions(compiled) -> list[str]:
    """The CMSIS-NN or kwscc function of each layer (the library call a faster kwscc kernel stands in for)."""
    return [getattr(call, "replaces", None) or call.function for call in compiled.calls]


# ---------------------------------------------------------------------------------------------------
# lookup-table activations
# ---------------------------------------------------------------------------------------------------
ACTIVATIONS = {
    "Sigmoid": {}, "Tanh": {}, "HardSigmoid": {"alpha": 0.25, "beta": 0.4}, "HardSwish": {},
    "LeakyRelu": {"alpha": 0.1}, "PRelu": {}, "PRelu_scalar": {},
}
CHANNELS = 6


@pytest.mark.parametrize("acts", [("Sigmoid", "Tanh", "HardSigmoid", "HardSwish"),
                                  ("LeakyRelu", "PRelu", "PRelu_scalar")], ids=["smooth", "piecewise"])
def test_table_activations(tmp_path, acts):
    """conv -> ACT -> conv -> ACT ... -> head: each activation between two convolutions (so none is fused)."""
    rng = _rng()
    shape = [1, 3, 8, 8]
    params = _conv_params(rng, "c0", CHANNELS, 3, 3)
    nodes = [helper.make_node("Conv", ["x", "c0_w", "c0_b"], ["c0"], pads=[1, 1, 1, 1])]
    for i, act in enumerate(acts, start=1):
        op, inputs = act.split("_")[0], [f"c{i - 1}"]
        if op == "PRelu":
            params[f"slope{i}"] = rng.uniform(0.05, 0.4, (CHANNELS, 1, 1) if act == "PRelu" else (1,))
            inputs.append(f"slope{i}")
        params.update(_conv_params(rng, f"c{i}", CHANNELS, CHANNELS, 1))
        nodes += [helper.make_node(op, inputs, [f"a{i}"], name=f"act_{act}", **ACTIVATIONS[act]),
                  helper.make_node("Conv", [f"a{i}", f"c{i}_w", f"c{i}_b"], [f"c{i}"])]
    head, head_params = _head(rng, f"c{len(acts)}", CHANNELS)
    model = make_model(nodes + head, {"x": shape}, ["y"], {**params, **head_params}, opset=14)  # HardSwish: 14
    compiled, _ = _compile_and_validate(tmp_path, model, shape)
    for act in acts:
        call = next(c for c in compiled.calls if c.node.name == f"act_{act}")
        assert call.function == "kwscc_table_s8"
        table = call.arrays[0]
        assert table.role == "table" and table.values.dtype == np.int8
        assert table.values.size == 256 * (CHANNELS if act == "PRelu" else 1)  # flash: 256 B per row


# ---------------------------------------------------------------------------------------------------
# layout: a 3-channel NCHW image input, a Transpose that moves data
# ---------------------------------------------------------------------------------------------------
def test_nchw_image_input_costs_no_transpose(tmp_path):
    """The input's NCHW -> NHWC transpose happens in quantize_input: no kernel, no arena bytes, even
    with a layout-free op (a Relu no producer absorbs: a table) first. Built with ASan/UBSan, with a
    standalone pad and a mean over H only on the way."""
    rng = _rng(2)
    shape = [1, 3, 10, 8]
    params = {**_conv_params(rng, "c1", 8, 3, 3), **_conv_params(rng, "c2", 8, 8, 3),
              "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "value": np.array(-0.25, np.float32),
              "axes": np.array([2], np.int64), "fc_w": rng.normal(0, 0.5, (5, 8 * 3)), "fc_b": rng.normal(0, 0.1, 5)}
    nodes = [helper.make_node("Relu", ["x"], ["rx"], name="input_relu"),
             helper.make_node("Conv", ["rx", "c1_w", "c1_b"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Tanh", ["c1"], ["a1"]),
             helper.make_node("Pad", ["a1", "pads", "value"], ["p1"]),
             helper.make_node("MaxPool", ["p1"], ["m1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["m1", "c2_w", "c2_b"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMean", ["c2", "axes"], ["r"], keepdims=1),  # [1, 8, 1, 3]
             helper.make_node("Flatten", ["r"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], transB=1)]
    model = make_model(nodes, {"x": shape}, ["y"], params, opset=18)
    compiled, _ = _compile_and_validate(tmp_path, model, shape, sanitize=True)
    assert _functions(compiled) == ["kwscc_table_s8", "arm_convolve_wrapper_s8", "kwscc_table_s8", "kwscc_pad_s8",
                                    "arm_max_pool_s8", "arm_convolve_wrapper_s8", "arm_avgpool_s8",
                                    "arm_convolve_wrapper_s8"]
    header, source = compiled.files["model.h"], compiled.files["model.c"]
    assert "x is in the model's own layout [1, 3, 10, 8]" in header
    walk = transpose_walk((1, 3, 10, 8), (0, 2, 3, 1))
    assert walk == ([1, 10, 8, 3], [0, 8, 1, 80])
    assert "static const int32_t stride[4] = {0, 8, 1, 80};" in source
    # the quantized input is the NHWC tensor in the caller's buffer: the first table reads `input`
    assert compiled.calls[0].node.name == "input_relu"
    assert compiled.plan.location(compiled.calls[0].node.inputs[0])[0] == "input"


def test_transpose_that_moves_data(tmp_path):
    """A model whose output is an NCHW feature map: the final NHWC -> NCHW transpose is a kernel."""
    rng = _rng(3)
    shape = [1, 2, 5, 4]
    params = {**_conv_params(rng, "c1", 3, 2, 3)}
    nodes = [helper.make_node("Conv", ["x", "c1_w", "c1_b"], ["y"], pads=[1, 1, 1, 1])]
    compiled, _ = _compile_and_validate(tmp_path, make_model(nodes, {"x": shape}, ["y"], params), shape)
    assert _functions(compiled) == ["arm_convolve_wrapper_s8", "kwscc_transpose_s8"]


def test_zero_pad_folds_into_the_convolution(tmp_path):
    rng = _rng(4)
    shape = [1, 3, 6, 6]
    params = {**_conv_params(rng, "c1", 4, 3, 3), "pads": np.array([0, 0, 2, 1, 0, 0, 0, 1], np.int64)}
    head, head_params = _head(rng, "c1", 4)
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"]), helper.make_node("Conv", ["p", "c1_w", "c1_b"], ["c1"]),
             *head]
    compiled, _ = _compile_and_validate(tmp_path, make_model(nodes, {"x": shape}, ["y"], {**params, **head_params}),
                                        shape)
    assert "kwscc_pad_s8" not in _functions(compiled)
    conv = next(n for n in compiled.graph.nodes() if n.op == "Conv")
    assert conv.attrs["pads"] == (2, 1, 0, 1)  # (top, left, bottom, right) from ONNX begins H2 W1, ends H0 W1


# ---------------------------------------------------------------------------------------------------
# old and new exports
# ---------------------------------------------------------------------------------------------------
def test_opset9_model_is_converted_on_load(tmp_path):
    rng = _rng(5)
    shape = [1, 3, 6, 6]
    params = {**_conv_params(rng, "c1", 4, 3, 3), "s": rng.uniform(0.5, 1.5, 4), "bb": rng.normal(0, 0.1, 4),
              "mu": rng.normal(0, 0.1, 4), "var": rng.uniform(0.5, 1.5, 4)}
    head, head_params = _head(rng, "r", 4)
    nodes = [helper.make_node("Conv", ["x", "c1_w", "c1_b"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "s", "bb", "mu", "var"], ["bn"]),
             helper.make_node("Clip", ["bn"], ["r"], min=0.0, max=6.0), *head]  # opset 9: bounds are attributes
    model = make_model(nodes, {"x": shape}, ["y"], {**params, **head_params}, opset=9)
    path = save(model, tmp_path, "old.onnx")
    before = path.read_bytes()
    compiled, _ = _compile_and_validate(tmp_path, model, shape)
    assert path.read_bytes() == before  # the user's file is untouched
    conv = next(n for n in compiled.graph.nodes() if n.op == "Conv")
    assert conv.attrs["act"] == (0.0, 6.0)


def test_opset_conversion_failure_is_one_clear_error(tmp_path, monkeypatch):
    import onnx.version_converter

    def refuse(model, target):
        raise RuntimeError("No Adapter For Foo\nmore lines")

    monkeypatch.setattr(onnx.version_converter, "convert_version", refuse)
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": [1, 4]}, ["y"], opset=8)
    with pytest.raises(UnsupportedError, match=r"opset 8 could not be converted to opset 13 \(No Adapter For Foo\)"):
        compile_model(save(model, tmp_path), CompileOptions())


def test_opset18_tensor_valued_axes(tmp_path):
    """ReduceMean, Squeeze, Unsqueeze and Pad with their axes as tensor inputs (opset 18 forms)."""
    rng = _rng(6)
    shape = [1, 3, 6, 6]
    params = {**_conv_params(rng, "c1", 4, 3, 3), "hw": np.array([-1, -2], np.int64), "sq": np.array([2, 3], np.int64),
              "us": np.array([1], np.int64), "pads": np.array([1, 1], np.int64), "pad_axes": np.array([3], np.int64),
              "fc_w": rng.normal(0, 0.5, (5, 4)), "fc_b": rng.normal(0, 0.1, 5)}
    nodes = [helper.make_node("Pad", ["x", "pads", "", "pad_axes"], ["p"]),
             helper.make_node("Conv", ["p", "c1_w", "c1_b"], ["c1"]),
             helper.make_node("Sigmoid", ["c1"], ["s1"]),
             helper.make_node("ReduceMean", ["s1", "hw"], ["m"], keepdims=1),
             helper.make_node("Squeeze", ["m", "sq"], ["sqz"]),
             helper.make_node("Unsqueeze", ["sqz", "us"], ["u"]),
             helper.make_node("Flatten", ["u"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], transB=1)]
    model = make_model(nodes, {"x": shape}, ["y"], params, opset=18)
    compiled, _ = _compile_and_validate(tmp_path, model, shape)
    assert _functions(compiled) == ["arm_convolve_wrapper_s8", "kwscc_table_s8", "arm_avgpool_s8",
                                    "arm_convolve_wrapper_s8"]


@pytest.mark.parametrize("opset", [11, 18])
def test_split_into_two_branches(tmp_path, opset):
    """Split (sizes as an attribute at opset 11, as a tensor input at 18) -> two branches -> Concat."""
    rng = _rng(10)
    shape = [1, 3, 8, 8]
    params = {**_conv_params(rng, "c1", 8, 3, 3), **_conv_params(rng, "ca", 4, 3, 3), **_conv_params(rng, "cb", 4, 5, 1)}
    if opset >= 13:
        params["sizes"] = np.array([3, 5], np.int64)
        split = helper.make_node("Split", ["c1", "sizes"], ["s1", "s2"], axis=1)
    else:
        split = helper.make_node("Split", ["c1"], ["s1", "s2"], axis=1, split=[3, 5])
    head, head_params = _head(rng, "cat", 8)
    nodes = [helper.make_node("Conv", ["x", "c1_w", "c1_b"], ["c1"], pads=[1, 1, 1, 1]), split,
             helper.make_node("Conv", ["s1", "ca_w", "ca_b"], ["ca"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["s2"], ["g"]), helper.make_node("Conv", ["g", "cb_w", "cb_b"], ["cb"]),
             helper.make_node("Concat", ["ca", "cb"], ["cat"], axis=1), *head]
    model = make_model(nodes, {"x": shape}, ["y"], {**params, **head_params}, opset=opset)
    # lower bars: this random net's global average pool keeps the concat's format and loses ~15 dB there
    # (the crops themselves copy bytes: per-layer SQNR equals their input's); a wrong slice would fall far lower
    compiled, _ = _compile_and_validate(tmp_path, model, shape, min_top1=0.85, min_sqnr_db=17.0)
    crops = [c.params for c in compiled.calls if c.function == "kwscc_crop_s8"]
    assert [(p["offset"], p["block"], p["x_stride"]) for p in crops] == [(0, 3, 8), (3, 5, 8)]  # channels, NHWC


# ---------------------------------------------------------------------------------------------------
# the legacy backend refuses what it has no kernel for, by node and op
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["Sigmoid", "Pad"])
def test_legacy_backend_refuses_new_ops_by_name(tmp_path, op):
    rng = _rng(7)
    shape = [1, 1, 4, 4]  # one channel: the layout change moves no data
    params = {**_conv_params(rng, "c1", 2, 1, 1), "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
              "value": np.array(1.0, np.float32)}
    inputs = ["c1", "pads", "value"] if op == "Pad" else ["c1"]
    nodes = [helper.make_node("Conv", ["x", "c1_w", "c1_b"], ["c1"]),
             helper.make_node(op, inputs, ["a"], name="user_node"),
             helper.make_node("MaxPool", ["a"], ["y"], kernel_shape=[2, 2])]
    path = save(make_model(nodes, {"x": shape}, ["y"], params), tmp_path)
    data = _image_data(tmp_path, shape)
    with pytest.raises(UnsupportedError, match=f"node 'user_node' \\({op}\\): not supported by the "
                                               "cmsis-nn-legacy backend"):
        compile_model(path, CompileOptions(calib=data, backend="cmsis-nn-legacy"))


def test_layout_transpose_errors_name_the_users_node(tmp_path):
    """The legacy backend has no transpose kernel: an NCHW model output needs one, and the message names
    the Conv the layout change is for, not kwscc's internal node."""
    rng = _rng(8)
    shape = [1, 1, 4, 4]  # one input channel: only the output's layout change moves data
    nodes = [helper.make_node("Conv", ["x", "c1_w", "c1_b"], ["y"], name="last_conv")]
    path = save(make_model(nodes, {"x": shape}, ["y"], _conv_params(rng, "c1", 2, 1, 1)), tmp_path)
    with pytest.raises(UnsupportedError, match="node 'last_conv' \\(Conv\\): the NCHW/NHWC Transpose kwscc adds "
                                               "next to it: a Transpose that moves data is not supported by the "
                                               "cmsis-nn-legacy backend"):
        compile_model(path, CompileOptions(calib=_image_data(tmp_path, shape), backend="cmsis-nn-legacy"))


def test_legacy_backend_nchw_image_input(tmp_path):
    """The q7 backend takes a 3-channel NCHW image too: quantize_input transposes it."""
    rng = _rng(9)
    shape = [1, 3, 8, 8]
    params = {**_conv_params(rng, "c1", 8, 3, 5), "fc_w": rng.normal(0, 0.3, (5, 8 * 4 * 4)),
              "fc_b": rng.normal(0, 0.1, 5)}
    nodes = [helper.make_node("Conv", ["x", "c1_w", "c1_b"], ["c1"], pads=[2, 2, 2, 2]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["m1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["m1"], ["f"]), helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], transB=1)]
    compiled, _ = _compile_and_validate(tmp_path, make_model(nodes, {"x": shape}, ["y"], params), shape,
                                        backend="cmsis-nn-legacy")
    assert "x is in the model's own layout [1, 3, 8, 8]" in compiled.files["model.h"]
    assert not any("transpose" in f for f in _functions(compiled))


def test_torch_dynamo_export(tmp_path):
    """A PyTorch image model exported with torch.onnx.export(dynamo=True) at opset 20 (checked in:
    tests/data/exports/make_torch_exports.py regenerates it; torch is not a test dependency)."""
    path = EXPORTS / "tiny_image_dynamo.onnx"
    data = _image_data(tmp_path, [1, 3, 16, 16])
    compiled = compile_model(path, CompileOptions(calib=data))
    result = validate(compiled, data)
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= MIN_TOP1 and result["output_sqnr_db"] >= MIN_SQNR_DB, result
    assert compiled.files["tiny_image_dynamo.h"].count("x is in the model's own layout [1, 3, 16, 16]") == 1
    assert "kwscc_transpose_s8" not in _functions(compiled)
    assert sorted(f for f in _functions(compiled) if f.startswith("kwscc_")) == ["kwscc_table_s8"] * 4
    # flash: HardSwish, LeakyRelu and Sigmoid one 256-byte table each, the 12-channel PRelu one per channel
    report = build_report(compiled, measure_code=False)
    assert "quantization params" in format_table(report) and "(lookup tables 3,840)" in format_table(report)


def test_backend_errors_name_the_users_op_type(tmp_path):
    """kwscc lowers Gemm to its Dense op; the message still says Gemm, with the node's name."""
    rng = _rng(11)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)]
    path = save(make_model(nodes, {"x": [2, 3]}, ["y"], {"w": rng.normal(0, 1, (4, 3)), "b": np.zeros(4)}), tmp_path)
    with pytest.raises(UnsupportedError, match=r"^node 'fc' \(Gemm\): batch size must be 1"):
        compile_model(path, CompileOptions(calib=_image_data(tmp_path, [2, 3])))


@pytest.mark.parametrize("op, attrs", [("LeakyRelu", {"alpha": float("nan")}), ("HardSigmoid", {"beta": float("inf")})])
def test_non_finite_table_parameters_are_one_clear_error(tmp_path, op, attrs):
    from kwscc.errors import ModelError

    model = make_model([helper.make_node(op, ["x"], ["y"], name="act", **attrs)], {"x": [1, 4]}, ["y"], check=False)
    with pytest.raises(ModelError, match=f"node 'act' \\({op}\\): (alpha|beta) is (nan|inf); it must be a finite"):
        compile_model(save(model, tmp_path), CompileOptions(calib=_image_data(tmp_path, [1, 4])))
