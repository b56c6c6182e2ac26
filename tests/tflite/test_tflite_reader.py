"""TFLite frontend on small models built in code: every supported operator computes what LiteRT
computes, the layout pass leaves TFLite's NHWC alone, int8 and hybrid models compile (an int8 one
without data), and bad files fail with one clear line and exit status 2."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kwscc.cli import main
from kwscc.driver import CompileOptions, compile_model
from kwscc.errors import KwsccError, ModelError, UnsupportedError
from kwscc.frontends import read_model, reference_runner
from kwscc.frontends.tflite_reader import TflTensor, dequantize_const
from kwscc.ir.execute import run_float
from kwscc.passes import run_pipeline
from kwscc.validate.validate import validate
from tfl_builder import (SAME, VALID, ModelBuilder, conv_options, dw_options, fc_options, litert_run, options,
                         pool_options, quantize_per_channel)

RNG = np.random.default_rng(2024)


def rnd(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def bias(b: ModelBuilder, n: int) -> int:
    return b.const(f"bias_{len(b.tensors)}", rnd(n))


def compare(tmp_path, b: ModelBuilder, inputs, outputs, samples: int = 4, atol: float = 1e-4):
    """Read the model, run the passes and check kwscc's float execution against LiteRT."""
    path = b.save(tmp_path, inputs, outputs)
    source = read_model(path)
    graph = run_pipeline(source)
    shape = source.tensors[source.inputs[0]].shape
    x = rnd(samples, *shape[1:])
    ref = litert_run(path, x)
    own = run_float(graph, {graph.inputs[0]: x})[graph.outputs[0]]
    np.testing.assert_allclose(own.reshape(ref.shape), ref, atol=atol, rtol=1e-4)
    assert "Transpose" not in graph.ops(), "TFLite is NHWC already: the layout pass must add nothing"
    assert all(n.attrs.get("layout", "NHWC") == "NHWC" for n in graph.nodes())
    return source, graph


def node_of(graph, op):
    found = [n for n in graph.nodes() if n.op == op]
    assert found, f"no {op} in {graph.ops()}"
    return found[0]


# ---------------------------------------------------------------------------------------------------
# operators, float32
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding,stride,dilation,act", [
    (SAME, (2, 2), (1, 1), "RELU"), (SAME, (2, 1), (1, 1), "NONE"), (VALID, (1, 1), (2, 2), "RELU6"),
    (SAME, (1, 1), (1, 1), "RELU_N1_TO_1"),
])
def test_conv2d(tmp_path, padding, stride, dilation, act):
    b = ModelBuilder()
    x = b.tensor("x", [1, 9, 7, 3])
    w = b.const("w", rnd(4, 3, 3, 3))
    bias = b.const("b", rnd(4))
    out_hw = [-(-9 // stride[0]), -(-7 // stride[1])] if padding == SAME else [9 - 4, 7 - 4]
    y = b.tensor("y", [1, *out_hw, 4])
    b.op("CONV_2D", [x, w, bias], [y], conv_options(padding, stride, dilation, act))
    _, graph = compare(tmp_path, b, [x], [y])
    conv = node_of(graph, "Conv")
    assert conv.attrs["act"] == {"NONE": None, "RELU": (0.0, math.inf), "RELU6": (0.0, 6.0),
                                 "RELU_N1_TO_1": (-1.0, 1.0)}[act]
    if padding == SAME and stride == (2, 2):
        assert conv.attrs["pads"] == (1, 1, 1, 1)  # TF SAME: total 2 rows (1 before), 2 cols
    assert graph.tensors[conv.inputs[1]].shape == (4, 3, 3, 3)  # OHWI as stored


def test_conv2d_asymmetric_same(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 49, 10, 1])
    w = b.const("w", rnd(8, 10, 4, 1))
    y = b.tensor("y", [1, 25, 5, 8])
    b.op("CONV_2D", [x, w, bias(b, 8)], [y], conv_options(SAME, (2, 2), act="RELU"))
    _, graph = compare(tmp_path, b, [x], [y])
    conv = node_of(graph, "Conv")
    assert conv.attrs["pads"] == (4, 1, 5, 1)  # as tf2onnx writes for DS_CNN_S's first conv


@pytest.mark.parametrize("mult,padding,stride", [(1, SAME, (2, 2)), (2, VALID, (1, 1)), (3, SAME, (1, 2))])
def test_depthwise_conv2d(tmp_path, mult, padding, stride):
    b = ModelBuilder()
    x = b.tensor("x", [1, 8, 6, 4])
    w = b.const("w", rnd(1, 3, 3, 4 * mult))
    bias = b.const("b", rnd(4 * mult))
    out_hw = [-(-8 // stride[0]), -(-6 // stride[1])] if padding == SAME else [6, 4]
    y = b.tensor("y", [1, *out_hw, 4 * mult])
    b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], dw_options(padding, stride, mult, act="RELU"))
    _, graph = compare(tmp_path, b, [x], [y])
    conv = node_of(graph, "Conv")
    assert conv.attrs["group"] == 4
    assert graph.tensors[conv.inputs[1]].shape == (4 * mult, 3, 3, 1)


def test_fully_connected_flattens_a_4d_input(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 2, 2, 3])
    w = b.const("w", rnd(5, 12))
    bias = b.const("b", rnd(5))
    y = b.tensor("y", [1, 5])
    b.op("FULLY_CONNECTED", [x, w, bias], [y], fc_options("RELU"))
    _, graph = compare(tmp_path, b, [x], [y])
    assert graph.ops() == ["Reshape", "Dense"]
    assert node_of(graph, "Dense").attrs["act"] == (0.0, math.inf)


