"""Graph passes: structure before/after and float equivalence (run_float before vs after)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from kwscc.frontends import read_model
from kwscc.ir import Graph
from kwscc.ir.execute import run_float
from kwscc.passes import (
    DEFAULT_PIPELINE,
    broadcast_constants,
    clip_bounds,
    fold_batchnorm,
    hard_sigmoid,
    fold_constants,
    fold_zeros,
    fuse_activation,
    remove_identity,
    run_pipeline,
    simplify_layout,
    to_nhwc,
)
from tests.models_util import KWS, make_model, ort_run, save

RNG = np.random.default_rng(99)
ATOL = 1e-5


def rnd(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def variance(n):
    return RNG.uniform(0.5, 2.0, n).astype(np.float32)


def node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, name=f"{op.lower()}_{outputs[0]}", **attrs)


def bn_params(prefix, c):
    return {f"{prefix}_s": rnd(c), f"{prefix}_b": rnd(c), f"{prefix}_m": rnd(c), f"{prefix}_v": variance(c)}


def bn(prefix, x, y, **attrs):
    return node("BatchNormalization", [x, f"{prefix}_s", f"{prefix}_b", f"{prefix}_m", f"{prefix}_v"], [y], **attrs)


def graph_of(tmp_path, nodes, inputs, outputs, inits=None, opset=13) -> Graph:
    model = make_model(nodes, inputs, outputs, inits, opset=opset)
    graph = read_model(save(model, tmp_path))
    graph.verify()
    return graph


def feeds_for(graph: Graph, batch: int = 1, scale: float = 1.0) -> dict[str, np.ndarray]:
    return {name: rnd(batch, *graph.tensors[name].shape[1:], scale=scale) for name in graph.inputs}


def apply(graph: Graph, *passes) -> tuple[Graph, list[bool]]:
    """Run passes on a copy as run_pipeline does, also returning each pass's `changed` flag."""
    graph = graph.copy()
    flags = []
    for fn in passes:
        flags.append(fn(graph))
        graph.remove_unused_tensors()
        graph.verify()
    return graph, flags


def assert_same_outputs(before: Graph, after: Graph, feeds=None, atol=ATOL, batch=1):
    feeds = feeds or feeds_for(before, batch)
    a, b = run_float(before, feeds), run_float(after, feeds)
    assert len(before.outputs) == len(after.outputs)
    for x, y in zip(before.outputs, after.outputs):
        assert a[x].shape == b[y].shape
        np.testing.assert_allclose(b[y], a[x], atol=atol, rtol=1e-5)


def op_count(graph: Graph, op: str) -> int:
    return graph.ops().count(op)


