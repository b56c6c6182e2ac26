"""--streaming (kwscc.streaming): a recurrent keyword spotter fed a few frames per NAME_run call, its LSTM/GRU
state kept between calls. The generated C (host build, harness calling NAME_reset_state between clips) equals
the simulator on every call, and a clip's last call equals the whole-clip program bit for bit: for the LSTM
(arm_nn_lstm_step_s8 per frame) and the GRU (kwscc_gru_s8)."""
from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate, simulate_float_inputs
from kwscc.streaming import as_calls, calls_per_clip, simulate_stream
from kwscc.validate.validate import format_summary, run_compiled, validate
from tests.e2e import kws_shared as kws

RECURRENT = kws.KWS / "recurrent"
# model: (file, features, calibrate?, frames per call)
MODELS = {"lstm": ("keras_lstm_int8.tflite", "x490", False, 1), "gru": ("gru_s_rnnop.onnx", "x250", True, 5)}
CLIPS = 6

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the generated C")


@functools.lru_cache(maxsize=None)
def compiled(model: str, streaming: int | None):
    path, features, calibrate, _ = MODELS[model]
    calib = f"{kws.NPZ}:calib_{features}" if calibrate else None
    return compile_model(RECURRENT / path, CompileOptions(calib=calib, streaming=streaming))


def clips(model: str) -> np.ndarray:
    with np.load(kws.NPZ) as data:
        return data[f"test_{MODELS[model][1]}"][:CLIPS]


@pytest.mark.parametrize("model", list(MODELS))
def test_stream_equals_whole_clip(model):
    frames = MODELS[model][3]
    whole, stream = compiled(model, None), compiled(model, frames)
    x = clips(model)
    calls = calls_per_clip(stream.qm)
    assert calls == whole.graph.tensors[whole.graph.nodes()[1].inputs[0]].shape[1] // frames > 1
    c_out, _ = run_compiled(stream, as_calls(stream.qm, x), False, "host", None)
    assert np.array_equal(c_out, simulate_stream(stream.qm, x))  # every call, C = simulator
    graph = whole.graph
    name = graph.inputs[0]
    whole_sim = simulate_float_inputs(whole.qm, {name: x.reshape((CLIPS,) + graph.tensors[name].shape[1:])})
    whole_c, _ = run_compiled(whole, x, False, "host", None)
    last = c_out.reshape(CLIPS, calls, -1)[:, -1]
    assert np.array_equal(last, whole_sim[graph.outputs[0]].reshape(CLIPS, -1))
    assert np.array_equal(last, whole_c)


@pytest.mark.parametrize("model", list(MODELS))
def test_reset_state_makes_clips_independent(model):
    """Two clips as one stream, without a reset between them, leave another recurrent state than the second
    clip alone: the reset the harness makes between clips is what the equality above rests on."""
    stream = compiled(model, MODELS[model][3])
    qm = stream.qm
    name = qm.graph.inputs[0]
    chunks = as_calls(qm, clips(model)[:2]).reshape((2, calls_per_clip(qm), 1) + qm.graph.tensors[name].shape[1:])

    def final_state(chunk_list) -> dict:
        state: dict = {}
        for chunk in chunk_list:
            simulate_float_inputs(qm, {name: chunk}, lambda q, f: simulate(q, f, state))
        return state

    (layer,) = final_state(chunks[1])
    alone, carried = final_state(chunks[1])[layer]["hidden"], final_state([*chunks[0], *chunks[1]])[layer]["hidden"]
    assert not np.array_equal(alone, carried)


def test_streaming_validates_with_sanitizers():
    """kwscc validate feeds each clip in calls (ASan/UBSan clean) and compares the last with the float model:
    the same agreement as the whole-clip program's, whose outputs are the same."""
    data = f"{kws.NPZ}:test50_x490"
    result = validate(compiled("lstm", 1), data, sanitize=True)
    assert result["c_vs_simulator_mismatches"] == 0 and result["calls_per_clip"] == 49
    assert "streaming: 49 calls per clip" in format_summary(result)
    assert result["top1_agreement"] == validate(compiled("lstm", None), data)["top1_agreement"]


def test_streaming_header_and_state():
    stream = compiled("gru", 5)
    header = stream.files["gru_s_rnnop.h"]
    assert "#define GRU_S_RNNOP_STREAM_FRAMES 5" in header and "#define GRU_S_RNNOP_CLIP_FRAMES 25" in header
    assert "#define GRU_S_RNNOP_STATE_SIZE 308 " in header and "void gru_s_rnnop_reset_state(void);" in header
    assert "int gru_s_rnnop_run_stream(const int8_t *input, int8_t *output, void *arena, void *state);" in header
    assert "void gru_s_rnnop_reset_stream(void *state);" in header
    assert stream.graph.tensors[stream.graph.inputs[0]].shape == (1, 50)