def test_fully_connected_keep_num_dims_without_bias(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 1, 1, 12])
    w = b.const("w", rnd(5, 12))
    y = b.tensor("y", [1, 1, 1, 5])
    b.op("FULLY_CONNECTED", [x, w, -1], [y], fc_options(keep_num_dims=True))
    source, graph = compare(tmp_path, b, [x], [y])
    assert graph.tensors[graph.outputs[0]].shape == (1, 1, 1, 5)
    assert "Dense" in graph.ops()


@pytest.mark.parametrize("kind,padding,act", [("AVERAGE_POOL_2D", SAME, "NONE"), ("AVERAGE_POOL_2D", VALID, "RELU"),
                                              ("MAX_POOL_2D", SAME, "RELU6"), ("MAX_POOL_2D", VALID, "NONE")])
def test_pools(tmp_path, kind, padding, act):
    b = ModelBuilder()
    x = b.tensor("x", [1, 7, 9, 3])
    out_hw = [4, 5] if padding == SAME else [3, 4]
    y = b.tensor("y", [1, *out_hw, 3])
    b.op(kind, [x], [y], pool_options((3, 2), (2, 2), padding, act))
    _, graph = compare(tmp_path, b, [x], [y])  # SAME average pools exclude the padding in both
    assert node_of(graph, "AveragePool" if kind == "AVERAGE_POOL_2D" else "MaxPool").attrs["kernel"] == (3, 2)


@pytest.mark.parametrize("keep_dims", [True, False])
def test_mean_over_h_w(tmp_path, keep_dims):
    b = ModelBuilder()
    x = b.tensor("x", [1, 5, 3, 6])
    axes = b.const("axes", np.array([1, 2], np.int32), "INT32")
    y = b.tensor("y", [1, 1, 1, 6] if keep_dims else [1, 6])
    b.op("MEAN", [x, axes], [y], options("Reducer", keepDims=keep_dims))
    _, graph = compare(tmp_path, b, [x], [y])
    assert node_of(graph, "AveragePool").attrs["kernel"] == (5, 3)


def test_mean_over_channels_is_rejected(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 5, 3, 6])
    axes = b.const("axes", np.array([3], np.int32), "INT32")
    y = b.tensor("y", [1, 5, 3])
    b.op("MEAN", [x, axes], [y], options("Reducer", keepDims=False))
    with pytest.raises(UnsupportedError, match=r"op #0 \(MEAN\): only the mean over spatial axes"):
        read_model(b.save(tmp_path, [x], [y]))