# ---------------------------------------------------------------------------------------------------
# fold_constants
# ---------------------------------------------------------------------------------------------------
def test_fold_constants_removes_constant_subgraphs(tmp_path):
    nodes = [
        node("Mul", ["a", "b"], ["ab"]),
        node("Add", ["ab", "c"], ["bias"]),
        node("Shape", ["x"], ["shape"]),
        node("Gather", ["shape", "idx0"], ["n"], axis=0),
        node("Concat", ["n", "minus1"], ["target"], axis=0),
        node("Reshape", ["x", "target"], ["flat"]),
        node("Add", ["flat", "bias"], ["y"]),
    ]
    inits = {"a": rnd(12), "b": rnd(12), "c": rnd(12), "idx0": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    g = graph_of(tmp_path, nodes, {"x": [1, 3, 2, 2]}, {"y": [1, 12]}, inits)
    assert g.ops() == ["Mul", "Add", "Shape", "Gather", "Concat", "Reshape", "Add"]
    after, (changed,) = apply(g, fold_constants.run)
    assert changed
    assert after.ops() == ["Reshape", "Add"]
    np.testing.assert_allclose(after.tensors["bias"].data, inits["a"] * inits["b"] + inits["c"], rtol=1e-6)
    for gone in ("ab", "shape", "n", "target"):
        assert gone not in after.tensors  # unused constants dropped
    assert_same_outputs(g, after)
    assert_same_outputs(g, after, batch=3)
    # idempotent
    again, (changed,) = apply(after, fold_constants.run)
    assert not changed and again.ops() == after.ops()


def test_fold_constants_keeps_constant_graph_output(tmp_path):
    nodes = [node("Relu", ["x"], ["y"]), node("Mul", ["a", "b"], ["k"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 4]}, ["y", "k"], {"a": rnd(4), "b": rnd(4)})
    after, _ = apply(g, fold_constants.run)
    assert after.outputs == ["y", "k"]
    assert "k" in after.tensors
    assert_same_outputs(g, after)


def test_fold_constants_removes_dead_nodes(tmp_path):
    nodes = [node("Relu", ["x"], ["y"]), node("Relu", ["x"], ["unused"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 4]}, ["y"])
    after, (changed,) = apply(g, fold_constants.run)
    assert changed and after.ops() == ["Relu"]


# ---------------------------------------------------------------------------------------------------
# remove_identity
# ---------------------------------------------------------------------------------------------------
def test_remove_identity(tmp_path):
    nodes = [
        node("Identity", ["x"], ["i1"]),
        node("Relu", ["i1"], ["r"]),
        node("Dropout", ["r"], ["d"]),
        node("Add", ["d", "i1"], ["s"]),
        node("Identity", ["s"], ["y"]),  # a graph output: must keep its name
    ]
    g = graph_of(tmp_path, nodes, {"x": [1, 6]}, ["y"])
    assert op_count(g, "Identity") == 3
    after, (changed,) = apply(g, remove_identity.run)
    assert changed
    assert after.ops() == ["Relu", "Add", "Identity"]
    assert after.outputs == ["y"]
    relu = [n for n in after.nodes() if n.op == "Relu"][0]
    add = [n for n in after.nodes() if n.op == "Add"][0]
    assert relu.inputs == ["x"] and add.inputs == [relu.outputs[0], "x"]
    assert_same_outputs(g, after)


def test_remove_identity_no_change(tmp_path):
    g = graph_of(tmp_path, [node("Relu", ["x"], ["y"])], {"x": [1, 3]}, ["y"])
    after, (changed,) = apply(g, remove_identity.run)
    assert not changed and after.ops() == ["Relu"]


# ---------------------------------------------------------------------------------------------------
# fold_batchnorm
# ---------------------------------------------------------------------------------------------------
def _check_folded(g, after, into, weight_name):
    assert op_count(after, "BatchNormalization") == 0
    producer = [n for n in after.nodes() if n.op == into]
    assert len(producer) == 1
    assert producer[0].inputs[1] != weight_name  # a new, scaled weight tensor
    assert len(producer[0].inputs) == 3  # and a bias
    assert_same_outputs(g, after)
    assert_same_outputs(g, after, batch=4)


@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_conv(tmp_path, bias):
    nodes = [node("Conv", ["x", "w", "b"] if bias else ["x", "w"], ["c"], pads=[1, 1, 1, 1]), bn("bn", "c", "y", epsilon=1e-3)]
    inits = {"w": rnd(5, 3, 3, 3), "b": rnd(5), **bn_params("bn", 5)}
    g = graph_of(tmp_path, nodes, {"x": [1, 3, 6, 5]}, ["y"], inits)
    after, (changed,) = apply(g, fold_batchnorm.run)
    assert changed and after.ops() == ["Conv"]
    assert after.nodes()[0].outputs == ["y"]
    _check_folded(g, after, "Conv", "w")


def test_fold_batchnorm_depthwise_conv(tmp_path):
    nodes = [node("Conv", ["x", "w", "b"], ["c"], group=4, pads=[1, 1, 1, 1]), bn("bn", "c", "y")]
    g = graph_of(tmp_path, nodes, {"x": [1, 4, 5, 5]}, ["y"], {"w": rnd(4, 1, 3, 3), "b": rnd(4), **bn_params("bn", 4)})
    after, _ = apply(g, fold_batchnorm.run)
    assert after.ops() == ["Conv"] and after.nodes()[0].attrs["group"] == 4
    _check_folded(g, after, "Conv", "w")


def test_fold_batchnorm_gemm(tmp_path):
    nodes = [node("Gemm", ["x", "w", "b"], ["d"], transB=1), bn("bn", "d", "y")]
    g = graph_of(tmp_path, nodes, {"x": [1, 10]}, ["y"], {"w": rnd(6, 10), "b": rnd(6), **bn_params("bn", 6)})
    assert g.ops() == ["Dense", "BatchNormalization"]
    after, _ = apply(g, fold_batchnorm.run)
    assert after.ops() == ["Dense"]
    _check_folded(g, after, "Dense", g.nodes()[0].inputs[1])


def test_fold_gemm_mul_add_per_channel(tmp_path):
    nodes = [node("Gemm", ["x", "w", "b"], ["d"], transB=1), node("Mul", ["d", "scale"], ["m"]), node("Add", ["shift", "m"], ["y"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 10]}, ["y"], {"w": rnd(6, 10), "b": rnd(6), "scale": rnd(6), "shift": rnd(1, 6)})
    after, _ = apply(g, fold_batchnorm.run)
    assert after.ops() == ["Dense"]
    assert_same_outputs(g, after)
    assert_same_outputs(g, after, batch=3)


def test_fold_conv_sub_div_mul_add_per_channel(tmp_path):
    nodes = [
        node("Conv", ["x", "w"], ["c"]),
        node("Sub", ["c", "mean"], ["s"]),
        node("Div", ["s", "std"], ["d"]),
        node("Mul", ["d", "gamma"], ["m"]),
        node("Add", ["m", "beta"], ["y"]),
    ]
    inits = {"w": rnd(4, 2, 3, 3), "mean": rnd(1, 4, 1, 1), "std": variance(4).reshape(4, 1, 1),
             "gamma": rnd(1, 4, 1, 1), "beta": np.full((1, 4, 1, 1), 0.25, np.float32)}
    g = graph_of(tmp_path, nodes, {"x": [1, 2, 6, 6]}, ["y"], inits)
    after, _ = apply(g, fold_batchnorm.run)
    assert after.ops() == ["Conv"]
    assert_same_outputs(g, after)


def test_no_fold_when_bn_input_has_two_readers(tmp_path):
    nodes = [node("Conv", ["x", "w", "b"], ["c"]), bn("bn", "c", "y1"), node("Relu", ["c"], ["y2"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 2, 5, 5]}, ["y1", "y2"], {"w": rnd(3, 2, 3, 3), "b": rnd(3), **bn_params("bn", 3)})
    after, (changed,) = apply(g, fold_batchnorm.run)
    assert not changed
    assert after.ops() == g.ops() == ["Conv", "BatchNormalization", "Relu"]
    np.testing.assert_array_equal(after.tensors["w"].data, g.tensors["w"].data)
    assert_same_outputs(g, after)


def test_no_fold_when_conv_output_is_graph_output(tmp_path):
    nodes = [node("Conv", ["x", "w", "b"], ["c"]), bn("bn", "c", "y")]
    g = graph_of(tmp_path, nodes, {"x": [1, 2, 5, 5]}, ["c", "y"], {"w": rnd(3, 2, 3, 3), "b": rnd(3), **bn_params("bn", 3)})
    after, (changed,) = apply(g, fold_batchnorm.run)
    assert not changed and after.ops() == ["Conv", "BatchNormalization"]
    assert_same_outputs(g, after)


@pytest.mark.parametrize("case", ["varies_over_width", "activation_operand", "const_minus_x"])
def test_no_fold_for_non_per_channel_arithmetic(tmp_path, case):
    inits = {"w": rnd(3, 2, 3, 3), "b": rnd(3)}
    inputs = {"x": [1, 2, 5, 5]}
    if case == "varies_over_width":
        follower = node("Mul", ["c", "k"], ["y"])
        inits["k"] = rnd(1, 1, 1, 3)  # one factor per output column, not per channel
    elif case == "activation_operand":
        follower = node("Mul", ["c", "z"], ["y"])
        inputs["z"] = [1, 3, 3, 3]
    else:
        follower = node("Sub", ["k", "c"], ["y"])  # k - conv(x) negates the weights: not a plain affine shift
        inits["k"] = rnd(1, 3, 1, 1)
    g = graph_of(tmp_path, [node("Conv", ["x", "w", "b"], ["c"]), follower], inputs, ["y"], inits)
    after, (changed,) = apply(g, fold_batchnorm.run)
    assert not changed and after.ops() == g.ops()
    assert_same_outputs(g, after)


def test_fold_batchnorm_after_fused_activation_keeps_semantics(tmp_path):
    """Conv -> Relu -> BN: once the Relu is fused into the Conv, the BN must not be folded through it."""
    nodes = [node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["r"]), bn("bn", "r", "y")]
    inits = {"w": rnd(4, 3, 3, 3), "b": rnd(4), **bn_params("bn", 4)}
    g = graph_of(tmp_path, nodes, {"x": [1, 3, 5, 5]}, ["y"], inits)
    after = run_pipeline(g, [("fuse_activation", fuse_activation.run), ("fold_batchnorm", fold_batchnorm.run)])
    assert_same_outputs(g, after)