def test_streaming_lstm_matches_real_cmsis_nn():
    """The real library's arm_nn_lstm_step_s8, fed one frame per call from the kept state, equals the simulator."""
    from tests.e2e.test_recurrent_kws import cmsis_nn_checkout

    root = cmsis_nn_checkout()
    if root is None:
        pytest.skip("no CMSIS-NN v7.0.0 checkout (KWSCC_CMSIS_NN or ../shared/third_party/CMSIS-NN-v7.0.0)")
    result = validate(compiled("lstm", 1), f"{kws.NPZ}:test50_x490", cmsis_nn_dir=str(root))
    assert "CMSIS-NN" in result["kernels"] and result["c_vs_simulator_mismatches"] == 0


def test_reset_state_restores_a_nonzero_initial_state(tmp_path):
    """An LSTM with a constant nonzero initial state (and peepholes: kwscc_lstm_s8): the state starts from it,
    NAME_reset_state copies it back between clips, and a clip's last call equals the whole-clip program."""
    from tests.frontends.recurrent_models import onnx_rnn

    rng = np.random.default_rng(2)
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (32, 9, 6)).astype(np.float32))
    x = rng.normal(0, 1, (4, 9, 6)).astype(np.float32)
    path = onnx_rnn(tmp_path, op="LSTM", peepholes=True, initial=True, seq=9, features=6, hidden=7, seed=9)
    whole, stream = (compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy"), streaming=frames))
                     for frames in (None, 3))
    assert "_state_ready" in stream.files[f"{stream.name}.c"]  # the first call sets the initial state
    c_out, _ = run_compiled(stream, as_calls(stream.qm, x), False, "host", None)
    assert np.array_equal(c_out, simulate_stream(stream.qm, x))
    whole_c, _ = run_compiled(whole, x, False, "host", None)
    assert np.array_equal(c_out.reshape(4, 3, -1)[:, -1], whole_c)


def stacked_model(path, steps: int = 8, features: int = 4, hidden: int = 6):
    """x [1, T, F] -> time-major -> LSTM (every step) -> GRU (last state)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(4)

    def weights(name, rows, cols):
        return numpy_helper.from_array(rng.normal(0, 0.5, (1, rows, cols)).astype(np.float32), name)

    inits = [weights("W1", 4 * hidden, features), weights("R1", 4 * hidden, hidden), weights("W2", 3 * hidden, hidden),
             weights("R2", 3 * hidden, hidden), numpy_helper.from_array(np.array([steps, 1, hidden], np.int64), "seq")]
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W1", "R1"], ["y1"], name="lstm", hidden_size=hidden),
             helper.make_node("Reshape", ["y1", "seq"], ["h1"], name="squeeze_direction"),
             helper.make_node("GRU", ["h1", "W2", "R2"], ["", "y"], name="gru", hidden_size=hidden)]
    graph = helper.make_graph(nodes, "stacked", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                               [1, steps, features])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, hidden])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return path


def test_stacked_layers_stream(tmp_path):
    """A layer's every-step output feeding the next recurrent layer: both keep their state, the first writes each
    call's frames (arm_nn_lstm_step_s8 per frame), and a clip's last call equals the whole clip."""
    rng = np.random.default_rng(6)
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (32, 8, 4)).astype(np.float32))
    x = rng.normal(0, 1, (3, 8, 4)).astype(np.float32)
    path = stacked_model(tmp_path / "stacked.onnx")
    whole, stream = (compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy"), streaming=frames))
                     for frames in (None, 2))
    assert [call.function for call in stream.calls][:2] == ["arm_nn_lstm_step_s8", "kwscc_gru_s8"]
    c_out, _ = run_compiled(stream, as_calls(stream.qm, x), False, "host", None)
    assert np.array_equal(c_out, simulate_stream(stream.qm, x))
    whole_c, _ = run_compiled(whole, x, False, "host", None)
    assert np.array_equal(c_out.reshape(3, 4, -1)[:, -1], whole_c)


def test_unrolled_cells_raised_then_streamed(tmp_path):
    """An unrolled model (the clip split into frames, a GRU cell then an LSTM cell per frame) raised into two
    stacked layers streams like a model with LSTM/GRU ops: the general path, not only the exported ops."""
    from tests.passes.test_raise_recurrent import F, H, T, Unrolled, gru_layer, lstm_layer

    u = Unrolled(seed=3)
    first = gru_layer(u, [f"x{t}" for t in range(T)], reset_after=False, folded_step0=True)
    second, _ = lstm_layer(u, first, features=H, folded_step0=True)
    path = u.model(second[-1], tmp_path / "unrolled.onnx")
    rng = np.random.default_rng(8)
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (32, T, F)).astype(np.float32))
    x = rng.normal(0, 1, (3, T, F)).astype(np.float32)
    whole, stream = (compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy"), streaming=frames))
                     for frames in (None, 1))
    assert [call.node.op for call in stream.calls][:2] == ["GRU", "LSTM"]
    assert sum(call.state > 0 for call in stream.calls) == 2
    c_out, _ = run_compiled(stream, as_calls(stream.qm, x), False, "host", None)
    assert np.array_equal(c_out, simulate_stream(stream.qm, x))
    whole_c, _ = run_compiled(whole, x, False, "host", None)
    assert np.array_equal(c_out.reshape(3, T, -1)[:, -1], whole_c)


# Two streams through NAME_run_stream, each with its own state and one shared arena, calls interleaved (A0 B0 A1
# B1 ...), then each clip alone through NAME_run and the static state; then stream A's buffer reset and fed clip B.
TWO_STREAMS_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

#include "MODEL.h"

static float x[2][CALLS][MODEL_UPPER_INPUT_SIZE];
static int8_t q[MODEL_UPPER_QUANTIZED_INPUT_SIZE];
static int8_t y[MODEL_UPPER_OUTPUT_SIZE];
static int32_t arena[(MODEL_UPPER_ARENA_SIZE + 3) / 4];
static int32_t state[2][MODEL_UPPER_STATE_SIZE / 4];

static int call(FILE *out, int stream, int clip, int t, int own_state)
{
    MODEL_quantize_input(x[clip][t], q);
    if ((own_state ? MODEL_run_stream(q, y, arena, state[stream]) : MODEL_run(q, y)) != 0) {
        return 1;
    }
    return fwrite(y, 1, MODEL_UPPER_OUTPUT_SIZE, out) != MODEL_UPPER_OUTPUT_SIZE;
}

int main(int argc, char **argv)
{
    FILE *in, *out;
    int s, t, failed = 0;
    if (argc != 3 || (in = fopen(argv[1], "rb")) == NULL || (out = fopen(argv[2], "wb")) == NULL) {
        return 2;
    }
    if (fread(x, sizeof x, 1, in) != 1) {
        return 2;
    }
    MODEL_reset_stream(state[0]);
    MODEL_reset_stream(state[1]);
    for (t = 0; t < CALLS; ++t) {
        for (s = 0; s < 2; ++s) {
            failed |= call(out, s, s, t, 1);
        }
    }
    for (s = 0; s < 2; ++s) {
        MODEL_reset_state();
        for (t = 0; t < CALLS; ++t) {
            failed |= call(out, 0, s, t, 0);
        }
    }
    MODEL_reset_stream(state[0]);
    for (t = 0; t < CALLS; ++t) {
        failed |= call(out, 0, 1, t, 1);
    }
    fclose(in);
    fclose(out);
    return failed;
}
"""