def test_input_1xN_reshape_squeeze_softmax(tmp_path):
    """An input declared [1, N] (batch dynamic in its signature) feeding a RESHAPE, as the KWS models do."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 40], signature=[-1, 40])
    shape = b.const("shape", np.array([1, 10, 4, 1], np.int32), "INT32")
    r = b.tensor("r", [1, 10, 4, 1])
    b.op("RESHAPE", [x, shape], [r], options("Reshape", newShape=[1, 10, 4, 1]))
    w = b.const("w", rnd(6, 10, 4, 1))
    c = b.tensor("c", [1, 1, 1, 6])
    b.op("CONV_2D", [r, w, bias(b, 6)], [c], conv_options(VALID))
    s = b.tensor("s", [1, 6])
    b.op("SQUEEZE", [c], [s], options("Squeeze", squeezeDims=[1, 2]))
    y = b.tensor("y", [1, 6])
    b.op("SOFTMAX", [s], [y], options("Softmax", beta=1.0))
    source, graph = compare(tmp_path, b, [x], [y])
    assert source.inputs == ["x"] and source.tensors["x"].shape == (1, 40)
    assert graph.ops() == ["Reshape", "Conv", "Reshape", "Softmax"]


def test_reshape_from_options_with_minus_one(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 24])
    r = b.tensor("r", [1, 2, 3, 4])
    b.op("RESHAPE", [x], [r], options("Reshape", newShape=[1, 2, -1, 4]))
    y = b.tensor("y", [1, 2, 3, 4])
    b.op("RELU", [r], [y])
    compare(tmp_path, b, [x], [y])


def test_standalone_activations_fuse_into_their_producers(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 6, 6, 2])
    prev = x
    for i, act in enumerate(["RELU", "RELU6", "RELU_N1_TO_1"]):
        w = b.const(f"w{i}", rnd(3 if i else 3, 1, 1, 2 if i == 0 else 3, scale=2.0))
        c = b.tensor(f"c{i}", [1, 6, 6, 3])
        b.op("CONV_2D", [prev, w, bias(b, 3)], [c], conv_options(VALID))
        a = b.tensor(f"a{i}", [1, 6, 6, 3])
        b.op(act, [c], [a])
        prev = a
    _, graph = compare(tmp_path, b, [x], [prev])
    assert graph.ops() == ["Conv", "Conv", "Conv"]
    assert [n.attrs["act"] for n in graph.nodes()] == [(0.0, math.inf), (0.0, 6.0), (-1.0, 1.0)]


def test_pad_folds_into_the_following_conv(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 6, 5, 2])
    pads = b.const("paddings", np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32), "INT32")
    p = b.tensor("p", [1, 9, 6, 2])
    b.op("PAD", [x, pads], [p])
    w = b.const("w", rnd(1, 3, 3, 2))
    y = b.tensor("y", [1, 7, 4, 2])
    b.op("DEPTHWISE_CONV_2D", [p, w], [y], dw_options(VALID))
    _, graph = compare(tmp_path, b, [x], [y])
    assert graph.ops() == ["Conv"]
    assert node_of(graph, "Conv").attrs["pads"] == (1, 0, 2, 1)


def test_pad_before_a_pool_stays_a_pad(tmp_path):
    """A pad no convolution absorbs (PADV2 with a value, before a pool) is a Pad node of its own."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 6, 6, 2])
    pads = b.const("paddings", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32), "INT32")
    value = b.const("value", np.array([-0.5], np.float32))
    p = b.tensor("p", [1, 8, 8, 2])
    b.op("PADV2", [x, pads, value], [p])
    y = b.tensor("y", [1, 4, 4, 2])
    b.op("MAX_POOL_2D", [p], [y], pool_options((2, 2), (2, 2)))
    _, graph = compare(tmp_path, b, [x], [y])
    assert graph.ops() == ["Pad", "MaxPool"]
    assert node_of(graph, "Pad").attrs == {"pads": ((0, 0), (1, 1), (1, 1), (0, 0)), "value": -0.5}