# ---------------------------------------------------------------------------------------------------
# fuse_activation
# ---------------------------------------------------------------------------------------------------
RELU6 = {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}


@pytest.mark.parametrize("act", ["Relu", "Clip"])
@pytest.mark.parametrize("producer", ["Conv", "Gemm", "MaxPool"])
def test_fuse_activation(tmp_path, producer, act):
    if producer == "Conv":
        first, inputs, inits, expect_op = node("Conv", ["x", "w", "b"], ["p"]), {"x": [1, 2, 6, 6]}, {"w": rnd(3, 2, 3, 3), "b": rnd(3)}, "Conv"
    elif producer == "Gemm":
        first, inputs, inits, expect_op = node("Gemm", ["x", "w", "b"], ["p"], transB=1), {"x": [1, 8]}, {"w": rnd(5, 8), "b": rnd(5)}, "Dense"
    else:
        first, inputs, inits, expect_op = node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2]), {"x": [1, 3, 6, 6]}, {}, "MaxPool"
    if act == "Relu":
        second, bounds = node("Relu", ["p"], ["y"]), (0.0, float("inf"))
    else:
        second, bounds = node("Clip", ["p", "lo", "hi"], ["y"]), (0.0, 6.0)
        inits.update(RELU6)
    g = graph_of(tmp_path, [first, second], inputs, ["y"], inits)
    after, (changed,) = apply(g, fuse_activation.run)
    assert changed
    assert len(after) == len(g) - 1
    assert after.ops() == [expect_op]
    fused = after.nodes()[0]
    assert fused.attrs["act"] == bounds
    assert fused.outputs == ["y"]
    assert_same_outputs(g, after, feeds_for(g, scale=5.0))


