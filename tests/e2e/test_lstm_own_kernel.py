"""kwscc_lstm_s8, kwscc's LSTM kernel for what arm_lstm_unidirectional_s8 lacks (peepholes, a projection,
nonzero initial states), end to end on small models built in code: the C is bit-exact with the simulator
(kwscc's host kernels, under ASan/UBSan, and the real CMSIS-NN v7's arm_nn_activation_s16) and close to
the float model, whose LiteRT / onnxruntime run validate compares with."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.streaming import as_calls, calls_per_clip, simulate_stream
from kwscc.validate.validate import run_compiled, validate
from tests.e2e import test_recurrent_kws as recurrent_kws
from tests.e2e.test_recurrent_kws import cmsis_nn_checkout
from tests.frontends.recurrent_models import lstm_tflite, lstm_tflite_int8, onnx_rnn

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the generated C")

# (builder, its arguments, steps, features, minimum output SQNR in dB against the float model)
MODELS = {
    "tflite-peep-proj-clips": (lstm_tflite, dict(steps=7, features=5, hidden=9, projection=4, peepholes=True,
                                                 cell_clip=1.5, proj_clip=0.6, seed=3), 7, 5, 25.0),
    "tflite-peep-proj-last": (lstm_tflite, dict(steps=12, features=4, hidden=6, projection=8, peepholes=True,
                                                last=True, seed=5), 12, 4, 25.0),
    "onnx-peep-initial": (onnx_rnn, dict(op="LSTM", peepholes=True, initial=True, seq=9, features=6, hidden=7,
                                         seed=9), 9, 6, 25.0),
}
# kwscc_gru_s8 from a nonzero initial state, in both linear_before_reset forms
GRU_MODELS = {f"onnx-gru-initial-lbr{lbr}": (onnx_rnn, dict(op="GRU", initial=True, seq=8, features=5, hidden=6, seed=2,
                                                            attrs={"linear_before_reset": lbr}), 8, 5, 25.0)
              for lbr in (0, 1)}


def _compile(tmp_path, model: str, streaming: int | None = None):
    build, args, steps, features, _ = {**MODELS, **GRU_MODELS}[model]
    rng = np.random.default_rng(1)
    calib, test = tmp_path / "calib.npy", tmp_path / "test.npy"
    np.save(calib, rng.normal(0, 1, (48, steps, features)).astype(np.float32))
    np.save(test, rng.normal(0, 1, (24, steps, features)).astype(np.float32))
    path = build(tmp_path, **args)
    return compile_model(path, CompileOptions(calib=str(calib), streaming=streaming)), str(test)


@pytest.mark.parametrize("model", list(MODELS))
def test_kwscc_lstm_matches_simulator_and_float(tmp_path, model):
    compiled, test = _compile(tmp_path, model)
    lstm = next(call for call in compiled.calls if call.node.op == "LSTM")
    assert lstm.function == "kwscc_lstm_s8"
    assert compiled.plan.scratch(lstm.node.name).size == lstm.scratch["dsp"]
    result = validate(compiled, test)
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["output_sqnr_db"] >= MODELS[model][4]


@pytest.mark.parametrize("model", list(GRU_MODELS))
def test_kwscc_gru_from_initial_state(tmp_path, model):
    compiled, test = _compile(tmp_path, model)
    gru = next(call for call in compiled.calls if call.node.op == "GRU")
    assert gru.function == "kwscc_gru_s8" and compiled.qm.layers[gru.node.name].initial_hidden is not None
    result = validate(compiled, test)
    assert result["c_vs_simulator_mismatches"] == 0 and result["output_sqnr_db"] >= GRU_MODELS[model][4]


def test_kwscc_lstm_is_sanitizer_clean(tmp_path):
    compiled, test = _compile(tmp_path, "tflite-peep-proj-clips")
    assert validate(compiled, test, sanitize=True)["c_vs_simulator_mismatches"] == 0


def test_kwscc_lstm_matches_real_cmsis_nn(tmp_path):
    root = cmsis_nn_checkout()
    if root is None:
        pytest.skip("no CMSIS-NN v7.0.0 checkout (KWSCC_CMSIS_NN or ../shared/third_party/CMSIS-NN-v7.0.0)")
    compiled, test = _compile(tmp_path, "onnx-peep-initial")
    result = validate(compiled, test, cmsis_nn_dir=str(root))
    assert "CMSIS-NN" in result["kernels"] and result["c_vs_simulator_mismatches"] == 0


def test_kwscc_lstm_streams(tmp_path):
    """--streaming 3: the cell and hidden state stay in NAME_state between calls; every call's C equals the
    simulator, and a clip's last call equals the whole-clip program."""
    stream, test = _compile(tmp_path, "tflite-peep-proj-last", streaming=3)
    whole, _ = _compile(tmp_path, "tflite-peep-proj-last")
    lstm = next(call for call in stream.calls if call.node.op == "LSTM")
    assert lstm.function == "kwscc_lstm_s8" and lstm.state == 2 * 6 + 8
    x = np.load(test)[:5]
    c_out, _ = run_compiled(stream, as_calls(stream.qm, x), False, "host", None)
    assert np.array_equal(c_out, simulate_stream(stream.qm, x))
    whole_c, _ = run_compiled(whole, x, False, "host", None)
    assert np.array_equal(c_out.reshape(5, calls_per_clip(stream.qm), -1)[:, -1], whole_c)