@pytest.mark.parametrize("code, kind", [("LOGISTIC", "Sigmoid"), ("TANH", "Tanh"), ("HARD_SWISH", "HardSwish"),
                                        ("LEAKY_RELU", "LeakyRelu"), ("PRELU", "PRelu")])
def test_table_activations(tmp_path, code, kind):
    b = ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 3])
    y = b.tensor("y", [1, 4, 4, 3])
    if code == "PRELU":
        b.op(code, [x, b.const("alpha", np.array([[[0.1, 0.2, 0.3]]], np.float32))], [y])
    else:
        b.op(code, [x], [y], options("LeakyRelu", alpha=0.125) if code == "LEAKY_RELU" else None)
    _, graph = compare(tmp_path, b, [x], [y])
    assert graph.ops() == [kind]
    if code == "LEAKY_RELU":
        assert graph.nodes()[0].attrs["alpha"] == 0.125


@pytest.mark.parametrize("code", ["SPLIT", "SPLIT_V"])
def test_split_into_crops(tmp_path, code):
    b = ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 6])
    outs = [b.tensor(f"y{i}", [1, 4, 4, n]) for i, n in enumerate((3, 3) if code == "SPLIT" else (1, 5))]
    axis = b.const("axis", np.array([3], np.int32), "INT32")
    if code == "SPLIT":
        b.op(code, [axis, x], outs, options("Split", numSplits=2))
    else:
        b.op(code, [x, b.const("sizes", np.array([1, -1], np.int32), "INT32"), axis], outs,
             options("SplitV", numSplits=2))
    graph = read_model(b.save(tmp_path, [x], outs))
    assert [(n.op, n.attrs["start"], n.attrs["end"]) for n in graph.nodes()] == (
        [("Crop", 0, 3), ("Crop", 3, 6)] if code == "SPLIT" else [("Crop", 0, 1), ("Crop", 1, 6)])
    values = run_float(graph, {"x": rnd(2, 4, 4, 6)})
    assert np.array_equal(np.concatenate([values["y0"], values["y1"]], axis=3), values["x"])


def test_mean_over_w_only(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 5, 3, 6])
    axes = b.const("axes", np.array([-2], np.int32), "INT32")
    y = b.tensor("y", [1, 5, 6])
    b.op("MEAN", [x, axes], [y], options("Reducer", keepDims=False))
    _, graph = compare(tmp_path, b, [x], [y])
    assert node_of(graph, "AveragePool").attrs["kernel"] == (1, 3)