def test_fuse_clip_then_relu_intersects_ranges(tmp_path):
    nodes = [node("Conv", ["x", "w"], ["c"]), node("Clip", ["c", "lo", "hi"], ["k"]), node("Relu", ["k"], ["y"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 2, 5, 5]}, ["y"],
                 {"w": rnd(3, 2, 3, 3), "lo": np.array(-1.0, np.float32), "hi": np.array(2.5, np.float32)})
    after, _ = apply(g, fuse_activation.run)
    assert after.ops() == ["Conv"] and after.nodes()[0].attrs["act"] == (0.0, 2.5)
    assert_same_outputs(g, after, feeds_for(g, scale=3.0))


@pytest.mark.parametrize("second_reader", ["node", "graph_output"])
def test_no_fuse_when_producer_output_has_two_readers(tmp_path, second_reader):
    nodes = [node("Conv", ["x", "w", "b"], ["c"]), node("Relu", ["c"], ["y"])]
    outputs = ["y"]
    if second_reader == "node":
        nodes.append(node("MaxPool", ["c"], ["y2"], kernel_shape=[2, 2]))
        outputs.append("y2")
    else:
        outputs.append("c")
    g = graph_of(tmp_path, nodes, {"x": [1, 2, 6, 6]}, outputs, {"w": rnd(3, 2, 3, 3), "b": rnd(3)})
    after, (changed,) = apply(g, fuse_activation.run)
    assert not changed
    assert after.ops() == g.ops()
    assert [n for n in after.nodes() if n.op == "Conv"][0].attrs["act"] is None
    assert_same_outputs(g, after)


def test_no_fuse_after_non_producer(tmp_path):
    nodes = [node("Softmax", ["x"], ["a"]), node("Relu", ["a"], ["y"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 4]}, ["y"])
    after, (changed,) = apply(g, fuse_activation.run)
    assert not changed and after.ops() == ["Softmax", "Relu"]