def test_ml_kws_lstm_s_runs_on_kwscc_lstm():
    """ML-KWS LSTM_S (tf2onnx Scan of an LSTMCell with peepholes and a projection 144 -> 98), raised into one
    LSTM: kwscc_lstm_s8 with int16 peepholes and the projection; test_recurrent_kws validates it (C =
    simulator, agreement with the float model)."""
    c = recurrent_kws.compiled("lstm_s")
    (call,) = [call for call in c.calls if call.node.op == "LSTM"]
    layer = c.qm.layers[call.node.name]
    assert call.function == "kwscc_lstm_s8" and layer.last_only
    assert layer.projection.shape == (98, 144) and set(layer.peepholes) == {"input", "forget", "output"}
    # three int16 gate buffers and o * tanh(c) as int8, then the int16 cell and int8 hidden state: 1394 -> 1396;
    # with the DSP extension the step's split input (20 int8 columns: 40 B) and the 144-value h / o * tanh(c)
    # (288 B) widened to int16 pairs
    assert call.params["output_size"] == 98 and call.scratch["dsp"] == 1396 + 40 + 288
    assert call.scratch["c"] == 1396


def test_int8_tflite_lstm_with_peepholes_and_projection(tmp_path):
    """A full-int8 UNIDIRECTIONAL_SEQUENCE_LSTM: its int16 peepholes, int8 projection and proj_clip are read
    (dequantized) into the LSTM op, and it compiles with its own ranges, no data: C equals the simulator."""
    path, values = lstm_tflite_int8(tmp_path, steps=6, features=5, hidden=7, projection=4, proj_clip=0.75, seed=4)
    compiled = compile_model(path, CompileOptions())
    (node,) = [n for n in compiled.graph.nodes() if n.op == "LSTM"]
    tensors = [compiled.graph.tensors[name].data for name in node.inputs]
    np.testing.assert_allclose(tensors[4], np.concatenate([values[f"p_{g}"] for g in "iof"]), rtol=1e-6)
    np.testing.assert_allclose(tensors[7], values["proj"], rtol=1e-6)
    assert node.attrs["proj_clip"] == 0.75 and compiled.calls[0].function == "kwscc_lstm_s8"
    x = np.random.default_rng(6).normal(0, 2, (8, 6 * 5)).astype(np.float32)
    c_out, _ = run_compiled(compiled, x, False, "host", None)
    name = compiled.graph.inputs[0]
    sim = simulate_float_inputs(compiled.qm, {name: x.reshape((8,) + compiled.graph.tensors[name].shape[1:])})
    assert np.array_equal(c_out, sim[compiled.graph.outputs[0]].reshape(8, -1))
