"""ONNX frontend: every supported ONNX op maps to canonical ops that compute what onnxruntime computes,
and unreadable / unsupported models fail with a clear kwscc error."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from kwscc.errors import KwsccError, ModelError, UnsupportedError
from kwscc.frontends import read_model
from kwscc.frontends.onnx_reader import MAX_OPSET, MIN_OPSET, OLDEST_CONVERTIBLE, supported_ops
from tests.models_util import KWS, kwscc_outputs, make_model, ort_run, read_and_compare, save

RNG = np.random.default_rng(1234)


def rnd(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def variance(n):
    return RNG.uniform(0.5, 2.0, n).astype(np.float32)


def node(op, inputs, outputs, name=None, **attrs):
    return helper.make_node(op, inputs, outputs, name=name or f"{op.lower()}_{outputs[0]}", **attrs)


def by_op(graph, op):
    found = [n for n in graph.nodes() if n.op == op]
    assert found, f"no {op} node in {graph.ops()}"
    return found


# ---------------------------------------------------------------------------------------------------
# Conv
# ---------------------------------------------------------------------------------------------------
def test_conv_plain(tmp_path):
    m = make_model([node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])], {"x": [1, 3, 8, 6]}, ["y"],
                   {"w": rnd(5, 3, 3, 3), "b": rnd(5)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Conv"]
    conv = g.nodes()[0]
    assert conv.attrs["layout"] == "NCHW" and conv.attrs["group"] == 1 and conv.attrs["act"] is None
    assert conv.attrs["pads"] == (1, 1, 1, 1) and conv.attrs["strides"] == (1, 1)
    assert g.tensors["y"].shape == (1, 5, 8, 6)


def test_conv_no_bias_dilated(tmp_path):
    m = make_model([node("Conv", ["x", "w"], ["y"], dilations=[2, 1], pads=[2, 1, 2, 1])], {"x": [1, 2, 9, 7]}, ["y"],
                   {"w": rnd(4, 2, 3, 3)})
    g = read_and_compare(m, tmp_path)
    assert g.nodes()[0].attrs["dilations"] == (2, 1)
    assert len(g.nodes()[0].inputs) == 2


def test_conv_depthwise(tmp_path):
    m = make_model([node("Conv", ["x", "w", "b"], ["y"], group=4, pads=[1, 1, 1, 1])], {"x": [1, 4, 7, 5]}, ["y"],
                   {"w": rnd(4, 1, 3, 3), "b": rnd(4)})
    g = read_and_compare(m, tmp_path)
    assert g.nodes()[0].attrs["group"] == 4
    assert g.tensors["y"].shape == (1, 4, 7, 5)


def test_conv_depthwise_multiplier(tmp_path):
    m = make_model([node("Conv", ["x", "w", "b"], ["y"], group=3, pads=[0, 1, 0, 1])], {"x": [1, 3, 6, 6]}, ["y"],
                   {"w": rnd(6, 1, 3, 3), "b": rnd(6)})
    read_and_compare(m, tmp_path)


def test_conv_asymmetric_pads(tmp_path):
    # ONNX pads are [top, left, bottom, right]
    m = make_model([node("Conv", ["x", "w", "b"], ["y"], pads=[0, 2, 1, 0])], {"x": [1, 2, 6, 5]}, ["y"],
                   {"w": rnd(3, 2, 3, 3), "b": rnd(3)})
    g = read_and_compare(m, tmp_path)
    assert g.nodes()[0].attrs["pads"] == (0, 2, 1, 0)
    assert g.tensors["y"].shape == (1, 3, 5, 5)


def test_conv_stride2(tmp_path):
    m = make_model([node("Conv", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])], {"x": [1, 3, 9, 8]}, ["y"],
                   {"w": rnd(4, 3, 3, 3), "b": rnd(4)})
    g = read_and_compare(m, tmp_path)
    assert g.nodes()[0].attrs["strides"] == (2, 2)
    assert g.tensors["y"].shape == (1, 4, 5, 4)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad(tmp_path, auto_pad):
    m = make_model([node("Conv", ["x", "w", "b"], ["y"], strides=[2, 2], auto_pad=auto_pad)], {"x": [1, 2, 10, 8]}, ["y"],
                   {"w": rnd(3, 2, 4, 3), "b": rnd(3)})
    g = read_and_compare(m, tmp_path)
    pads = g.nodes()[0].attrs["pads"]
    if auto_pad == "SAME_UPPER":  # total pad 2 on H (split), 1 on W (at the end)
        assert pads == (1, 0, 1, 1)
    elif auto_pad == "SAME_LOWER":
        assert pads == (1, 1, 1, 0)
    else:
        assert pads == (0, 0, 0, 0)


# ---------------------------------------------------------------------------------------------------
# Gemm, MatMul
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_trans_b(tmp_path, trans_b):
    w = rnd(6, 10) if trans_b else rnd(10, 6)
    m = make_model([node("Gemm", ["x", "w", "b"], ["y"], transB=trans_b)], {"x": [1, 10]}, ["y"], {"w": w, "b": rnd(6)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Dense"]
    dense = g.nodes()[0]
    expected_w = w if trans_b else w.T
    np.testing.assert_array_equal(g.tensors[dense.inputs[1]].data, expected_w)  # canonical [out, in]


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_alpha_beta(tmp_path, trans_b):
    w = rnd(4, 7) if trans_b else rnd(7, 4)
    m = make_model([node("Gemm", ["x", "w", "b"], ["y"], transB=trans_b, alpha=0.37, beta=-1.6)], {"x": [1, 7]}, ["y"],
                   {"w": w, "b": rnd(4)})
    read_and_compare(m, tmp_path)


def test_gemm_no_bias_and_scalar_bias(tmp_path):
    m = make_model([node("Gemm", ["x", "w"], ["h"], transB=1), node("Gemm", ["h", "w2", "c"], ["y"], beta=0.5)],
                   {"x": [1, 5]}, ["y"], {"w": rnd(3, 5), "w2": rnd(3, 2), "c": np.array(0.75, np.float32)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Dense", "Dense"]


def test_gemm_bias_row_vector(tmp_path):
    """C of shape [1, N] is valid ONNX (unidirectional broadcast) and common in tf2onnx/keras exports."""
    m = make_model([node("Gemm", ["x", "w", "b"], ["y"], transB=1)], {"x": [1, 5]}, ["y"],
                   {"w": rnd(4, 5), "b": rnd(1, 4)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Dense"]


def test_matmul_add(tmp_path):
    m = make_model([node("MatMul", ["x", "w"], ["mm"]), node("Add", ["mm", "b"], ["y"])], {"x": [1, 12]}, ["y"],
                   {"w": rnd(12, 5), "b": rnd(5)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Dense", "Add"]
    np.testing.assert_array_equal(g.tensors[g.nodes()[0].inputs[1]].data.shape, (5, 12))


# ---------------------------------------------------------------------------------------------------
# BatchNormalization, activations
# ---------------------------------------------------------------------------------------------------
def test_batchnorm(tmp_path):
    c = 4
    m = make_model([node("BatchNormalization", ["x", "s", "b", "mu", "var"], ["y"], epsilon=1e-3)], {"x": [1, c, 5, 3]},
                   ["y"], {"s": rnd(c), "b": rnd(c), "mu": rnd(c), "var": variance(c)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["BatchNormalization"]
    assert g.nodes()[0].attrs["epsilon"] == pytest.approx(1e-3)


def test_relu(tmp_path):
    m = make_model([node("Relu", ["x"], ["y"])], {"x": [1, 3, 4, 4]}, ["y"])
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Relu"]


def test_clip_min_max_inputs(tmp_path):
    m = make_model([node("Clip", ["x", "lo", "hi"], ["y"])], {"x": [1, 20]}, ["y"],
                   {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Clip"]
    assert (g.nodes()[0].attrs["min"], g.nodes()[0].attrs["max"]) == (pytest.approx(-0.5), pytest.approx(0.7))


def test_clip_relu6(tmp_path):
    m = make_model([node("Clip", ["x", "lo", "hi"], ["y"])], {"x": [1, 2, 6, 6]}, ["y"],
                   {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)})
    feeds = {"x": rnd(1, 2, 6, 6, scale=6.0)}
    assert (feeds["x"] > 6).any() and (feeds["x"] < 0).any()
    g = read_and_compare(m, tmp_path, feeds)
    assert (g.nodes()[0].attrs["min"], g.nodes()[0].attrs["max"]) == (0.0, 6.0)


def test_clip_only_max(tmp_path):
    m = make_model([node("Clip", ["x", "", "hi"], ["y"])], {"x": [1, 10]}, ["y"], {"hi": np.array(0.2, np.float32)})
    g = read_and_compare(m, tmp_path)
    assert g.nodes()[0].attrs["min"] == -np.inf


# ---------------------------------------------------------------------------------------------------
# Pooling and ReduceMean
# ---------------------------------------------------------------------------------------------------
def test_maxpool(tmp_path):
    m = make_model([node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
                   {"x": [1, 3, 9, 8]}, ["y"])
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["MaxPool"] and g.nodes()[0].attrs["kernel"] == (3, 3)


@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 1]])
def test_averagepool(tmp_path, pads):
    m = make_model([node("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[1, 2], pads=pads)],
                   {"x": [1, 2, 7, 6]}, ["y"])
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["AveragePool"] and g.nodes()[0].attrs["pads"] == tuple(pads)


def test_global_average_pool(tmp_path):
    m = make_model([node("GlobalAveragePool", ["x"], ["y"])], {"x": [1, 5, 6, 4]}, ["y"])
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["AveragePool"]
    assert g.nodes()[0].attrs["kernel"] == (6, 4)
    assert g.tensors["y"].shape == (1, 5, 1, 1)


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes", [[2, 3], [-1, -2]])
def test_reduce_mean_attr_axes_opset13(tmp_path, keepdims, axes):
    m = make_model([node("ReduceMean", ["x"], ["y"], axes=axes, keepdims=keepdims)], {"x": [1, 6, 5, 3]}, ["y"])
    g = read_and_compare(m, tmp_path)
    assert g.ops() == (["AveragePool"] if keepdims else ["AveragePool", "Reshape"])
    assert g.tensors["y"].shape == ((1, 6, 1, 1) if keepdims else (1, 6))


@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_mean_input_axes_opset18(tmp_path, keepdims):
    m = make_model([node("ReduceMean", ["x", "axes"], ["y"], keepdims=keepdims)], {"x": [1, 6, 5, 3]}, ["y"],
                   {"axes": np.array([2, 3], np.int64)}, opset=18)
    g = read_and_compare(m, tmp_path)
    assert g.tensors["y"].shape == ((1, 6, 1, 1) if keepdims else (1, 6))


def test_reduce_mean_over_channels_unsupported(tmp_path):
    m = make_model([node("ReduceMean", ["x"], ["y"], name="rm_c", axes=[1])], {"x": [1, 6, 5, 3]}, ["y"])
    with pytest.raises(UnsupportedError, match=r"rm_c.*ReduceMean.*spatial axes.*not axes \[1\]"):
        read_model(save(m, tmp_path))


# ---------------------------------------------------------------------------------------------------
# Shape-changing ops
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [1, 2, -1])
def test_flatten(tmp_path, axis):
    m = make_model([node("Flatten", ["x"], ["y"], axis=axis)], {"x": [1, 3, 4, 5]}, ["y"])
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Reshape"]
    expected = {1: (1, 60), 2: (3, 20), -1: (12, 5)}[axis]
    assert g.nodes()[0].attrs["shape"] == expected


@pytest.mark.parametrize("target, expected", [([0, -1], (1, 60)), ([0, 0, -1], (1, 3, 20)), ([1, -1, 5, 2], (1, 6, 5, 2))])
def test_reshape_zero_and_minus_one(tmp_path, target, expected):
    m = make_model([node("Reshape", ["x", "shape"], ["y"])], {"x": [1, 3, 4, 5]}, ["y"],
                   {"shape": np.array(target, np.int64)})
    g = read_and_compare(m, tmp_path)
    assert g.nodes()[0].attrs["shape"] == expected
    assert g.tensors["y"].shape == expected


def test_squeeze_opset13_axes_input(tmp_path):
    m = make_model([node("Squeeze", ["x", "axes"], ["y"])], {"x": [1, 4, 1, 1]}, ["y"], {"axes": np.array([2, 3], np.int64)})
    g = read_and_compare(m, tmp_path)
    assert g.nodes()[0].attrs["shape"] == (1, 4)


def test_squeeze_no_axes(tmp_path):
    m = make_model([node("Squeeze", ["x"], ["y"])], {"x": [1, 4, 1, 3]}, ["y"])
    g = read_and_compare(m, tmp_path)
    assert g.tensors["y"].shape == (4, 3)


def test_unsqueeze_opset13_axes_input(tmp_path):
    m = make_model([node("Unsqueeze", ["x", "axes"], ["y"])], {"x": [1, 4]}, ["y"], {"axes": np.array([-1, 2], np.int64)})
    g = read_and_compare(m, tmp_path)
    assert g.tensors["y"].shape == (1, 4, 1, 1)


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], [0, 3, 1, 2], None])
def test_transpose(tmp_path, perm):
    attrs = {} if perm is None else {"perm": perm}
    m = make_model([node("Transpose", ["x"], ["y"], **attrs)], {"x": [1, 2, 3, 4]}, ["y"])
    g = read_and_compare(m, tmp_path)
    assert g.nodes()[0].attrs["perm"] == (tuple(perm) if perm else (3, 2, 1, 0))


def test_softmax_last_axis(tmp_path):
    m = make_model([node("Softmax", ["x"], ["y"])], {"x": [1, 12]}, ["y"])
    g = read_and_compare(m, tmp_path, {"x": rnd(1, 12, scale=4.0)})
    assert g.ops() == ["Softmax"]


def test_softmax_channel_axis_with_unit_trailing_dims(tmp_path):
    """Softmax(axis=1) on [1, C, 1, 1] (e.g. after GlobalAveragePool) is a softmax over the C classes."""
    m = make_model([node("Softmax", ["x"], ["y"], axis=1)], {"x": [1, 6, 1, 1]}, ["y"])
    read_and_compare(m, tmp_path, {"x": rnd(1, 6, 1, 1, scale=3.0)})


def test_softmax_over_non_last_axis_unsupported(tmp_path):
    m = make_model([node("Softmax", ["x"], ["y"], name="sm", axis=1)], {"x": [1, 6, 3]}, ["y"])
    with pytest.raises(UnsupportedError, match="sm.*Softmax"):
        read_model(save(m, tmp_path))


def test_identity_and_dropout(tmp_path):
    m = make_model([node("Identity", ["x"], ["a"]), node("Dropout", ["a", "ratio"], ["b"]), node("Relu", ["b"], ["y"])],
                   {"x": [1, 8]}, ["y"], {"ratio": np.array(0.3, np.float32)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Identity", "Identity", "Relu"]


def test_dropout_training_mode_is_rejected(tmp_path):
    """Dropout with a constant training_mode=True is random at inference time: not an Identity."""
    m = make_model([node("Dropout", ["x", "ratio", "training"], ["y"], name="drop")], {"x": [1, 8]}, ["y"],
                   {"ratio": np.array(0.5, np.float32), "training": np.array(True)})
    with pytest.raises(UnsupportedError, match="drop.*training"):
        read_model(save(m, tmp_path))


def test_shape_gather_concat_reshape_subgraph(tmp_path):
    """The PyTorch flatten idiom: Shape -> Gather(0) -> Unsqueeze -> Concat([n, -1]) -> Reshape."""
    nodes = [
        node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        node("Shape", ["c"], ["shape"]),
        node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
        node("Gather", ["shape", "zero"], ["n"], axis=0),
        node("Constant", [], ["ax0"], value=numpy_helper.from_array(np.array([0], np.int64))),
        node("Unsqueeze", ["n", "ax0"], ["n1"]),
        node("Constant", [], ["minus1"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        node("Concat", ["n1", "minus1"], ["target"], axis=0),
        node("Reshape", ["c", "target"], ["flat"]),
        node("Gemm", ["flat", "gw", "gb"], ["y"], transB=1),
    ]
    m = make_model(nodes, {"x": [1, 2, 4, 3]}, ["y"], {"w": rnd(3, 2, 3, 3), "gw": rnd(5, 36), "gb": rnd(5)})
    g = read_and_compare(m, tmp_path)
    g.verify()
    reshape = [n for n in g.nodes() if n.op == "Reshape" and n.inputs[0] == "c"]
    assert len(reshape) == 1 and reshape[0].attrs["shape"] == (1, 36)
    assert g.tensors["target"].is_const
    np.testing.assert_array_equal(g.tensors["target"].data, [1, -1])


def test_shape_start_end(tmp_path):
    """Shape-15 start/end: Shape(x, end=1) is [N]; Concat([N], [-1]) then flattens x."""
    nodes = [
        node("Shape", ["x"], ["n"], end=1),
        node("Concat", ["n", "minus1"], ["target"], axis=0),
        node("Reshape", ["x", "target"], ["y"]),
    ]
    m = make_model(nodes, {"x": [1, 3, 4, 5]}, ["y"], {"minus1": np.array([-1], np.int64)}, opset=15)
    g = read_and_compare(m, tmp_path)
    np.testing.assert_array_equal(g.tensors["n"].data, [1])
    assert g.tensors["y"].shape == (1, 60)


def test_constant_nodes(tmp_path):
    nodes = [
        node("Constant", [], ["w"], value=numpy_helper.from_array(rnd(4, 6), "w_value")),
        node("Constant", [], ["b"], value=numpy_helper.from_array(rnd(4), "b_value")),
        node("Constant", [], ["scale"], value_float=0.5),
        node("Constant", [], ["shift"], value_floats=[0.1, -0.2, 0.3, 0.0]),
        node("Gemm", ["x", "w", "b"], ["d"], transB=1),
        node("Mul", ["d", "scale"], ["m"]),
        node("Add", ["m", "shift"], ["y"]),
    ]
    m = make_model(nodes, {"x": [1, 6]}, ["y"])
    g = read_and_compare(m, tmp_path)
    for name in ("w", "b", "scale", "shift"):
        assert g.tensors[name].is_const
    # ONNX: value_float / value_floats are float32 constants
    assert g.tensors["scale"].dtype == "float32"
    assert g.tensors["shift"].dtype == "float32"


def test_arithmetic_with_constants(tmp_path):
    nodes = [
        node("Sub", ["x", "mean"], ["a"]),
        node("Div", ["a", "std"], ["b"]),
        node("Mul", ["gain", "b"], ["c"]),
        node("Add", ["c", "offset"], ["y"]),
    ]
    m = make_model(nodes, {"x": [1, 3, 4, 4]}, ["y"],
                   {"mean": rnd(1, 3, 1, 1), "std": variance(3).reshape(1, 3, 1, 1), "gain": rnd(3, 1, 1), "offset": rnd(1)})
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Sub", "Div", "Mul", "Add"]


# ---------------------------------------------------------------------------------------------------
# Opsets 11 and 21
# ---------------------------------------------------------------------------------------------------
def test_opset11_model(tmp_path):
    nodes = [
        node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        node("Clip", ["c", "lo", "hi"], ["r"]),
        node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("ReduceMean", ["p"], ["gap"], axes=[2, 3], keepdims=1),
        node("Squeeze", ["gap"], ["sq"], axes=[2, 3]),
        node("Unsqueeze", ["sq"], ["us"], axes=[2]),
        node("Flatten", ["us"], ["f"]),
        node("Gemm", ["f", "gw", "gb"], ["logits"], transB=1),
        node("Softmax", ["logits"], ["y"]),  # opset 11: default axis=1
    ]
    m = make_model(nodes, {"x": [1, 1, 8, 6]}, ["y"],
                   {"w": rnd(4, 1, 3, 3), "b": rnd(4), "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
                    "gw": rnd(3, 4), "gb": rnd(3)}, opset=11)
    g = read_and_compare(m, tmp_path)
    assert g.ops() == ["Conv", "Clip", "MaxPool", "AveragePool", "Reshape", "Reshape", "Reshape", "Dense", "Softmax"]


def test_opset21_model(tmp_path):
    nodes = [
        node("Conv", ["x", "w", "b"], ["c"], group=2, pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["bn"]),
        node("Relu", ["bn"], ["r"]),
        node("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        node("ReduceMean", ["p", "axes"], ["gap"], keepdims=0),
        node("Unsqueeze", ["gap", "ax"], ["us"]),
        node("Squeeze", ["us", "ax"], ["sq"]),
        node("Reshape", ["sq", "shape"], ["rs"]),
        node("Gemm", ["rs", "gw", "gb"], ["logits"], transB=1),
        node("Softmax", ["logits"], ["y"], axis=-1),
    ]
    m = make_model(nodes, {"x": [1, 2, 8, 6]}, ["y"],
                   {"w": rnd(4, 1, 3, 3), "b": rnd(4), "s": rnd(4), "bb": rnd(4), "mu": rnd(4), "var": variance(4),
                    "axes": np.array([2, 3], np.int64), "ax": np.array([2], np.int64),
                    "shape": np.array([0, -1], np.int64), "gw": rnd(3, 4), "gb": rnd(3)}, opset=21)
    g = read_and_compare(m, tmp_path)
    assert "BatchNormalization" in g.ops() and g.ops()[-2:] == ["Dense", "Softmax"]


def test_real_model_matches_onnxruntime():
    graph = read_model(KWS / "ds_cnn_s.onnx")
    graph.verify()
    x = np.load(KWS / "kws_synth.npz")["test_x490"][:1].astype(np.float32)
    expected = ort_run(KWS / "ds_cnn_s.onnx", {graph.inputs[0]: x})[0]
    np.testing.assert_allclose(kwscc_outputs(graph, {graph.inputs[0]: x})[0], expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------
def test_truncated_model_is_model_error(tmp_path):
    data = (KWS / "ds_cnn_s.onnx").read_bytes()
    path = tmp_path / "ds_cnn_s_cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="ds_cnn_s_cut.onnx") as info:
        read_model(path)
    assert "ONNX" in str(info.value)


def test_non_onnx_file_is_model_error(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is a text file, not a protobuf\n" * 10)
    with pytest.raises(ModelError, match="notes.onnx.*not a readable ONNX file"):
        read_model(path)


def test_empty_file_is_model_error(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="empty.onnx"):
        read_model(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        read_model(tmp_path / "nope.onnx")
    other = tmp_path / "model.pb"
    other.write_bytes(b"\x08\x07")
    with pytest.raises(ModelError, match="unknown model format '.pb'"):
        read_model(other)


@pytest.mark.parametrize("op", ["Sin", "RNN"])
def test_unsupported_op(tmp_path, op):
    if op == "Sin":
        nodes = [node("Relu", ["x"], ["r"]), node("Sin", ["r"], ["y"], name="the_sine")]
        m = make_model(nodes, {"x": [1, 4]}, ["y"])
        name = "the_sine"
    else:
        h = 3
        nodes = [node("RNN", ["x", "W", "R"], ["y"], name="my_rnn", hidden_size=h)]
        m = make_model(nodes, {"x": [5, 1, 2]}, ["y"], {"W": rnd(1, h, 2), "R": rnd(1, h, h)})
        name = "my_rnn"
    with pytest.raises(UnsupportedError) as info:
        read_model(save(m, tmp_path))
    msg = str(info.value)
    assert name in msg and f"'{op}'" in msg
    assert "Conv" in msg and "Gemm" in msg and "Softmax" in msg  # lists the supported ops
    assert all(o in msg for o in supported_ops())


def test_custom_domain_op_unsupported(tmp_path):
    n = helper.make_node("Relu", ["x"], ["y"], name="custom", domain="com.example")
    graph = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    m.ir_version = 8
    with pytest.raises(UnsupportedError, match="custom.*com.example.Relu"):
        read_model(save(m, tmp_path))


def test_dynamic_non_batch_dim_needs_input_shape(tmp_path):
    nodes = [node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["y"])]
    m = make_model(nodes, {"x": ["N", 2, "time", 5]}, ["y"], {"w": rnd(3, 2, 3, 3)})
    path = save(m, tmp_path)
    with pytest.raises(UnsupportedError) as info:
        read_model(path)
    msg = str(info.value)
    assert "--input-shape" in msg and "'x'" in msg and "time" in msg

    graph = read_model(path, input_shapes={"x": (1, 2, 7, 5)})
    graph.verify()
    assert graph.tensors["x"].shape == (1, 2, 7, 5)
    assert graph.tensors["y"].shape == (1, 3, 7, 5)
    feeds = {"x": rnd(1, 2, 7, 5)}
    np.testing.assert_allclose(kwscc_outputs(graph, feeds)[0], ort_run(m, feeds)[0], atol=1e-5)


def test_symbolic_batch_dim_becomes_one(tmp_path):
    m = make_model([node("Conv", ["x", "w", "b"], ["y"])], {"x": ["batch", 2, 5, 5]}, ["y"], {"w": rnd(3, 2, 3, 3), "b": rnd(3)})
    g = read_and_compare(m, tmp_path)
    assert g.tensors["x"].shape == (1, 2, 5, 5)
    assert g.tensors["y"].shape == (1, 3, 3, 3)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_initializer(tmp_path, bad):
    w = rnd(3, 2, 3, 3)
    w[1, 0, 2, 1] = bad
    m = make_model([node("Conv", ["x", "conv_weight_7", "b"], ["y"])], {"x": [1, 2, 5, 5]}, ["y"],
                   {"conv_weight_7": w, "b": rnd(3)})
    with pytest.raises(ModelError, match="'conv_weight_7'.*NaN or Inf"):
        read_model(save(m, tmp_path))


@pytest.mark.parametrize("opset", [OLDEST_CONVERTIBLE - 1, MAX_OPSET + 1])
def test_unsupported_opset(tmp_path, opset):
    assert (OLDEST_CONVERTIBLE, MIN_OPSET, MAX_OPSET) == (7, 11, 21)
    m = make_model([node("Relu", ["x"], ["y"])], {"x": [1, 4]}, ["y"], opset=opset)
    with pytest.raises(UnsupportedError, match=f"opset {opset} is not supported.*11-21, and 7-10 converted"):
        read_model(save(m, tmp_path))


def test_non_float_input_unsupported(tmp_path):
    graph = helper.make_graph([node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    m.ir_version = 8
    with pytest.raises(UnsupportedError, match="'x' is not float32"):
        read_model(save(m, tmp_path))


def test_non_constant_weights_unsupported(tmp_path):
    m = make_model([node("Conv", ["x", "w"], ["y"], name="conv_dyn")], {"x": [1, 2, 5, 5], "w": [3, 2, 3, 3]}, ["y"])
    with pytest.raises(UnsupportedError, match="conv_dyn.*weights.*'w'.*constant"):
        read_model(save(m, tmp_path))


def test_every_error_is_a_kwscc_error(tmp_path):
    """The error hierarchy the CLI relies on: both classes exit with code 2."""
    assert issubclass(ModelError, KwsccError) and issubclass(UnsupportedError, KwsccError)
    assert ModelError.exit_code == UnsupportedError.exit_code == 2


def test_constant_of_shape_from_the_input_shape(tmp_path):
    """ConstantOfShape of a shape computed from the static input shape (PyTorch's traced torch.zeros) is a
    constant; one beyond kwscc's tensor limit is refused before anything is allocated."""
    value = numpy_helper.from_array(np.array([0.5], np.float32))
    m = make_model([node("Shape", ["x"], ["s"]), node("ConstantOfShape", ["s"], ["c"], value=value),
                    node("Add", ["x", "c"], ["y"])], {"x": [1, 6]}, ["y"])
    read_and_compare(m, tmp_path)
    huge = make_model([node("ConstantOfShape", ["s"], ["c"], value=value), node("Add", ["x", "c"], ["y"])],
                      {"x": [1, 6]}, {"y": [1, 6]}, {"s": np.array([1 << 20, 1 << 20], np.int64)}, infer=False,
                      check=False)
    with pytest.raises(KwsccError, match="ConstantOfShape.*beyond kwscc's limit"):
        read_model(save(huge, tmp_path, "huge.onnx"))
