"""int8 TFLite files of unrolled recurrent cells (kwscc.frontends.tflite_int8): the per-step int32 biases of
one weight tensor are read as the one float bias they were quantized from, exactly enough that each
step's int32 bias comes back at that step's scale, and biases from different float values stay apart;
an int8 constant that rounds a bias slice (a folded step 0) is read as the slice; requantized copies
widen the recorded range of what they copy; calibration takes the recurrence from kwscc's execution."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwscc.frontends import read_model, reference_runner
from kwscc.frontends.tflite_int8 import shared_biases
from kwscc.frontends.tflite_reader import load
from kwscc.ir.execute import run_float
from kwscc.passes import run_pipeline
from kwscc.quant.calibrate import activation_names, float_batches
from tests.e2e.kws_shared import NPZ
from tfl_builder import ModelBuilder, fc_options, quantize_per_channel

GRU_S_INT8 = Path(__file__).resolve().parents[2] / "examples" / "kws" / "recurrent" / "gru_s_int8.tflite"
RNG = np.random.default_rng(15)


def _requantized(value: np.ndarray, t) -> np.ndarray:
    return np.round(value.astype(np.float64) / t.scale).astype(np.int64) + t.zero_point


def _two_steps(tmp_path, second_bias_offset: float) -> Path:
    """x -> FC(w, b0) -> FC(w, b1): one int8 weight tensor, two int32 biases at two input scales."""
    w = RNG.standard_normal((4, 4)).astype(np.float32) * 0.5
    b = RNG.standard_normal(4).astype(np.float32)
    wq, ws = quantize_per_channel(w, 0)
    mb = ModelBuilder()
    scales = (0.031, 0.027)
    x = mb.tensor("x", [1, 4], "INT8", scale=scales[0], zero_point=3)
    wt = mb.const("w", wq, "INT8", scale=ws, zero_point=np.zeros(4, np.int64), qdim=0)
    h = mb.tensor("h", [1, 4], "INT8", scale=scales[1], zero_point=-5)
    y = mb.tensor("y", [1, 4], "INT8", scale=0.05, zero_point=0)
    for step, (src, dst) in enumerate(((x, h), (h, y))):
        bias_scale = scales[step] * ws
        value = b + (second_bias_offset if step else 0.0)
        bq = mb.const(f"b{step}", np.round(value / bias_scale).astype(np.int32), "INT32", scale=bias_scale,
                      zero_point=np.zeros(4, np.int64))
        mb.op("FULLY_CONNECTED", [src, wt, bq], [dst], fc_options())
    return mb.save(tmp_path, [x], [y])


def _bias_constants(path: Path) -> list[str]:
    graph = read_model(path)
    return sorted({node.inputs[2] for node in graph.nodes() if node.op == "Dense"})


def test_per_step_biases_of_one_weight_tensor_are_one_constant(tmp_path):
    path = _two_steps(tmp_path, 0.0)
    biases = _bias_constants(path)
    assert len(biases) == 1
    model = load(path)
    value = read_model(path).tensors[biases[0]].data
    for t in model.tensors:
        if t.name in ("b0", "b1"):
            np.testing.assert_array_equal(_requantized(value, t), t.data)


def test_biases_from_different_float_values_stay_apart(tmp_path):
    path = _two_steps(tmp_path, 0.1)  # 0.1 is many quantization steps
    assert len(_bias_constants(path)) == 2


@pytest.mark.skipif(not GRU_S_INT8.is_file(), reason="examples/kws/recurrent/gru_s_int8.tflite is missing")
def test_gru_s_int8_per_step_biases_requantize_exactly():
    """ML-KWS GRU_S, full int8: 25 steps, each with its own int32 biases for the gates' and the
    candidate's FULLY_CONNECTED; each group is one float bias that gives back every step's int32 values."""
    model = load(GRU_S_INT8)
    shared = shared_biases(model)
    groups: dict[int, list[int]] = {}
    for idx, (first, _) in shared.items():
        groups.setdefault(first, []).append(idx)
    assert sorted(len(g) for g in groups.values()) == [25, 25]
    for idx, (_, value) in shared.items():
        t = model.tensors[idx]
        np.testing.assert_array_equal(_requantized(value, t), t.data)



def _folded_step(tmp_path, offset_in_steps: float) -> Path:
    """x -> FC(w1, b1) -> FC(w2, b2) -> ADD(., c): c is an int8 constant rounding b1[8:16] (+ an offset)."""
    w1, w2 = RNG.standard_normal((16, 4)), RNG.standard_normal((8, 16))
    b1, b2 = RNG.standard_normal(16), RNG.standard_normal(8)
    mb = ModelBuilder()
    x = mb.tensor("x", [1, 4], "INT8", scale=0.03, zero_point=0)
    h1 = mb.tensor("h1", [1, 16], "INT8", scale=0.1, zero_point=0)
    h2 = mb.tensor("h2", [1, 8], "INT8", scale=0.1, zero_point=0)
    for i, (w, b, src, dst, in_scale) in enumerate(((w1, b1, x, h1, 0.03), (w2, b2, h1, h2, 0.1))):
        wq, ws = quantize_per_channel(w.astype(np.float32), 0)
        zeros = np.zeros(len(b), np.int64)
        wt = mb.const(f"w{i}", wq, "INT8", scale=ws, zero_point=zeros, qdim=0)
        bq = mb.const(f"b{i}", np.round(b / (in_scale * ws)).astype(np.int32), "INT32", scale=in_scale * ws,
                      zero_point=zeros)
        mb.op("FULLY_CONNECTED", [src, wt, bq], [dst], fc_options())
    c = mb.const("c", np.round(b1[8:].reshape(1, 8) / 0.02 + offset_in_steps).astype(np.int8), "INT8", scale=0.02,
                 zero_point=0)
    y = mb.tensor("y", [1, 8], "INT8", scale=0.1, zero_point=0)
    mb.op("ADD", [h2, c], [y])
    return mb.save(tmp_path, [x], [y])


@pytest.mark.parametrize("offset", [0.0, 3.0])
def test_an_int8_constant_that_rounds_a_bias_slice_is_read_as_that_slice(tmp_path, offset):
    """Step 0 folded with the zero state: an int8 constant that stands for part of an int32 bias is read
    as that part; one three steps off is read as it is."""
    path = _folded_step(tmp_path, offset)
    graph = read_model(path)
    nodes = {node.op: node for node in graph.nodes()}
    added = graph.tensors[nodes["Add"].inputs[1]].data.reshape(-1)
    first_bias = graph.tensors[next(n for n in graph.nodes() if n.op == "Dense").inputs[2]].data
    c = next(t for t in load(path).tensors if t.name == "c")
    if offset:
        np.testing.assert_array_equal(added, c.data.reshape(-1) * np.float32(0.02))
    else:
        np.testing.assert_array_equal(added, first_bias[8:])


def test_requantized_copies_widen_the_range_of_the_values_they_copy(tmp_path):
    """x [1, 8] int8 -> RESHAPE [2, 4] -> QUANTIZE (int8 -> int8, a wider range) -> FC: the input's recorded
    range spans the copy's range, and so does the reshaped tensor's."""
    mb = ModelBuilder()
    x = mb.tensor("x", [1, 8], "INT8", scale=0.05, zero_point=100)  # [-11.4, 1.35]
    r = mb.tensor("r", [2, 4], "INT8", scale=0.05, zero_point=100)
    mb.op("RESHAPE", [x, mb.const("shape", np.array([2, 4]), "INT32")], [r])
    q = mb.tensor("q", [2, 4], "INT8", scale=0.1, zero_point=0)  # [-12.8, 12.7]
    mb.op("QUANTIZE", [r], [q])
    wq, ws = quantize_per_channel(RNG.standard_normal((3, 4)).astype(np.float32), 0)
    w = mb.const("w", wq, "INT8", scale=ws, zero_point=np.zeros(3, np.int64), qdim=0)
    y = mb.tensor("y", [2, 3], "INT8", scale=0.1, zero_point=0)
    mb.op("FULLY_CONNECTED", [q, w], [y], fc_options())
    ranges = read_model(mb.save(tmp_path, [x], [y])).recorded_ranges
    for name in ("x", "r"):
        assert ranges[name] == pytest.approx((-12.8, 12.7))


@pytest.mark.skipif(not GRU_S_INT8.is_file(), reason="examples/kws/recurrent/gru_s_int8.tflite is missing")
def test_gru_s_int8_input_range_spans_every_frames_requantized_range():
    """The file clips its input to the last frame's range [-60.5, 5.2]; the 24 requantized frames record
    the calibrated input range up to 22.8, and kwscc's input range spans it."""
    lo, hi = read_model(GRU_S_INT8).recorded_ranges["Reshape"]
    assert lo == pytest.approx(-60.96, abs=0.01) and hi == pytest.approx(22.79, abs=0.01)


@pytest.mark.skipif(not GRU_S_INT8.is_file(), reason="examples/kws/recurrent/gru_s_int8.tflite is missing")
def test_calibrating_an_int8_file_takes_its_recurrence_from_kwscc():
    """The GRU raised from gru_s_int8 and the layers after it are calibrated on kwscc's float execution
    (LiteRT's values there come from TF's int8 recurrence, which kwscc's kernel does not share)."""
    graph = run_pipeline(read_model(GRU_S_INT8))
    gru = next(node for node in graph.nodes() if node.op == "GRU")
    with np.load(NPZ) as data:
        feeds = {graph.inputs[0]: data["test_x250"][:8].astype(np.float32)}
    _, _, values = next(float_batches(graph, feeds, GRU_S_INT8, activation_names(graph)))
    own = run_float(graph, feeds)
    for name in (gru.outputs[0], graph.outputs[0]):
        np.testing.assert_array_equal(values[name], own[name])
    litert = reference_runner(GRU_S_INT8, [gru.outputs[0]])(feeds)[gru.outputs[0]]
    assert not np.allclose(litert, own[gru.outputs[0]], atol=1e-3)  # so the test can tell them apart
