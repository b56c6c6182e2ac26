"""Graphs kwscc refuses get one line on stderr naming what the user wrote, exit 2, and no output folder:
two inputs, two outputs, a cycle, a broadcast no kernel computes, a two-input op on the legacy backend.
A constant operand of any shape is no refusal: it is stored expanded to the output's shape."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kwscc.cli import main
from tests.models_util import make_model, save

W = np.full((1, 1, 3, 3), 0.1, np.float32)  # one channel: the NCHW tensors need no data-moving transpose


def _conv(x, y, name):
    return helper.make_node("Conv", [x, "w"], [y], name=name, pads=[1, 1, 1, 1])


def two_inputs():
    return make_model([_conv("x", "a", "conv_a"), _conv("z", "b", "conv_b"), helper.make_node("Add", ["a", "b"], ["y"])],
                      {"x": [1, 1, 6, 6], "z": [1, 1, 6, 6]}, ["y"], {"w": W})


def two_outputs():
    return make_model([_conv("x", "a", "conv_a"), _conv("x", "b", "conv_b")], {"x": [1, 1, 6, 6]}, ["a", "b"], {"w": W})


def cycle():
    nodes = [_conv("x", "a", "conv_a"), helper.make_node("Add", ["a", "c"], ["b"], name="add_loop"),
             _conv("b", "c", "conv_c"), helper.make_node("Relu", ["b"], ["y"], name="out")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 6, 6])],
                              [numpy_helper.from_array(W, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def activation_broadcast():
    """An activation [1,1,6,6] plus its own spatial mean [1,1,1,1]: no kernel broadcasts an activation."""
    return make_model([_conv("x", "a", "conv_a"),
                       helper.make_node("ReduceMean", ["a"], ["m"], name="mean", axes=[2, 3], keepdims=1),
                       helper.make_node("Add", ["a", "m"], ["y"], name="add_mean")], {"x": [1, 1, 6, 6]}, ["y"],
                      {"w": W})


def const_broadcast():
    """A constant that varies over H and W cannot fold into the conv's per-channel bias: the Add reads it
    from flash (compiles, see test_constant_operand_compiles)."""
    k = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    return make_model([_conv("x", "a", "conv_a"), helper.make_node("Add", ["a", "k"], ["y"], name="add_map")],
                      {"x": [1, 1, 6, 6]}, ["y"], {"w": W, "k": k})


def residual():
    return make_model([_conv("x", "a", "conv_a"), _conv("a", "b", "conv_b"),
                       helper.make_node("Add", ["a", "b"], ["y"], name="residual_add")], {"x": [1, 1, 6, 6]}, ["y"],
                      {"w": W})


CASES = {
    "two_inputs": (two_inputs, [], "the model has 2 inputs ('x', 'z'); kwscc compiles models with one input and one output"),
    "two_outputs": (two_outputs, [], "the model has 2 outputs ('a', 'b'); kwscc compiles models with one input and one output"),
    "cycle": (cycle, [], "invalid ONNX model: Nodes in a graph must be topologically sorted"),
    "activation_broadcast": (activation_broadcast, [], "node 'add_mean' (Add): an activation input must have the output's shape"),
    "legacy_add": (residual, ["--backend", "cmsis-nn-legacy"],
                   "node 'residual_add' (Add): not supported by the cmsis-nn-legacy backend"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_graph_one_line_exit_2(tmp_path, capsys, case):
    build, extra, message = CASES[case]
    path = tmp_path / f"{case}.onnx"
    onnx.save(build(), str(path))
    np.savez(tmp_path / "data.npz", x=np.random.default_rng(0).normal(size=(8, 1, 6, 6)).astype(np.float32))
    out = tmp_path / "out"
    rc = main([str(path), "-o", str(out), "--calib", f"{tmp_path / 'data.npz'}:x", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("kwscc: error: ") and message in err[0], err
    assert not out.exists()


def test_constant_operand_compiles(tmp_path, capsys):
    path = tmp_path / "const_broadcast.onnx"
    onnx.save(const_broadcast(), str(path))
    np.savez(tmp_path / "data.npz", x=np.random.default_rng(0).normal(size=(8, 1, 6, 6)).astype(np.float32))
    assert main([str(path), "-o", str(tmp_path / "out"), "--calib", f"{tmp_path / 'data.npz'}:x"]) == 0
    assert "add_map" in (tmp_path / "out" / "const_broadcast.c").read_text()