def test_fuse_into_binary_op(tmp_path):
    """A Relu after an Add of two activations becomes the Add's clamp (arm_elementwise_add_s8 clamps for free)."""
    nodes = [node("Add", ["x", "z"], ["a"]), node("Relu", ["a"], ["y"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 4], "z": [1, 4]}, ["y"])
    after, (changed,) = apply(g, fuse_activation.run)
    assert changed and after.ops() == ["Add"]
    assert after.nodes()[0].attrs["act"] == (0.0, float("inf"))
    assert_same_outputs(g, after)


# ---------------------------------------------------------------------------------------------------
# to_nhwc + simplify_layout
# ---------------------------------------------------------------------------------------------------
def _cnn(tmp_path, pool_kernel, gemm_in):
    """Conv -> Relu -> Conv -> AveragePool -> Flatten -> Gemm on a 1-channel input (like the KWS models)."""
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        node("Relu", ["c1"], ["r1"]),
        node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2]),
        node("AveragePool", ["c2"], ["p"], kernel_shape=pool_kernel),
        node("Flatten", ["p"], ["f"]),
        node("Gemm", ["f", "gw", "gb"], ["y"], transB=1),
    ]
    inits = {"w1": rnd(4, 1, 3, 3), "b1": rnd(4), "w2": rnd(6, 4, 3, 3), "b2": rnd(6), "gw": rnd(5, gemm_in), "gb": rnd(5)}
    return graph_of(tmp_path, nodes, {"x": [1, 1, 9, 7]}, ["y"], inits), inits


def test_layout_passes_remove_all_transposes(tmp_path):
    g, inits = _cnn(tmp_path, [2, 2], 6 * 3 * 2)  # conv2 out [6, 4, 3] -> pool [6, 3, 2]
    after = run_pipeline(g, [("fuse_activation", fuse_activation.run), ("to_nhwc", to_nhwc.run),
                             ("simplify_layout", simplify_layout.run)])
    assert "Transpose" not in after.ops()
    assert after.ops() == ["Reshape", "Conv", "Conv", "AveragePool", "Reshape", "Dense"]
    convs = [n for n in after.nodes() if n.op == "Conv"]
    assert all(n.attrs["layout"] == "NHWC" for n in convs)
    np.testing.assert_array_equal(after.tensors[convs[0].inputs[1]].data, inits["w1"].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(after.tensors[convs[1].inputs[1]].data, inits["w2"].transpose(0, 2, 3, 1))
    pool = [n for n in after.nodes() if n.op == "AveragePool"][0]
    assert pool.attrs["layout"] == "NHWC" and after.tensors[pool.outputs[0]].shape == (1, 3, 2, 6)
    flatten, dense = after.nodes()[-2:]
    assert flatten.inputs == pool.outputs  # the Dense reads the NHWC tensor, flattened
    assert dense.inputs[0] == flatten.outputs[0]
    # the Dense weight columns follow the NHWC order: W'[:, (h, w, c)] = W[:, (c, h, w)]
    expected = inits["gw"].reshape(5, 6, 3, 2).transpose(0, 2, 3, 1).reshape(5, -1)
    np.testing.assert_array_equal(after.tensors[dense.inputs[1]].data, expected)
    assert_same_outputs(g, after)
    assert_same_outputs(g, after, batch=3)


def test_layout_passes_global_pool_keep_dense_weights(tmp_path):
    g, inits = _cnn(tmp_path, [4, 3], 6)  # pool to 1x1: the flatten moves no data
    after = run_pipeline(g, [("fuse_activation", fuse_activation.run), ("to_nhwc", to_nhwc.run),
                             ("simplify_layout", simplify_layout.run)])
    assert "Transpose" not in after.ops()
    dense = after.nodes()[-1]
    np.testing.assert_array_equal(after.tensors[dense.inputs[1]].data, inits["gw"])
    assert_same_outputs(g, after)


def test_to_nhwc_alone_is_equivalent(tmp_path):
    g, _ = _cnn(tmp_path, [2, 2], 36)
    after, (changed,) = apply(g, to_nhwc.run)
    assert changed
    spatial = [n for n in after.nodes() if n.op in ("Conv", "AveragePool")]
    assert len(spatial) == 3 and all(n.attrs["layout"] == "NHWC" for n in spatial)
    assert op_count(after, "Transpose") == 2 * len(spatial)
    assert_same_outputs(g, after)


def test_layout_passes_without_fusion_stay_equivalent(tmp_path):
    g, _ = _cnn(tmp_path, [2, 2], 36)
    after = run_pipeline(g, [("to_nhwc", to_nhwc.run), ("simplify_layout", simplify_layout.run)])
    assert all(n.attrs["layout"] == "NHWC" for n in after.nodes() if n.op in ("Conv", "AveragePool"))
    assert_same_outputs(g, after)


def test_simplify_layout_cancels_and_composes_transposes(tmp_path):
    nodes = [
        node("Transpose", ["x"], ["t1"], perm=[0, 2, 3, 1]),
        node("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),  # cancels t1
        node("Relu", ["t2"], ["r"]),
        node("Transpose", ["r"], ["t3"], perm=[0, 2, 3, 1]),
        node("Transpose", ["t3"], ["y"], perm=[0, 2, 1, 3]),  # composes with t3 into (0, 3, 2, 1)
    ]
    g = graph_of(tmp_path, nodes, {"x": [1, 2, 3, 4]}, ["y"])
    after, (changed,) = apply(g, simplify_layout.run)
    assert changed
    # the remaining Transpose moves above the (layout-free) Relu, to the model input
    assert after.ops() == ["Transpose", "Relu"]
    assert after.nodes()[0].inputs == ["x"]
    assert after.nodes()[0].attrs["perm"] == (0, 3, 2, 1)
    assert_same_outputs(g, after)


def test_simplify_layout_unit_axis_transpose_becomes_reshape(tmp_path):
    nodes = [node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]), node("Relu", ["t"], ["r"]),
             node("Reshape", ["r", "s1"], ["a"]), node("Reshape", ["a", "s2"], ["y"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 1, 4, 5]}, ["y"],
                 {"s1": np.array([1, 20], np.int64), "s2": np.array([1, 2, 10], np.int64)})
    after, _ = apply(g, simplify_layout.run)
    assert "Transpose" not in after.ops()
    assert after.ops() == ["Reshape", "Relu", "Reshape"]
    assert_same_outputs(g, after)