def test_shared_buffers_metadata_and_signature_defs(tmp_path):
    """Two weight tensors reading one buffer, plus the metadata and signature defs real files carry."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 5, 5, 3])
    w1 = b.const("w1", rnd(3, 1, 1, 3))
    w2 = b.tensor("w2", [3, 1, 1, 3], buffer=b.tensors[w1].buffer)
    c = b.tensor("c", [1, 5, 5, 3])
    b.op("CONV_2D", [x, w1, bias(b, 3)], [c], conv_options(VALID, act="RELU"))
    y = b.tensor("y", [1, 5, 5, 3])
    b.op("CONV_2D", [c, w2, bias(b, 3)], [y], conv_options(VALID))
    source, _ = compare(tmp_path, b, [x], [y])
    convs = [n for n in source.nodes() if n.op == "Conv"]
    np.testing.assert_array_equal(source.tensors[convs[0].inputs[1]].data, source.tensors[convs[1].inputs[1]].data)


def test_weights_shared_by_two_ops_become_one_constant(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 2])
    w = b.const("w", rnd(2, 1, 1, 2))
    c = b.tensor("c", [1, 4, 4, 2])
    b.op("CONV_2D", [x, w, bias(b, 2)], [c], conv_options(VALID))
    y = b.tensor("y", [1, 4, 4, 2])
    b.op("CONV_2D", [c, w, bias(b, 2)], [y], conv_options(VALID))
    source, _ = compare(tmp_path, b, [x], [y])
    convs = [n for n in source.nodes() if n.op == "Conv"]
    assert convs[0].inputs[1] == convs[1].inputs[1] == "w"


def test_duplicate_tensor_names_are_made_unique_and_match_litert(tmp_path):
    b = ModelBuilder()
    x = b.tensor("t", [1, 4, 4, 2])
    w = b.const("w", rnd(2, 1, 1, 2))
    c = b.tensor("t", [1, 4, 4, 2])
    b.op("CONV_2D", [x, w, bias(b, 2)], [c], conv_options(VALID, act="RELU"))
    y = b.tensor("y", [1, 4, 4, 2])
    b.op("CONV_2D", [c, w, bias(b, 2)], [y], conv_options(VALID))
    path = b.save(tmp_path, [x], [y])
    source = read_model(path)
    assert source.inputs == ["t"] and "t_2" in source.tensors
    feeds = {"t": rnd(3, 4, 4, 2)}
    ref = reference_runner(path, ["t", "t_2", "y"])(feeds)
    own = run_float(source, feeds)
    for name in ("t_2", "y"):
        np.testing.assert_allclose(own[name], ref[name], atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# int8 and hybrid models
# ---------------------------------------------------------------------------------------------------
WEIGHTS = {"w1": rnd(8, 3, 3, 2, scale=0.4), "b1": rnd(8, scale=0.1), "w2": rnd(1, 3, 3, 8, scale=0.4),
           "b2": rnd(8, scale=0.1), "w3": rnd(5, 8, scale=0.5), "b3": rnd(5, scale=0.1)}
ACTS = ["x", "c1", "c2", "pool", "logits", "y"]


def small_net(kind: str, ranges: dict | None = None, edges: bool = True,
              dw_bias_qdim: int = 0) -> tuple[ModelBuilder, int, int]:
    """x [1,8,8,2] -> conv 3x3 s2 RELU -> depthwise 3x3 RELU6 -> MEAN -> FC -> SOFTMAX.

    kind "float": all float32. "hybrid": int8 weights (per channel), float activations and biases.
    "int8": TFLite's full int8 scheme from `ranges` (float value ranges of ACTS); with edges the model
    takes and returns float through QUANTIZE / DEQUANTIZE, else its input and output are int8.
    """
    b = ModelBuilder()
    q = {}
    if kind == "int8":
        for name in ACTS:
            lo, hi = min(ranges[name][0], 0.0), max(ranges[name][1], 0.0)
            scale = (hi - lo) / 255.0
            q[name] = (scale, int(round(-128 - lo / scale)))
        q["y"] = (1 / 256, -128)

    def act(name, shape):
        if kind != "int8":
            return b.tensor(name, shape)
        return b.tensor(name, shape, "INT8", scale=q[name][0], zero_point=q[name][1])

    def weights(name, value, axis, in_act):
        if kind == "float":
            return b.const(name, value)
        wq, scale = quantize_per_channel(value, axis)
        return b.const(name, wq, "INT8", scale=scale, zero_point=np.zeros_like(scale, np.int64), qdim=axis)

    def bias(name, value, w_name, axis, in_act, qdim=0):
        if kind != "int8":
            return b.const(name, value)
        _, w_scale = quantize_per_channel(WEIGHTS[w_name], axis)
        scale = w_scale * q[in_act][0]
        return b.const(name, np.round(value / scale).astype(np.int32), "INT32", scale=scale,
                       zero_point=np.zeros_like(scale, np.int64), qdim=qdim)

    if kind == "int8" and edges:
        x = b.tensor("x_float", [1, 8, 8, 2])
        xq = act("x", [1, 8, 8, 2])
        b.op("QUANTIZE", [x], [xq])
        first = x
    else:
        first = xq = act("x", [1, 8, 8, 2])
    c1 = act("c1", [1, 4, 4, 8])
    b.op("CONV_2D", [xq, weights("w1", WEIGHTS["w1"], 0, "x"), bias("b1", WEIGHTS["b1"], "w1", 0, "x")], [c1],
         conv_options(SAME, (2, 2), act="RELU"), version=3)
    c2 = act("c2", [1, 4, 4, 8])
    # weights quantized along dimension 3, their 1-D bias along 0: as the converter writes depthwise layers
    b.op("DEPTHWISE_CONV_2D", [c1, weights("w2", WEIGHTS["w2"], 3, "c1"),
                               bias("b2", WEIGHTS["b2"], "w2", 3, "c1", qdim=dw_bias_qdim)], [c2],
         dw_options(SAME, act="RELU6"), version=3)
    axes = b.const("axes", np.array([1, 2], np.int32), "INT32")
    pool = act("pool", [1, 8])
    b.op("MEAN", [c2, axes], [pool], options("Reducer", keepDims=False), version=2)
    logits = act("logits", [1, 5])
    b.op("FULLY_CONNECTED", [pool, weights("w3", WEIGHTS["w3"], 0, "pool"), bias("b3", WEIGHTS["b3"], "w3", 0, "pool")],
         [logits], fc_options(), version=4)
    y = act("y", [1, 5])
    b.op("SOFTMAX", [logits], [y], options("Softmax", beta=1.0), version=2)
    last = y
    if kind == "int8" and edges:
        last = b.tensor("y_float", [1, 5])
        b.op("DEQUANTIZE", [y], [last], version=2)
    return b, first, last


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """Float, hybrid and int8 versions of small_net, and calibration / test data for them."""
    d = tmp_path_factory.mktemp("nets")
    x_cal, x_test = rnd(200, 8, 8, 2), rnd(300, 8, 8, 2)
    np.savez(d / "data.npz", calib=x_cal, test=x_test)
    b, i, o = small_net("float")
    paths = {"float": b.save(d, [i], [o], name="float.tflite")}
    values = reference_runner(paths["float"], ACTS)({"x": x_cal})
    ranges = {name: (float(v.min()), float(v.max())) for name, v in values.items()}
    for kind, edges, name in (("hybrid", True, "hybrid"), ("int8", True, "int8_edges"), ("int8", False, "int8")):
        b, i, o = small_net(kind, ranges, edges)
        paths[name] = b.save(d, [i], [o], name=f"{name}.tflite")
    return paths, d / "data.npz", ranges


def test_reference_run_accepts_what_tflite_micro_accepts(nets, tmp_path, caplog):
    """A 1-D bias with quantized_dimension 3 (as tflite-micro's person_detect has): LiteRT rejects the
    file, so the reference run fixes an in-memory copy and says so; the file itself is untouched."""
    _, data, ranges = nets
    b, i, o = small_net("int8", ranges, edges=True, dw_bias_qdim=3)
    path = b.save(tmp_path, [i], [o], name="qdim.tflite")
    before = path.read_bytes()
    from ai_edge_litert.interpreter import Interpreter

    with pytest.raises(ValueError, match="quantized_dimension"):
        Interpreter(model_path=str(path)).allocate_tensors()
    compiled = compile_model(path, CompileOptions(calib=None))
    with caplog.at_level("WARNING"):
        result = validate(compiled, f"{data}:test")
    assert "tensor 'b2' has quantized_dimension 3 on a 1-D tensor, which LiteRT rejects" in caplog.text
    assert result["c_vs_simulator_mismatches"] == 0 and result["top1_agreement"] >= 0.9
    assert path.read_bytes() == before


def test_int8_model_records_ranges_from_its_quantization(nets):
    paths, _, _ = nets
    graph = read_model(paths["int8"])
    assert graph.tensors[graph.inputs[0]].dtype == "float32"  # the IR input is float
    activations = graph.inputs + [n.outputs[0] for n in graph.nodes()]
    assert set(activations) <= set(graph.recorded_ranges)
    from kwscc.frontends.tflite_reader import load
    x = next(t for t in load(paths["int8"]).tensors if t.name == "x")
    s, z = float(x.scale[0]), int(x.zero_point[0])
    assert graph.recorded_ranges["x"] == pytest.approx(((-128 - z) * s, (127 - z) * s))


def test_quantize_and_dequantize_at_the_edges_pass_through(nets):
    paths, _, _ = nets
    graph = read_model(paths["int8_edges"])
    assert graph.inputs == ["x_float"] and graph.outputs == ["y"]
    assert graph.ops() == ["Conv", "Conv", "AveragePool", "Reshape", "Dense", "Softmax"]
    assert "x_float" in graph.recorded_ranges  # the input takes the range of its QUANTIZE


@pytest.mark.parametrize("name", ["int8", "int8_edges"])
def test_int8_model_compiles_without_data_and_validates(nets, name):
    paths, data, _ = nets
    compiled = compile_model(paths[name], CompileOptions(calib=None))
    result = validate(compiled, f"{data}:test", reference=str(paths["float"]))
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.85  # against LiteRT running the int8 model
    assert result["reference_model"] == "float.tflite"
    assert result["reference_top1_agreement"] >= 0.85
    assert result["model_vs_reference_top1_agreement"] >= 0.9  # TFLite's own int8 against its float model


def test_int8_model_with_calibration_data_uses_the_data(nets):
    paths, data, _ = nets
    recorded = read_model(paths["int8"]).recorded_ranges
    compiled = compile_model(paths["int8"], CompileOptions(calib=f"{data}:calib", calib_method="max"))
    x_cal = np.load(data)["calib"]
    assert compiled.qm.ranges["x"] == pytest.approx((float(x_cal.min()), float(x_cal.max())))
    assert compiled.qm.ranges["x"] != pytest.approx(recorded["x"])


def test_hybrid_model_compiles_and_validates(nets):
    paths, data, _ = nets
    graph = read_model(paths["hybrid"])
    assert not graph.recorded_ranges  # float activations: calibration data is needed
    with pytest.raises(KwsccError, match="give calibration data"):
        compile_model(paths["hybrid"], CompileOptions(calib=None))
    conv = node_of(graph, "Conv")
    w = graph.tensors[conv.inputs[1]].data
    assert w.dtype == np.float32 and np.abs(w - WEIGHTS["w1"]).max() < 0.4 * 4 / 127  # dequantized
    compiled = compile_model(paths["hybrid"], CompileOptions(calib=f"{data}:calib"))
    result = validate(compiled, f"{data}:test")
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.85  # against LiteRT running the hybrid model


def test_bias_with_an_odd_quantized_dimension():
    t = TflTensor(0, "bias", (3,), None, "INT32", np.array([10, -20, 30], np.int32),
                  np.array([0.5, 0.25, 0.125]), np.zeros(3, np.int64), quantized_dimension=3)
    np.testing.assert_allclose(dequantize_const(t), [5.0, -5.0, 3.75])
    t = TflTensor(0, "w", (2, 3), None, "INT8", np.ones((2, 3), np.int8), np.array([0.5, 0.25]),
                  np.zeros(2, np.int64), quantized_dimension=1)
    with pytest.raises(ModelError, match="quantized_dimension"):
        dequantize_const(t)


# ---------------------------------------------------------------------------------------------------
# bad input: one line naming the op or field, exit status 2
# ---------------------------------------------------------------------------------------------------
def tiny() -> tuple[ModelBuilder, int, int]:
    b = ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 2])
    w = b.const("w", rnd(3, 1, 1, 2))
    y = b.tensor("y", [1, 4, 4, 3])
    b.op("CONV_2D", [x, w], [y], conv_options(VALID))
    return b, x, y


def cli_error(path, capsys, tmp_path) -> str:
    rc = main([str(path), "-o", str(tmp_path / "out"), "--calib", str(tmp_path / "unused.npy")])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("kwscc: error: "), err
    assert not (tmp_path / "out").exists()
    return err


def test_not_a_flatbuffer(tmp_path, capsys):
    path = tmp_path / "text.tflite"
    path.write_text("this is not a TFLite model, just text\n")
    assert "not a FlatBuffer" in cli_error(path, capsys, tmp_path)
    (tmp_path / "short.tflite").write_bytes(b"TFL3")
    assert "not a FlatBuffer" in cli_error(tmp_path / "short.tflite", capsys, tmp_path)


def test_wrong_file_identifier(tmp_path, capsys):
    b, x, y = tiny()
    data = bytearray(b.build([x], [y]))
    data[4:8] = b"ABCD"
    path = tmp_path / "wrong.tflite"
    path.write_bytes(bytes(data))
    assert "file identifier b'ABCD' is not b'TFL3'" in cli_error(path, capsys, tmp_path)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.75, 0.9, 0.97])
def test_truncated_file(tmp_path, capsys, fraction):
    b, x, y = tiny()
    data = b.build([x], [y])
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[:int(len(data) * fraction)])
    err = cli_error(path, capsys, tmp_path)
    assert "truncated" in err


def test_custom_op(tmp_path, capsys):
    b, x, y = tiny()
    z = b.tensor("z", [1, 4, 4, 3])
    b.op("CUSTOM", [y], [z], custom="MyFancyOp")
    err = cli_error(b.save(tmp_path, [x], [z]), capsys, tmp_path)
    assert "op #1 (CUSTOM): custom op 'MyFancyOp' is not supported" in err


def test_several_subgraphs(tmp_path, capsys):
    b, x, y = tiny()
    err = cli_error(b.save(tmp_path, [x], [y], subgraphs=2), capsys, tmp_path)
    assert "2 subgraphs (field subgraphs)" in err


def test_unsupported_builtin(tmp_path, capsys):
    b, x, y = tiny()
    z = b.tensor("z", [1, 4, 4, 3])
    b.op("EXP", [y], [z])
    err = cli_error(b.save(tmp_path, [x], [z]), capsys, tmp_path)
    assert "op #1 (EXP): TFLite operator EXP is not supported" in err


def test_unsupported_fused_activation(tmp_path, capsys):
    b = ModelBuilder()
    x = b.tensor("x", [1, 4, 4, 2])
    w = b.const("w", rnd(3, 1, 1, 2))
    y = b.tensor("y", [1, 4, 4, 3])
    b.op("CONV_2D", [x, w], [y], conv_options(VALID, act="TANH"))
    err = cli_error(b.save(tmp_path, [x], [y]), capsys, tmp_path)
    assert "op #0 (CONV_2D): fused activation TANH (field fused_activation_function)" in err


def test_tensor_index_out_of_range(tmp_path, capsys):
    b, x, y = tiny()
    b.ops[0].inputs[1] = 99
    err = cli_error(b.save(tmp_path, [x], [y]), capsys, tmp_path)
    assert "op #0 (CONV_2D): input tensor index 99 out of range" in err


def test_buffer_size_mismatch(tmp_path, capsys):
    b, x, y = tiny()
    b.tensors[1].shape = [3, 1, 1, 4]  # the buffer holds 3x1x1x2 floats
    err = cli_error(b.save(tmp_path, [x], [y]), capsys, tmp_path)
    assert "tensor 'w': buffer" in err and "needs 48" in err


def test_float_model_with_two_input_channels_splits_its_input(nets):
    """A first conv over C = 2 input channels: the split input interleaves per pixel 2 hi then 2 lo
    channels, and the generated C (quantize_input and the filter built in the scratch) matches the
    simulator bit for bit."""
    paths, data, _ = nets
    # on CMSIS-NN's convolution the C builds the split filter in the layer's scratch (kwscc's own kernel
    # reads one stored in flash); "on": its first layer is its arena's peak, so "auto" would not split it
    compiled = compile_model(paths["float"], CompileOptions(calib=f"{data}:calib", split_input="on",
                                                            kernels="cmsis-nn"))
    split = compiled.qm.split
    assert split is not None and split.channels == 2
    assert "filter[i / 2 * 4 + 2 + i % 2]" in compiled.files[f"{compiled.name}.c"]
    result = validate(compiled, f"{data}:test")
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.9