@pytest.mark.parametrize("form", ["initial_state", "stacked"])
def test_two_streams_share_one_model(tmp_path, form):
    """NAME_run_stream: two streams, each with its own state buffer, one arena; interleaved they give what each
    gives alone (NAME_run, the static state), and the simulator's stream, call for call; NAME_reset_stream
    restarts a buffer. Both streaming kernels with state: kwscc_lstm_s8 from a nonzero initial state, and
    arm_nn_lstm_step_s8 feeding kwscc_gru_s8. ASan/UBSan build."""
    from kwscc.validate.host import build_host_program, run_host_program
    from tests.frontends.recurrent_models import onnx_rnn

    rng = np.random.default_rng(11)
    if form == "initial_state":
        path = onnx_rnn(tmp_path, op="LSTM", peepholes=True, initial=True, seq=9, features=6, hidden=7, seed=9)
        steps, features, frames = 9, 6, 3
    else:
        path, steps, features, frames = stacked_model(tmp_path / "stacked.onnx"), 8, 4, 2
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (32, steps, features)).astype(np.float32))
    stream = compile_model(path, CompileOptions(calib=str(tmp_path / "calib.npy"), streaming=frames))
    x = rng.normal(0, 1, (2, steps, features)).astype(np.float32)
    calls, name = calls_per_clip(stream.qm), stream.name
    main = (TWO_STREAMS_MAIN.replace("MODEL_UPPER", name.upper()).replace("MODEL", name)
            .replace("CALLS", str(calls)))
    prog = build_host_program(stream, tmp_path / "c", sanitize=True, main=main)
    out = run_host_program(prog, as_calls(stream.qm, x), stream.graph.tensors[stream.graph.outputs[0]].shape[-1])
    interleaved, alone, restarted = out[:2 * calls], out[2 * calls:4 * calls], out[4 * calls:]
    expected = simulate_stream(stream.qm, x).reshape(2, calls, -1)
    assert np.array_equal(alone.reshape(2, calls, -1), expected)
    assert np.array_equal(interleaved.reshape(calls, 2, -1).transpose(1, 0, 2), expected)
    assert np.array_equal(restarted, expected[1])
    assert not np.array_equal(expected[0], expected[1])  # the two streams differ: a shared state would show