# ---------------------------------------------------------------------------------------------------
# fold_zeros
# ---------------------------------------------------------------------------------------------------
def test_fold_zeros(tmp_path):
    """x * 0 -> 0, t + 0 -> t, a - 0 -> a; 0 - x and a zero that broadcasts x to a larger shape stay."""
    nodes = [node("Mul", ["x", "zero"], ["m"]), node("Tanh", ["x"], ["t"]), node("Add", ["t", "m"], ["a"]),
             node("Sub", ["a", "zero"], ["s"]), node("Sub", ["zero", "x"], ["r"]), node("Add", ["s", "r"], ["y"]),
             node("Add", ["x", "zero3"], ["y3"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 4]}, ["y", "y3"],
                 {"zero": np.zeros((1, 4), np.float32), "zero3": np.zeros((1, 2, 4), np.float32)})
    after, (changed,) = apply(g, fold_zeros.run)
    assert changed
    assert [(n.op, n.inputs) for n in after.nodes()] == [
        ("Tanh", ["x"]), ("Sub", ["zero", "x"]), ("Add", ["t", "r"]), ("Add", ["x", "zero3"])]
    assert_same_outputs(g, after)


# ---------------------------------------------------------------------------------------------------
# clip_bounds, broadcast_constants
# ---------------------------------------------------------------------------------------------------
def test_min_max_with_a_constant_bound_become_one_clip(tmp_path):
    """Max(x, -2) then Min(., 3) is one Clip [-2, 3]; a Max of two activations and a Min with a vector
    bound stay."""
    nodes = [node("Max", ["x", "lo"], ["a"]), node("Min", ["a", "hi"], ["b"]), node("Max", ["b", "x"], ["c"]),
             node("Min", ["c", "vec"], ["y"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 4]}, ["y"], {"lo": np.array([-2.0], np.float32),
                                                        "hi": np.array(3.0, np.float32), "vec": rnd(4)})
    after, (changed,) = apply(g, clip_bounds.run)
    assert changed
    assert [(n.op, n.attrs) for n in after.nodes()] == [
        ("Clip", {"min": -2.0, "max": 3.0}), ("Max", {}), ("Min", {})]
    assert_same_outputs(g, after, feeds={"x": rnd(1, 4, scale=4.0)})


