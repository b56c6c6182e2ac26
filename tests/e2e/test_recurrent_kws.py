"""Recurrent keyword spotters end to end on the cmsis-nn backend: compile, build the C, run it, and
compare with the simulator (bit for bit) and the float model (top-1 agreement), with kwscc's host
kernels, under ASan/UBSan, and against a real CMSIS-NN v7 checkout (arm_lstm_unidirectional_s8, and
arm_nn_activation_s16 inside kwscc's GRU kernel)."""
from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.formats import dequantize
from kwscc.quant.simulate import quantize_model_input, simulate_float_inputs
from kwscc.ir.execute import run_float
from kwscc.quant.gru import GATES, layer_input, matvec_part
from kwscc.quant.lstm import GATE_FRAC, SIGMOID_TABLE
from kwscc.validate.validate import validate
from tests.e2e import kws_shared as kws

RECURRENT = kws.KWS / "recurrent"
# (model file, feature key, calibrate?); int8 files carry their own ranges
MODELS = {"keras_lstm": ("keras_lstm.onnx", "x490", True), "keras_lstm_tflite": ("keras_lstm.tflite", "x490", True),
          "keras_lstm_int8": ("keras_lstm_int8.tflite", "x490", False),
          "basic_lstm_s": ("basic_lstm_s_rnnop.onnx", "x490", True),
          "keras_gru": ("keras_gru.onnx", "x490", True), "gru_s": ("gru_s_rnnop.onnx", "x250", True),
          "basic_lstm_s_unrolled": ("basic_lstm_s_unrolled.tflite", "x490", True),
          "crnn_s_unrolled": ("crnn_s_unrolled.tflite", "x490", True),
          "lstm_s": ("lstm_s.onnx", "x250", True)}  # Scan; peepholes and projection: kwscc_lstm_s8
MIN_AGREEMENT = 0.93  # the floor; the measured numbers are in the README
CLIPS = 200

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the generated C")


def cmsis_nn_checkout() -> Path | None:
    """KWSCC_CMSIS_NN, else ../shared/third_party/CMSIS-NN-v7.0.0 beside the checkout."""
    env = os.environ.get("KWSCC_CMSIS_NN")
    root = Path(env) if env else kws.ROOT.parent / "shared" / "third_party" / "CMSIS-NN-v7.0.0"
    return root if (root / "Include" / "arm_nnfunctions.h").is_file() else None


@functools.lru_cache(maxsize=None)
def compiled(model: str):
    path, features, calibrate = MODELS[model]
    options = CompileOptions(calib=f"{kws.NPZ}:calib_{features}" if calibrate else None)
    return compile_model(RECURRENT / path, options)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """DATA specs of the first 200 test clips per feature set (test50 is a hard subset: too few to measure)."""
    folder = tmp_path_factory.mktemp("recurrent_clips")
    specs = {}
    with np.load(kws.NPZ) as data:
        for features in ("x490", "x250"):
            np.save(folder / f"{features}.npy", data[f"test_{features}"][:CLIPS])
            specs[features] = str(folder / f"{features}.npy")
    return specs


@pytest.mark.parametrize("model", list(MODELS))
def test_recurrent_model_validates(model, clips):
    result = validate(compiled(model), clips[MODELS[model][1]])
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= MIN_AGREEMENT
    assert {layer["op"] for layer in result["layers"]} & {"LSTM", "GRU"}


def test_recurrent_layer_reads_unsigned_conv_output():
    """CRNN's ReLU convolution feeds the GRU: the GRU folds the input zero point into its biases, so
    that tensor is unsigned (zero point -128, twice the resolution of a symmetric format); the C still
    equals the simulator (test_recurrent_model_validates)."""
    c = compiled("crnn_s_unrolled")
    gru = next(node for node in c.graph.nodes() if node.op == "GRU")
    assert c.graph.producer(gru.inputs[0]).op in ("Conv", "Reshape")
    assert c.qm.formats[gru.inputs[0]].zero_point == -128


@pytest.mark.parametrize("model, layers", [("basic_lstm_s_unrolled", [("LSTM", "last")]),
                                           ("crnn_s_unrolled", [("GRU", "sequence"), ("GRU", "last")])])
def test_unrolled_cells_run_as_recurrent_layers(model, layers):
    """TensorFlow's unrolled steps (49 and 2 x 20 cells) compile to one kernel call per layer."""
    c = compiled(model)
    assert [(n.op, n.attrs["output"]) for n in c.graph.nodes() if n.op in ("LSTM", "GRU")] == layers
    assert not {"Sigmoid", "Tanh", "Concat", "Mul"} & set(c.graph.ops())
    kernels = {"LSTM": "arm_lstm_unidirectional_s8", "GRU": "kwscc_gru_s8"}
    assert [call.function for call in c.calls if call.node.op in kernels] == [kernels[op] for op, _ in layers]


@pytest.mark.parametrize("model", ["keras_lstm_tflite", "gru_s"])
def test_recurrent_c_is_sanitizer_clean(model):
    result = validate(compiled(model), f"{kws.NPZ}:test50_{MODELS[model][1]}", sanitize=True)
    assert result["c_vs_simulator_mismatches"] == 0


def test_lstm_scratch_holds_state_and_sequence():
    """Cell state and two gate buffers (int16, H each) plus the T x H hidden sequence when only the last
    step is wanted; the planner gives them to the LSTM's step only."""
    c = compiled("keras_lstm")
    lstm = next(call for call in c.calls if call.node.op == "LSTM")
    assert lstm.function == "arm_lstm_unidirectional_s8"
    assert lstm.scratch["dsp"] == 3 * 2 * 64 + 49 * 64
    assert c.plan.scratch(lstm.node.name).size == lstm.scratch["dsp"]
    assert "arm_lstm_unidirectional_s8(" in c.files["keras_lstm.c"]


