"""ONNX Scan unrolled at import: step after step of plain IR ops that compute what onnxruntime
computes, with the body's weights one shared constant, frames read batch-first from a time-major
sequence, and unsupported loops refused with one clear line."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from kwscc.cli import main
from kwscc.frontends import read_model
from kwscc.ir.execute import run_float
from tests.models_util import make_model, ort_run, save

RNG = np.random.default_rng(15)
STEPS, FEATURES, HIDDEN = 3, 2, 4


def rnd(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def rnn_scan(directions=(0,), output_axis: int = 1):
    """y = V h_T + c and the stacked states, h_t = tanh(0.5 * (W^T [x_t, h_{t-1}] + b)), h_0 = 0, over the
    frames of a [1, 6] input made time-major [3, 1, 2], with a tf2onnx-style int64 time counter."""
    f = TensorProto.FLOAT
    body = helper.make_graph(
        [helper.make_node("Add", ["t_in", "one"], ["t_out"]),
         helper.make_node("Concat", ["frame", "h_in"], ["xh"], axis=1),
         helper.make_node("Gemm", ["xh", "w", "b"], ["pre"]),
         helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.float32(0.5), "half")),
         helper.make_node("Mul", ["pre", "half"], ["scaled"]),
         helper.make_node("Tanh", ["scaled"], ["h_out"]),
         helper.make_node("Identity", ["h_out"], ["h_seq"])],
        "body",
        [helper.make_tensor_value_info("h_in", f, [1, HIDDEN]), helper.make_tensor_value_info("t_in", TensorProto.INT64, []),
         helper.make_tensor_value_info("frame", f, [1, FEATURES])],
        [helper.make_tensor_value_info("h_out", f, [1, HIDDEN]), helper.make_tensor_value_info("t_out", TensorProto.INT64, []),
         helper.make_tensor_value_info("h_seq", f, [1, HIDDEN])],
    )
    nodes = [
        helper.make_node("Reshape", ["x", "time_major"], ["seq"]),
        helper.make_node("Scan", ["h0", "t0", "seq"], ["h_last", "t_last", "h_all"], name="rnn_scan", body=body,
                         num_scan_inputs=1, scan_input_directions=list(directions), scan_output_axes=[output_axis]),
        helper.make_node("Gemm", ["h_last", "v", "c"], ["y"]),
    ]
    inits = {"time_major": np.array([STEPS, 1, FEATURES], np.int64), "h0": np.zeros((1, HIDDEN), np.float32),
             "t0": np.array(0, np.int64), "one": np.array(1, np.int64), "w": rnd(FEATURES + HIDDEN, HIDDEN),
             "b": rnd(HIDDEN), "v": rnd(HIDDEN, 3), "c": rnd(3)}
    return make_model(nodes, {"x": [1, STEPS * FEATURES]}, ["y", "h_all"], inits)


@pytest.mark.parametrize("output_axis", [1, 0])
def test_scan_is_unrolled_and_matches_onnxruntime(tmp_path, output_axis):
    model = rnn_scan(output_axis=output_axis)
    graph = read_model(save(model, tmp_path))
    graph.verify()
    samples = 3 if output_axis == 1 else 1  # a time-major stacked output holds one sample only
    x = rnd(samples, 1, STEPS * FEATURES)
    values = run_float(graph, {"x": x.reshape(samples, -1)})
    for i in range(samples):
        y, h_all = ort_run(model, {"x": x[i]})
        np.testing.assert_allclose(values["y"][i:i + 1], y, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values["h_all"][i:i + 1] if output_axis == 1 else values["h_all"], h_all,
                                   rtol=1e-5, atol=1e-6)
    dense = [n for n in graph.nodes() if n.op == "Dense"]
    assert len(dense) == STEPS + 1 and len({n.inputs[1] for n in dense[:STEPS]}) == 1, "one shared weight constant"
    assert len([t for t in graph.tensors.values() if t.is_const and t.shape == (HIDDEN, FEATURES + HIDDEN)]) == 1
    crops = [n for n in graph.nodes() if n.op == "Crop"]
    assert [(n.attrs["axis"], n.attrs["start"]) for n in crops] == [(1, t) for t in range(STEPS)]
    assert graph.tensors[crops[0].inputs[0]].shape == (1, STEPS, FEATURES), "frames come from a batch-first view"


def test_unused_scan_output_is_not_built(tmp_path):
    model = rnn_scan()
    model.graph.output.pop()  # h_all
    graph = read_model(save(model, tmp_path))
    joined = [graph.tensors[n.outputs[0]].shape for n in graph.nodes() if n.op == "Concat"]
    assert joined == [(1, FEATURES + HIDDEN)] * STEPS, "only the body's own Concats, no stacked output"
    assert "h_all" not in graph.tensors


def test_reverse_scan_is_refused(tmp_path, capsys):
    path = save(rnn_scan(directions=(1,)), tmp_path)
    rc = main([str(path), "-o", str(tmp_path / "out"), "--calib", str(tmp_path / "unused.npy")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and not (tmp_path / "out").exists(), err
    assert err.startswith("kwscc: error: node 'rnn_scan' (Scan): reverse scan directions"), err


def test_scan_over_a_batch_of_two_is_refused(tmp_path, capsys):
    model = rnn_scan()
    time_major = next(i for i in model.graph.initializer if i.name == "time_major")
    time_major.CopyFrom(numpy_helper.from_array(np.array([STEPS, 2, 1], np.int64), "time_major"))
    path = save(model, tmp_path)
    rc = main([str(path), "-o", str(tmp_path / "out"), "--calib", str(tmp_path / "unused.npy")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "node 'rnn_scan' (Scan): the sequence 'seq' of shape [3, 2, 1]" in err and "only batch 1" in err, err


def rnn_loop(limit_from_input: bool = False):
    """The same RNN as a Loop: no M, the body's condition Less(i + 1, 3) (constants only), frames read by
    Gather(seq, i) from the outer graph; the stacked states as a time-major [3, 1, 4] output."""
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    limit = "x_limit" if limit_from_input else "steps"
    body = helper.make_graph(
        [helper.make_node("Add", ["i", "one"], ["i1"]),
         helper.make_node("Less", ["i1", limit], ["go_out"]),
         helper.make_node("Gather", ["seq", "i"], ["frame"], axis=0),
         helper.make_node("Concat", ["frame", "h_in"], ["xh"], axis=1),
         helper.make_node("Gemm", ["xh", "w", "b"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_out"]),
         helper.make_node("Identity", ["h_out"], ["h_seq"])],
        "body",
        [helper.make_tensor_value_info("i", i64, []), helper.make_tensor_value_info("go_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", f, [1, HIDDEN])],
        [helper.make_tensor_value_info("go_out", TensorProto.BOOL, None if limit_from_input else []),
         helper.make_tensor_value_info("h_out", f, [1, HIDDEN]),
         helper.make_tensor_value_info("h_seq", f, [1, HIDDEN])],
    )
    nodes = [helper.make_node("Reshape", ["x", "time_major"], ["seq"]),
             helper.make_node("Loop", ["", "go", "h0"], ["h_last", "h_all"], name="rnn_loop", body=body),
             helper.make_node("Gemm", ["h_last", "v", "c"], ["y"])]
    if limit_from_input:  # a limit computed from the input: known only at run time
        nodes.insert(0, helper.make_node("Cast", ["x"], ["x_limit"], to=TensorProto.INT64))
    inits = {"time_major": np.array([STEPS, 1, FEATURES], np.int64), "h0": np.zeros((1, HIDDEN), np.float32),
             "go": np.array(True), "one": np.array(1, np.int64), "steps": np.array(STEPS, np.int64),
             "w": rnd(FEATURES + HIDDEN, HIDDEN), "b": rnd(HIDDEN), "v": rnd(HIDDEN, 3), "c": rnd(3)}
    return make_model(nodes, {"x": [1, STEPS * FEATURES]}, {"y": [1, 3], "h_all": [STEPS, 1, HIDDEN]}, inits,
                      infer=not limit_from_input)


def test_loop_with_a_compile_time_trip_count_is_unrolled(tmp_path):
    model = rnn_loop()
    graph = read_model(save(model, tmp_path))
    graph.verify()
    x = rnd(1, STEPS * FEATURES)
    values = run_float(graph, {"x": x})
    y, h_all = ort_run(model, {"x": x})
    np.testing.assert_allclose(values["y"], y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values["h_all"], h_all, rtol=1e-5, atol=1e-6)
    dense = [n for n in graph.nodes() if n.op == "Dense"]
    assert len(dense) == STEPS + 1 and len({n.inputs[1] for n in dense[:STEPS]}) == 1
    assert sorted(n.attrs["start"] for n in graph.nodes() if n.op == "Crop") == list(range(STEPS))


def test_loop_with_a_run_time_trip_count_is_refused(tmp_path, capsys):
    path = save(rnn_loop(limit_from_input=True), tmp_path)
    rc = main([str(path), "-o", str(tmp_path / "out"), "--calib", str(tmp_path / "unused.npy")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and not (tmp_path / "out").exists(), err
    assert err.startswith("kwscc: error: node 'rnn_loop' (Loop): its body node 'rnn_loop_step0_Less' (Less) reads "
                          "values computed at run time"), err