@pytest.mark.parametrize("form", ["affine_then_clip", "relu6_over_6"])
def test_hard_sigmoid_arithmetic_becomes_one_table_op(tmp_path, form):
    if form == "affine_then_clip":  # TF / Keras 2: min(max(0.2 x + 0.5, 0), 1), constants on either side
        nodes = [node("Mul", ["a", "x"], ["m"]), node("Add", ["m", "b"], ["s"]), node("Max", ["s", "zero"], ["c"]),
                 node("Min", ["one", "c"], ["y"])]
        inits = {"a": np.array(0.2, np.float32), "b": np.array([0.5], np.float32)}
    else:  # relu6(x + 3) / 6
        nodes = [node("Add", ["x", "b"], ["s"]), node("Max", ["s", "zero"], ["c0"]), node("Min", ["c0", "six"], ["c"]),
                 node("Mul", ["c", "sixth"], ["y"])]
        inits = {"b": np.array(3.0, np.float32), "six": np.array(6.0, np.float32),
                 "sixth": np.array(1 / 6, np.float32)}
    inits |= {"zero": np.array(0.0, np.float32), "one": np.array(1.0, np.float32)}
    g = graph_of(tmp_path, nodes, {"x": [1, 4]}, ["y"], inits)
    after, flags = apply(g, clip_bounds.run, hard_sigmoid.run)
    assert flags == [True, True]
    (hs,) = after.nodes()
    assert hs.op == "HardSigmoid" and hs.attrs == pytest.approx(
        {"alpha": 0.2, "beta": 0.5} if form == "affine_then_clip" else {"alpha": 1 / 6, "beta": 0.5})
    assert_same_outputs(g, after, feeds={"x": rnd(1, 4, scale=4.0)})


def test_an_affine_clip_read_elsewhere_stays(tmp_path):
    nodes = [node("Mul", ["x", "a"], ["m"]), node("Add", ["m", "b"], ["s"]), node("Clip", ["s", "zero", "one"], ["c"]),
             node("Add", ["c", "m"], ["y"])]
    inits = {"a": np.array(0.2, np.float32), "b": np.array(0.5, np.float32), "zero": np.array(0.0, np.float32),
             "one": np.array(1.0, np.float32)}
    g = graph_of(tmp_path, nodes, {"x": [1, 4]}, ["y"], inits)
    after, (changed,) = apply(g, hard_sigmoid.run)
    assert not changed and after.ops() == ["Mul", "Add", "Clip", "Add"]


def test_constant_operands_are_expanded_once_per_shape(tmp_path):
    nodes = [node("Sub", ["one", "x"], ["a"]), node("Mul", ["a", "w"], ["b"]), node("Add", ["b", "one"], ["y"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 4]}, ["y"], {"one": np.array([1.0], np.float32), "w": rnd(4)})
    after, (changed,) = apply(g, broadcast_constants.run)
    assert changed
    sub, mul, add = after.nodes()
    assert sub.inputs[0] == add.inputs[1] and after.tensors[sub.inputs[0]].shape == (1, 4)  # one copy of "one"
    assert after.tensors[mul.inputs[1]].shape == (1, 4)
    assert_same_outputs(g, after)


# ---------------------------------------------------------------------------------------------------
# The default pipeline
# ---------------------------------------------------------------------------------------------------
def test_pipeline_order():
    assert [name for name, _ in DEFAULT_PIPELINE] == [
        "fold_constants", "remove_identity", "fold_zeros", "clip_bounds", "hard_sigmoid", "raise_recurrent",
        "fold_batchnorm",
        "fuse_activation", "to_nhwc", "simplify_layout", "fold_pad", "fold_constants", "broadcast_constants",
    ]


