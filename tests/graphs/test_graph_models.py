"""Branching ONNX models built with the onnx helper API, compiled and validated end to end on the host:
a residual block with a 1x1 stride-2 shortcut, a two-branch (Inception-style) Concat, and Max / Min /
Mul / Sub of two activations. The C must equal the simulator bit for bit, and stay close to the float model."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from kwscc.driver import CompileOptions, compile_model
from kwscc.validate.validate import validate
from tests.models_util import make_model, save

IN_CH = 3  # an RGB-like NCHW input: NAME_quantize_input transposes it
MIN_OP_SQNR_DB = 15.0  # the new ops' own outputs, measured 17.4 (Sub of a product) to 36.7 dB (seed 7)
MIN_SQNR_DB = 10.0  # the model output, measured 13.4-37.8 dB: the spatial mean of a difference keeps a coarse format


def _conv(name, x, out, cin, cout, k=3, stride=1, rng=None, relu=True, gain=1.0):
    w = rng.normal(0, gain * (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)).astype(np.float32)
    b = rng.normal(0, 0.1, cout).astype(np.float32)
    conv_out = out + "_pre" if relu else out
    nodes = [helper.make_node("Conv", [x, name + "_w", name + "_b"], [conv_out], name=name, kernel_shape=[k, k],
                              strides=[stride, stride], pads=[k // 2] * 4)]
    if relu:
        nodes.append(helper.make_node("Relu", [conv_out], [out], name=name + "_relu"))
    return nodes, {name + "_w": w, name + "_b": b}


def _head(x, channels, classes, rng):
    w = rng.normal(0, (1.0 / channels) ** 0.5, (channels, classes)).astype(np.float32)
    nodes = [helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
             helper.make_node("Gemm", ["flat", "head_w"], ["y"], name="head")]
    return nodes, {"head_w": w}


def _build(parts, head_in, channels, rng):
    nodes, inits = [], {}
    for n, i in parts:
        nodes += n
        inits.update(i)
    n, i = _head(head_in, channels, 6, rng)
    return make_model(nodes + n, {"x": [1, IN_CH, 12, 12]}, ["y"], {**inits, **i})


def residual_model(rng):
    """conv 3x3 s2 -> conv 3x3, plus a 1x1 stride-2 shortcut conv; Add; Relu."""
    parts = [_conv("c1", "x", "a1", IN_CH, 8, stride=2, rng=rng), _conv("c2", "a1", "a2", 8, 8, rng=rng, relu=False),
             _conv("sc", "x", "s", IN_CH, 8, k=1, stride=2, rng=rng, relu=False, gain=4.0),
             ([helper.make_node("Add", ["a2", "s"], ["sum"], name="residual_add"),
               helper.make_node("Relu", ["sum"], ["r"], name="residual_relu")], {})]
    return _build(parts, "r", 8, rng)


def concat_model(rng):
    """Two branches (1x1 and 3x3) concatenated along channels, then a 1x1 conv."""
    parts = [_conv("b1", "x", "p", IN_CH, 6, k=1, rng=rng), _conv("b2", "x", "q", IN_CH, 5, rng=rng),
             ([helper.make_node("Concat", ["p", "q"], ["cat"], name="concat", axis=1)], {}),
             _conv("mix", "cat", "m", 11, 8, k=1, rng=rng)]
    return _build(parts, "m", 8, rng)


def max_min_mul_model(rng):
    """Max, Min, Mul and Sub of two conv branches that have different ranges (so different formats)."""
    parts = [_conv("ca", "x", "a", IN_CH, 8, rng=rng, relu=False), _conv("cb", "x", "b", IN_CH, 8, k=1, rng=rng, relu=False, gain=8.0),
             ([helper.make_node("Max", ["a", "b"], ["mx"], name="max"),
               helper.make_node("Min", ["a", "b"], ["mn"], name="min"),
               helper.make_node("Mul", ["mx", "mn"], ["prod"], name="mul"),
               helper.make_node("Sub", ["prod", "a"], ["d"], name="sub")], {})]
    return _build(parts, "d", 8, rng)


MODELS = {"residual": residual_model, "concat": concat_model, "max_min_mul_sub": max_min_mul_model}


@pytest.mark.parametrize("kind", MODELS)
def test_branching_model_validates(tmp_path, kind):
    rng = np.random.default_rng(7)
    path = save(MODELS[kind](rng), tmp_path)
    data = tmp_path / "data.npz"
    np.savez(data, calib=rng.normal(0, 1, (24, IN_CH, 12, 12)).astype(np.float32),
             test=rng.normal(0, 1, (16, IN_CH, 12, 12)).astype(np.float32))
    compiled = compile_model(path, CompileOptions(calib=f"{data}:calib"))
    graph = compiled.graph
    # the only transpose left is NAME_quantize_input's, of the NCHW model input
    assert all(n.inputs[0] in graph.inputs for n in graph.nodes() if n.op == "Transpose")
    result = validate(compiled, f"{data}:test")
    assert result["c_vs_simulator_mismatches"] == 0
    joins = [layer for layer in result["layers"] if layer["op"] in ("Add", "Sub", "Mul", "Max", "Min", "Concat")]
    assert joins and all(layer["sqnr_db"] >= MIN_OP_SQNR_DB for layer in joins), joins
    if kind != "concat":  # the branches' ranges differ: the two inputs of the first join have different formats
        first = next(n for n in graph.nodes() if n.op in ("Add", "Max"))
        assert compiled.qm.formats[first.inputs[0]].frac != compiled.qm.formats[first.inputs[1]].frac
    assert result["output_sqnr_db"] >= MIN_SQNR_DB, result["output_sqnr_db"]