def test_legacy_backend_refuses_lstm():
    from kwscc.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="not supported by the cmsis-nn-legacy backend"):
        compile_model(RECURRENT / "keras_lstm_int8.tflite", CompileOptions(backend="cmsis-nn-legacy"))


def test_gru_is_kwscc_kernel_with_arm_activation():
    c = compiled("gru_s")
    gru = next(call for call in c.calls if call.node.op == "GRU")
    assert gru.function == "kwscc_gru_s8" and not gru.node.attrs.get("linear_before_reset")
    # the int16 state, three int16 gate buffers, two int8 buffers; with the DSP extension the step's split input
    # (10 hi and 10 lo values, 8 + 8 widened: 32 B) and the 154-value hidden state (152 widened: 304 B) as
    # int16 pairs
    assert gru.scratch["c"] == 10 * 154 and gru.scratch["dsp"] == 10 * 154 + 32 + 304
    text = c.files["gru_s_rnnop.c"]
    assert "static void kwscc_gru_s8(" in text and "arm_nn_activation_s16(" in text


def test_gru_input_part_keeps_mfcc_energy_precise():
    """The GRU's input part in int16 weights: keras_gru's MFCC energy column (|x| ~ 22, 40x the others)
    times int8 weights was off by up to ~0.1 in a gate pre-activation; now by the Q3.12 rounding only."""
    c = compiled("keras_gru")
    node = next(n for n in c.graph.nodes() if n.op == "GRU")
    layer = c.qm.layers[node.name]
    with np.load(kws.NPZ) as data:
        x = data["test_x490"][:CLIPS]
    x_q = layer_input(layer, quantize_model_input(c.qm, c.graph.inputs[0], x).reshape(CLIPS * 49, -1))
    x_real = x_q * 2.0 ** -(c.qm.formats[node.inputs[0]].frac + layer.split_bits)
    w, wb, rb = (c.graph.tensors[node.inputs[i]].data.astype(np.float64) for i in (1, 3, 4))
    size = layer.hidden_size
    for index, name in enumerate(GATES):
        rows = slice(index * size, (index + 1) * size)
        g = layer.gates[name]
        got = matvec_part(x_q, g.input_weights, g.input_bias, g.input_shift) * 2.0**-GATE_FRAC
        bias = wb[rows] + (0 if name == "new" else rb[rows])
        want = x_real @ w[rows].T + bias
        assert g.input_weights.dtype == np.int16
        inside = np.abs(want) < 7.9  # Q3.12 saturates at +-8
        assert np.abs(got - want)[inside].max() < 5e-3, name


def test_split_input_lifts_the_gru_to_its_float_model():
    """The model input as hi + lo int8 (4 bits finer than Q6.1) into the GRU: in Q6.1 alone the rounding of
    the small MFCC coefficients flipped 2 of the 2000 test clips against the float model (TF's int8 file:
    1) and held the GRU's last state to 29 dB SQNR; simulated (the C equals it bit for bit, test above)."""
    c = compiled("keras_gru")
    assert c.qm.split is not None and c.qm.split.recurrent
    node = next(n for n in c.graph.nodes() if n.op == "GRU")
    assert c.qm.layers[node.name].split_bits == c.qm.split.bits
    with np.load(kws.NPZ) as data:
        x = data["test_x490"]
    values = simulate_float_inputs(c.qm, {c.graph.inputs[0]: x})
    want = run_float(c.graph, {c.graph.inputs[0]: x})
    state = want[node.outputs[0]].astype(np.float64)
    error = dequantize(values[node.outputs[0]], c.qm.formats[node.outputs[0]]) - state
    assert 10 * np.log10(np.sum(state**2) / np.sum(error**2)) > 36.0
    out = c.graph.outputs[0]
    assert np.mean(values[out].argmax(axis=1) == want[out].argmax(axis=1)) >= 0.9995  # TF's int8 anchor


@pytest.fixture(scope="module")
def cmsis_nn():
    root = cmsis_nn_checkout()
    if root is None:
        pytest.skip("no CMSIS-NN v7.0.0 checkout (KWSCC_CMSIS_NN or ../shared/third_party/CMSIS-NN-v7.0.0)")
    return root


def test_sigmoid_table_is_the_librarys(cmsis_nn):
    text = (cmsis_nn / "Source" / "NNSupportFunctions" / "arm_nntables.c").read_text()
    body = text[text.index("sigmoid_table_uint16[256]"):]
    values = [int(v) for v in re.findall(r"\d+", body[body.index("{"):body.index("}")])]
    assert tuple(values) == SIGMOID_TABLE


@pytest.mark.parametrize("model", list(MODELS))
def test_recurrent_matches_real_cmsis_nn(model, cmsis_nn):
    result = validate(compiled(model), f"{kws.NPZ}:test50_{MODELS[model][1]}", cmsis_nn_dir=str(cmsis_nn))
    assert "CMSIS-NN" in result["kernels"]
    assert result["c_vs_simulator_mismatches"] == 0


def test_supported_ops_lists_recurrent_kernels(capsys):
    from kwscc.cli import main

    assert main(["supported-ops"]) == 0
    out = capsys.readouterr().out
    assert "-> arm_lstm_unidirectional_s8" in out and "-> kwscc_gru_s8" in out
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in out and "GRU" in out