def test_pipeline_with_unfoldable_4d_batchnorm(tmp_path):
    nodes = [node("Conv", ["x", "w", "b"], ["c"]), bn("bn", "c", "y1"), node("Relu", ["c"], ["y2"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 2, 5, 5]}, ["y1", "y2"], {"w": rnd(3, 2, 3, 3), "b": rnd(3), **bn_params("bn", 3)})
    after = run_pipeline(g)
    assert "BatchNormalization" in after.ops()
    assert_same_outputs(g, after)


def test_pipeline_with_unfoldable_2d_batchnorm(tmp_path):
    """BatchNorm1d after a Dense whose output is also read elsewhere: no fold, and no 4-D layout change."""
    nodes = [node("Gemm", ["x", "w", "b"], ["d"], transB=1), bn("bn", "d", "y1"), node("Relu", ["d"], ["y2"])]
    g = graph_of(tmp_path, nodes, {"x": [1, 6]}, ["y1", "y2"], {"w": rnd(4, 6), "b": rnd(4), **bn_params("bn", 4)})
    after = run_pipeline(g)
    assert "BatchNormalization" in after.ops()
    assert_same_outputs(g, after)


KWS_MODELS = {
    "dnn_s": ("test_x250", ["Dense"] * 4 + ["Softmax"]),
    "cnn_s": ("test_x490", ["Reshape", "Conv", "Conv", "Reshape", "Dense", "Dense", "Dense", "Softmax"]),
    "ds_cnn_s": ("test_x490", ["Reshape"] + ["Conv"] * 9 + ["AveragePool", "Reshape", "Dense", "Softmax"]),
    "ds_cnn_m": ("test_x490", ["Reshape"] + ["Conv"] * 9 + ["AveragePool", "Reshape", "Dense", "Softmax"]),
}


@pytest.fixture(scope="module")
def kws_data():
    return np.load(KWS / "kws_synth.npz")


@pytest.mark.parametrize("name", list(KWS_MODELS))
def test_default_pipeline_on_kws_models(name, kws_data):
    feature, expected_ops = KWS_MODELS[name]
    path = KWS / f"{name}.onnx"
    graph = read_model(path)
    graph.verify()
    lowered = run_pipeline(graph)
    assert lowered.ops() == expected_ops
    for n in lowered.nodes():
        if n.op in ("Conv", "AveragePool", "MaxPool"):
            assert n.attrs["layout"] == "NHWC"
    if name.startswith("ds_cnn"):
        convs = [n for n in lowered.nodes() if n.op == "Conv"]
        assert [c.attrs["group"] > 1 for c in convs] == [False] + [True, False] * 4  # standard, then dw/pw pairs
        assert all(c.attrs["act"] == (0.0, float("inf")) for c in convs)
    if name == "dnn_s":
        assert [n.attrs.get("act") for n in lowered.nodes()] == [(0.0, float("inf"))] * 3 + [None, None]

    x = kws_data[feature][:20].astype(np.float32)
    inp = graph.inputs[0]
    expected = np.concatenate([ort_run(path, {inp: x[i:i + 1]})[0] for i in range(len(x))])
    got = run_float(lowered, {lowered.inputs[0]: x})[lowered.outputs[0]]
    assert got.shape == expected.shape == (20, 12)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(run_float(graph, {inp: x})[graph.outputs[0]], expected, atol=1e-5)


@pytest.mark.parametrize("name", ["cnn_s", "ds_cnn_s"])
def test_run_pipeline_does_not_modify_input_graph(name):
    graph = read_model(KWS / f"{name}.onnx")
    ops_before = graph.ops()
    tensors_before = set(graph.tensors)
    conv = [n for n in graph.nodes() if n.op == "Conv"][0]
    w_name, inputs_before, attrs_before = conv.inputs[1], list(conv.inputs), dict(conv.attrs)
    w_before = graph.tensors[w_name].data.copy()
    shape_before = graph.tensors[w_name].shape

    lowered = run_pipeline(graph)
    assert lowered is not graph and lowered.ops() != ops_before

    assert graph.ops() == ops_before
    assert set(graph.tensors) == tensors_before
    assert conv.inputs == inputs_before and conv.attrs == attrs_before
    assert graph.tensors[w_name].shape == shape_before
    np.testing.assert_array_equal(graph.tensors[w_name].data, w_before)
    graph.verify()
    # and a second run on the untouched original gives the same result
    assert run_pipeline(graph).ops() == lowered.ops()
