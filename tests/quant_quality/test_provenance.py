"""Tensors are matched with the reference runtime by provenance, never by shape: an NCHW convolution
with H*W > 1 flattened into a dense layer (the layout pass moves the permutation into the dense
weights, so the flattened tensor holds its elements in another order than the model's tensor of the
same shape). The model is the conv_flatten_dense fixture of conftest.py."""
from __future__ import annotations

import numpy as np
from onnx import helper

from kwscc.data import load_inputs
from kwscc.driver import CompileOptions, compile_model
from kwscc.frontends import read_model, reference_runner
from kwscc.ir.execute import run_float
from kwscc.passes import run_pipeline
from kwscc.quant.calibrate import activation_names, float_batches
from kwscc.quant.simulate import simulate_float_inputs
from tests.models_util import make_model, save


def test_runtime_values_match_kwscc_execution_by_provenance(conv_flatten_dense):
    """Every tensor taken from onnxruntime, in kwscc's layout, equals kwscc's own float execution:
    the flattened tensor (same name and shape as onnxruntime's, other element order) included."""
    path, npz = conv_flatten_dense
    graph = run_pipeline(read_model(path))
    feeds = {k: v[:20] for k, v in load_inputs(f"{npz}:test", graph).items()}
    flat = next(n for n in graph.nodes() if n.op == "Dense").inputs[0]
    source, order = graph.origins[flat]
    assert source == "flat" and order is not None  # the pass reordered the flattening
    _, _, values = next(float_batches(graph, feeds, path, activation_names(graph)))
    own = run_float(graph, feeds)
    onnx_flat = reference_runner(path, ["flat"])(feeds)["flat"]
    assert onnx_flat.shape == values[flat].shape and not np.allclose(onnx_flat, values[flat], atol=1e-3)
    for name in activation_names(graph):
        np.testing.assert_allclose(values[name], own[name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_bias_correction_keeps_nchw_flatten_dense_within_a_point_of_float(conv_flatten_dense):
    path, npz = conv_flatten_dense
    labels = np.load(npz)["test_y"]

    def accuracy(**kw) -> tuple[float, float]:
        compiled = compile_model(path, CompileOptions(calib=f"{npz}:calib", **kw))
        feeds = load_inputs(f"{npz}:test", compiled.graph)
        out = compiled.graph.outputs[0]
        q = simulate_float_inputs(compiled.qm, feeds)[out].reshape(len(labels), -1)
        f = run_float(compiled.graph, feeds)[out].reshape(len(labels), -1)
        return float(np.mean(f.argmax(1) == labels)), float(np.mean(q.argmax(1) == labels))

    float_acc, corrected = accuracy()
    _, uncorrected = accuracy(bias_correction=False)
    assert float_acc >= 0.85  # a real classifier
    assert corrected >= float_acc - 0.01, (float_acc, corrected)
    assert corrected >= uncorrected - 0.005, (corrected, uncorrected)


def test_branching_nchw_model_matches_kwscc_execution(tmp_path):
    """Transposes sunk through Add and Concat (simplify_layout) keep every tensor's provenance right."""
    rng = np.random.default_rng(5)
    inits = {"w1": rng.normal(0, 0.5, (4, 2, 3, 3)), "w2": rng.normal(0, 0.5, (4, 2, 3, 3)),
             "wd": rng.normal(0, 0.2, (8 * 4 * 3, 5))}
    inits = {k: v.astype(np.float32) for k, v in inits.items()}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["x", "w2"], ["b"], kernel_shape=[3, 3]),
             helper.make_node("Add", ["ar", "b"], ["s"]),
             helper.make_node("Concat", ["s", "ar"], ["c"], axis=1),
             helper.make_node("Flatten", ["c"], ["flat"]),
             helper.make_node("MatMul", ["flat", "wd"], ["y"])]
    path = save(make_model(nodes, {"x": [1, 2, 6, 5]}, ["y"], inits), tmp_path, "branching.onnx")
    graph = run_pipeline(read_model(path))
    feeds = {"x": rng.normal(0, 1, (6, 2, 6, 5)).astype(np.float32)}
    _, _, values = next(float_batches(graph, feeds, path, activation_names(graph)))
    own = run_float(graph, feeds)
    for name in activation_names(graph):
        np.testing.assert_allclose(values[name], own[name], rtol=1e-4, atol=1e-4, err_msg=name)
    assert sum(graph.origins[n][1] is not None for n in activation_names(graph) if n in graph.origins) >= 2


def test_model_that_cannot_run_batched_falls_back_quietly(tmp_path, capfd):
    """A Reshape to a fixed shape without a leading 1 keeps the batch-free copy from running: the runner
    falls back to one sample at a time with the same values, and onnxruntime's error line of the failed
    trial run does not reach the user's terminal."""
    rng = np.random.default_rng(3)
    shape = np.array([4, 1, 3], np.int64)  # [1, 12] -> [4, 1, 3]: batch 2 cannot take this shape
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    path = save(make_model(nodes, {"x": [1, 12]}, ["y"], {"shape": shape}), tmp_path, "fixed.onnx")
    x = rng.normal(0, 1, (3, 12)).astype(np.float32)
    got = reference_runner(path, ["r", "y"])({"x": x})["y"]
    np.testing.assert_array_equal(got.reshape(3, 12), np.maximum(x, 0))
    assert "onnxruntime" not in capfd.readouterr().err
