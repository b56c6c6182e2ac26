"""Recurrent layers: ONNX LSTM/GRU and TFLite UNIDIRECTIONAL_SEQUENCE_LSTM read into kwscc's LSTM/GRU
ops, whose float reference must match onnxruntime / LiteRT; bad recurrent input refused in one line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from kwscc.errors import UnsupportedError
from kwscc.frontends import read_model
from kwscc.ir.execute import run_float
from kwscc.passes import run_pipeline
from tests.frontends.recurrent_models import F, H, T, lstm_tflite, onnx_rnn

ROOT = Path(__file__).resolve().parents[2]
RECURRENT = ROOT / "examples" / "kws" / "recurrent"
NPZ = ROOT / "examples" / "kws" / "kws_synth.npz"


def _agree_with_ort(path: Path) -> float:
    x = np.random.default_rng(3).normal(0, 1, (1, T, F)).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    graph = run_pipeline(read_model(path))
    got = run_float(graph, {"x": x})[graph.outputs[0]]
    assert got.size == ref.size
    return float(np.abs(got.reshape(ref.shape) - ref).max())


@pytest.mark.parametrize("case", [
    dict(op="LSTM"),
    dict(op="LSTM", peepholes=True, initial=True),
    dict(op="LSTM", peepholes=True, last_slice=True),
    dict(op="GRU"),
    dict(op="GRU", initial=True, attrs={"linear_before_reset": 1}),
    dict(op="GRU", last_slice=True, attrs={"linear_before_reset": 1}),
], ids=["lstm", "lstm-peep-init", "lstm-last-slice", "gru", "gru-lbr-init", "gru-last-slice"])
def test_onnx_recurrent_matches_onnxruntime(tmp_path, case):
    assert _agree_with_ort(onnx_rnn(tmp_path, **case)) < 1e-5


def test_last_step_slice_runs_the_layer_once(tmp_path):
    graph = run_pipeline(read_model(onnx_rnn(tmp_path, "LSTM", last_slice=True)))
    lstm = [n for n in graph.nodes() if n.op == "LSTM"]
    assert len(lstm) == 1 and lstm[0].attrs["output"] == "last"


@pytest.mark.parametrize("case, message", [
    (dict(op="LSTM", attrs={"direction": "bidirectional"}), "direction 'bidirectional' is not supported"),
    (dict(op="GRU", attrs={"direction": "reverse"}), "direction 'reverse' is not supported"),
    (dict(op="LSTM", batch=2), "batch size 2 is not supported"),
    (dict(op="GRU", attrs={"activations": ["Sigmoid", "Relu"]}), "activations ['Sigmoid', 'Relu'] are not supported"),
    (dict(op="LSTM", attrs={"activations": ["Sigmoid", "Tanh", "Relu"]}),
     "activations ['Sigmoid', 'Tanh', 'Relu'] are not supported"),
    (dict(op="LSTM", attrs={"activations": ["HardSigmoid", "Tanh", "Tanh"], "activation_alpha": [0.2]}),
     "are not supported"),
    (dict(op="LSTM", attrs={"clip": 3.0}), "clip 3 (gate pre-activations clipped) is not supported"),
    (dict(op="LSTM", outputs=("Y_c",)), "final cell state output Y_c"),
])
def test_bad_recurrent_input_refused(tmp_path, case, message):
    with pytest.raises(UnsupportedError, match=None) as err:
        read_model(onnx_rnn(tmp_path, **case))
    text = str(err.value)
    assert message in text and "node 'rnn'" in text and "\n" not in text


@pytest.mark.parametrize("seq, message", [("T", "dynamic dimension 1 ('T')"), (T, None)])
def test_sequence_length_must_be_known(tmp_path, seq, message):
    """A sequence length left open in the file is refused; a time-major model input too (its first axis
    would be read as the batch)."""
    path = onnx_rnn(tmp_path, "GRU", seq=seq)
    if message is None:  # the same layer fed straight from a time-major input
        model = onnx.load(path)
        model.graph.node[1].input[0] = "x"
        del model.graph.node[0]
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = T
        model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1
        onnx.save(model, path)
        message = "model input 'x' is time-major [T, batch, 3] (T 6)"
    with pytest.raises(UnsupportedError) as err:
        read_model(path)
    text = str(err.value)
    assert message in text and ("--input-shape" if seq == "T" else "batch-first") in text


def _litert(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path))
    it.allocate_tensors()
    out = []
    for row in x:
        it.reset_all_variables()  # kwscc starts every run from the initial state
        inp = it.get_input_details()[0]
        it.set_tensor(inp["index"], row.reshape(inp["shape"]))
        it.invoke()
        out.append(it.get_tensor(it.get_output_details()[0]["index"]))
    return np.concatenate(out)


def test_tflite_sequence_lstm_with_cell_clip_matches_litert():
    path = RECURRENT / "keras_lstm.tflite"
    graph = run_pipeline(read_model(path))
    lstm = [n for n in graph.nodes() if n.op == "LSTM"]
    assert len(lstm) == 1 and lstm[0].attrs["cell_clip"] == 10.0 and lstm[0].attrs["output"] == "last"
    with np.load(NPZ) as data:
        x = data["test_x490"][:8].astype(np.float32)
    got = np.concatenate([run_float(graph, {graph.inputs[0]: row[None]})[graph.outputs[0]] for row in x])
    assert np.abs(got - _litert(path, x)).max() < 1e-5


@pytest.mark.parametrize("model", ["keras_lstm.onnx", "keras_gru.onnx", "basic_lstm_s_rnnop.onnx",
                                   "gru_s_rnnop.onnx"])
def test_exported_rnn_ops_match_onnxruntime(model):
    path = RECURRENT / model
    graph = run_pipeline(read_model(path))
    assert graph.ops() in (["Reshape", "LSTM", "Dense", "Softmax"], ["Reshape", "GRU", "Dense", "Softmax"])
    features = 250 if model == "gru_s_rnnop.onnx" else 490
    with np.load(NPZ) as data:
        x = data[f"test_x{features}"][:4].astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    ref = np.concatenate([session.run(None, {name: row[None]})[0] for row in x])
    got = np.concatenate([run_float(graph, {graph.inputs[0]: row[None]})[graph.outputs[0]] for row in x])
    assert np.abs(got - ref).max() < 1e-5


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_batch_first_layout_reads_like_the_time_major_form(tmp_path, op):
    """ONNX layout=1 ([batch, T, F] in, Y [batch, T, 1, H]) fed straight from the model input gives
    what the time-major form (checked against onnxruntime above) gives."""
    time_major = onnx_rnn(tmp_path, op, initial=True)
    model = onnx.load(time_major)
    rnn = model.graph.node[1]
    rnn.input[0] = "x"
    rnn.attribute.append(helper.make_attribute("layout", 1))
    del model.graph.node[0]
    for init in model.graph.initializer:
        if init.name in ("h0", "c0"):  # [1, batch, H] -> [batch, 1, H]
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).transpose(1, 0, 2), init.name))
    batch_first = tmp_path / "batch_first.onnx"
    onnx.save(model, batch_first)
    x = np.random.default_rng(5).normal(0, 1, (1, T, F)).astype(np.float32)
    outs = []
    for path in (time_major, batch_first):
        graph = run_pipeline(read_model(path))
        outs.append(run_float(graph, {"x": x})[graph.outputs[0]].reshape(-1))
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", [
    dict(peepholes=True),
    dict(projection=4, proj_clip=0.4),
    dict(peepholes=True, projection=3, cell_clip=0.8, time_major=True),
], ids=["peepholes", "projection-clip", "peep-proj-cellclip-time-major"])
def test_tflite_sequence_lstm_peepholes_projection_match_litert(tmp_path, case):
    """Peepholes, the projection and both clips (chosen small enough to bite) read into the LSTM op, whose
    float reference matches LiteRT's kernel."""
    path = lstm_tflite(tmp_path, steps=T, features=F, hidden=H, seed=11, **case)
    graph = run_pipeline(read_model(path))
    lstm = [n for n in graph.nodes() if n.op == "LSTM"]
    assert len(lstm) == 1 and (len(lstm[0].inputs) == 8) == ("projection" in case)
    x = np.random.default_rng(4).normal(0, 1.5, (3, T, F)).astype(np.float32)
    ref = _litert(path, x)
    got = np.concatenate([run_float(graph, {graph.inputs[0]: row.reshape(graph.tensors[graph.inputs[0]].shape)})
                          [graph.outputs[0]] for row in x])
    assert got.shape[-1] == case.get("projection", H)
    assert np.abs(got.reshape(ref.shape) - ref).max() < 1e-5


@pytest.mark.parametrize("case, message", [
    (dict(activation=1), "activation code 1 (field fused_activation_function) is not supported, only TANH"),
    (dict(batch=2), "batch size 2 is not supported (only 1)"),
    (dict(batch=2, time_major=True), "batch size 2 is not supported (only 1)"),
], ids=["relu", "batch-2", "time-major-batch-2"])
def test_bad_tflite_sequence_lstm_refused(tmp_path, case, message):
    with pytest.raises(UnsupportedError) as err:
        read_model(lstm_tflite(tmp_path, steps=T, features=F, hidden=H, **case))
    text = str(err.value)
    assert message in text and "UNIDIRECTIONAL_SEQUENCE_LSTM" in text and "\n" not in text
