"""An int8 model compiled without data: formats from each tensor's own (scale, zero point)
(kwscc.quant.from_int8), within 2 points of LiteRT running the same int8 file."""
from __future__ import annotations

import numpy as np

from kwscc.data import load_inputs
from kwscc.driver import CompileOptions, compile_model
from kwscc.frontends import reference_runner
from kwscc.quant.formats import Format
from kwscc.quant.from_int8 import input_format, int8_formats, scale_zero_point
from kwscc.quant.quantize import quantize
from kwscc.quant.simulate import simulate_float_inputs
from tests.e2e import kws_shared as kws


def _recorded(scale: float, zp: int) -> tuple[float, float]:
    return scale * (-128 - zp), scale * (127 - zp)


def test_scale_and_zero_point_come_back_from_the_recorded_range():
    scale, zp = scale_zero_point(*_recorded(1.08, 83))
    assert abs(scale - 1.08) < 1e-12 and zp == 83


def test_input_keeps_its_step_and_window():
    """A scale of 1.08 becomes a step of 1 (not 2, what the max rule gives the range), with a zero
    point that keeps the window where the model's is: the window loses only 8 % of its width."""
    lo, hi = _recorded(1.08, 83)
    fmt = input_format(lo, hi)
    assert fmt.frac == 0
    win_lo, win_hi = (-128 - fmt.zero_point) * fmt.scale, (127 - fmt.zero_point) * fmt.scale
    assert abs((win_lo + win_hi) / 2 - (lo + hi) / 2) <= fmt.scale
    assert input_format(*_recorded(0.3, -5)).frac == 2  # 0.3: the nearest power of two is 0.25


def test_relu_bounded_tensors_become_unsigned_with_the_nearest_step(small_models):
    from kwscc.frontends import read_model
    from kwscc.passes import run_pipeline
    from kwscc.quant.refine import offset_tensors

    graph = run_pipeline(read_model(small_models["mlp"][0]))
    recorded = {name: _recorded(0.02, 0) for name, t in graph.tensors.items() if not t.is_const}
    recorded["r1"] = _recorded(0.03, -128)  # [0, 7.65]: a ReLU output
    recorded["r2"] = _recorded(0.05, -128)
    ranges, affine, inputs = int8_formats(graph, recorded, offset_tensors(graph))
    qm = quantize(graph, ranges, input_formats=inputs, output_formats=affine)
    assert qm.formats["r1"] == Format(5, -128)  # 2^-5 = 0.031 nearest 0.03
    assert qm.formats["r2"] == Format(4, -128)  # 2^-4 = 0.0625 nearest 0.05
    assert qm.formats["x"].frac == 6  # 2^-6 nearest 0.02


def test_int8_keyword_spotter_without_data_is_within_2_points_of_litert():
    """ds_cnn_s_int8.tflite without --calib against LiteRT running the same file, on the same 1000
    test clips: top-1 agreement with the float model and accuracy on the labels."""
    model = "ds_cnn_s"
    path = kws.KWS / f"{model}_int8.tflite"
    compiled = compile_model(path, CompileOptions(calib=None))
    count = 1000
    feeds = {k: v[:count] for k, v in load_inputs(kws.split_spec(model), compiled.graph).items()}
    arrays = kws.kws_arrays()
    float_top1 = arrays[f"test_out_{model}"][:count].argmax(1)
    labels = arrays["test_y"][:count]
    out = compiled.source.outputs[0]
    ours = simulate_float_inputs(compiled.qm, feeds)[compiled.graph.outputs[0]].reshape(count, -1).argmax(1)
    litert = reference_runner(path, [out])(feeds)[out].reshape(count, -1).argmax(1)
    assert np.mean(ours == float_top1) >= np.mean(litert == float_top1) - 0.02
    assert np.mean(ours == labels) >= np.mean(litert == labels) - 0.02
    assert compiled.qm.input_format.zero_point != 0  # the input window follows the model's
    assert any(f.zero_point == -128 for t, f in compiled.qm.formats.items() if t != compiled.graph.outputs[0])


def _int8_mlp(tmp_path, rng):
    """x [1, 16] -> Gemm (int8 weights, a non-power-of-two scale per output) + ReLU -> Gemm (int8 weights,
    one scale for the tensor) -> logits: the weights a symmetric int8 quantization writes."""
    from onnx import helper

    from kwscc.frontends import read_model
    from kwscc.passes import run_pipeline
    from tests.models_util import make_model, save

    q1 = rng.integers(-127, 128, (16, 12)).astype(np.float64)
    q1[0] = 127  # max |q| = 127 in every output column
    s1 = rng.uniform(0.003, 0.02, 12)
    q2 = rng.integers(-127, 128, (12, 5)).astype(np.float64)
    q2[0, 0] = -127
    s2 = 0.0123
    inits = {"w1": (q1 * s1).astype(np.float32), "b1": rng.normal(0, 0.1, 12).astype(np.float32),
             "w2": (q2 * s2).astype(np.float32), "b2": rng.normal(0, 0.1, 5).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"])]
    path = save(make_model(nodes, {"x": [1, 16]}, ["logits"], inits), tmp_path, "int8_mlp.onnx")
    return run_pipeline(read_model(path)), q1.T.astype(np.int8), q2.T.astype(np.int8)


def test_int8_weights_are_kept_and_their_scales_go_into_the_multipliers(tmp_path):
    """Weights that are int8 values times a scale per output (or one scale) stay those int8 values; the
    layer's output, in its power-of-two format, is then the exact float result rounded once."""
    from kwscc.ir.execute import run_float
    from kwscc.quant.formats import dequantize
    from kwscc.quant.from_int8 import quantize_int8_model
    from kwscc.quant.simulate import simulate

    rng = np.random.default_rng(3)
    graph, q1, q2 = _int8_mlp(tmp_path, rng)
    graph.recorded_ranges = {"x": _recorded(1 / 32, 0), "r": _recorded(0.09, -128), "logits": _recorded(0.2, 10)}
    qm = quantize_int8_model(graph)
    first, second = (qm.layers[node.name] for node in graph.nodes())
    np.testing.assert_array_equal(first.weights, q1)
    np.testing.assert_array_equal(second.weights, q2)
    assert first.multiplier is not None and len(set(first.multiplier)) > 1  # one scale per output
    assert qm.formats["r"] == Format(3, -128)  # 2^-3 nearest 0.09

    x_int8 = rng.integers(-128, 128, (200, 16)).astype(np.int8)
    got = dequantize(simulate(qm, {"x": x_int8})["r"], qm.formats["r"])
    want = run_float(graph, {"x": dequantize(x_int8, qm.formats["x"])})["r"]
    step = qm.formats["r"].scale
    assert np.abs(got - np.clip(want, 0, 255 * step)).max() <= 0.51 * step  # power-of-two weights: 2.4 steps


def test_optimize_speed_gives_an_int8_model_power_of_two_weights():
    """--optimize speed trades the file's own weights (a multiplier per channel) for shift-only requantization;
    balanced, the default, keeps them."""
    model = kws.KWS / "ds_cnn_s_int8.tflite"
    for optimize, kept in (("balanced", True), ("speed", False)):
        qm = compile_model(model, CompileOptions(optimize=optimize)).qm
        weighted = [layer for layer in qm.layers.values() if getattr(layer, "weights", None) is not None]
        assert weighted and all((layer.multiplier is not None) == kept for layer in weighted), optimize


def test_power_of_two_weights_for_weights_that_are_not_int8(tmp_path):
    from kwscc.quant.int8_weights import recorded_int8

    rng = np.random.default_rng(4)
    graph, q1, _ = _int8_mlp(tmp_path, rng)
    w = graph.tensors[next(iter(graph.nodes())).inputs[1]].data
    kept = recorded_int8(w)
    assert kept is not None and np.array_equal(kept[0], q1)
    assert recorded_int8(w + 1e-4) is None  # float weights
    assert recorded_int8(np.zeros((3, 4))) is None


def test_multiplier_and_shift_give_the_real_scale():
    from kwscc.quant.int8_weights import multiplier_shift

    real = np.array([0.75, 2.0**-9, 0.3 * 2.0**-20, 1 - 2.0**-40])
    m, k = multiplier_shift(real)
    assert ((m >= 2**30) & (m < 2**31)).all()
    np.testing.assert_allclose(m * 2.0**-30 * np.exp2(-k.astype(np.float64)), real, rtol=2.0**-30)
    assert (m[1], k[1]) == (2**30, 9)  # a power of two is (2^30, k), as before


def test_asymmetric_range_keeps_its_window_with_a_zero_point():
    """A range like [-166 s, 89 s] (zero point 38) gets the step nearest s and a window centred alike, not a
    symmetric format whose step would have to be 1.3 s and then a power of two above it."""
    lo, hi = _recorded(0.0839, 38)
    fmt = input_format(lo, hi)
    assert fmt.frac == 4 and fmt.zero_point != 0
    win_lo, win_hi = (-128 - fmt.zero_point) * fmt.scale, (127 - fmt.zero_point) * fmt.scale
    assert abs((win_lo + win_hi) / 2 - (lo + hi) / 2) <= fmt.scale


def test_int8_lstm_keeps_the_files_weights_and_computes_what_they_compute():
    """keras_lstm_int8 (TFLite's int8 UNIDIRECTIONAL_SEQUENCE_LSTM: one scale per gate and operand) without
    data, in every mode: the gates keep the file's int8 weights, their scales in the library's multipliers,
    so the hidden state is the file's own float graph's to the activations' rounding (44 dB on the same
    int8 input; power-of-two weights rounded a second time: 31 dB)."""
    from kwscc.frontends import read_model
    from kwscc.ir.execute import run_float
    from kwscc.passes import run_pipeline
    from kwscc.quant.formats import dequantize
    from kwscc.quant.from_int8 import quantize_int8_model
    from kwscc.quant.int8_weights import recorded_int8
    from kwscc.quant.lstm import GATES
    from kwscc.quant.simulate import quantize_model_input, simulate

    graph = run_pipeline(read_model(kws.KWS / "recurrent" / "keras_lstm_int8.tflite"))
    node = next(n for n in graph.nodes() if n.op == "LSTM")
    w, r = (graph.tensors[name].data for name in node.inputs[1:3])
    # --optimize speed (power-of-two Conv / Dense weights) keeps them too: the library multiplies anyway
    for qm in (quantize_int8_model(graph, keep_weights=False), quantize_int8_model(graph)):
        layer = qm.layers[node.name]
        size = layer.hidden_size
        for index, gate in enumerate(GATES):
            rows = slice(index * size, (index + 1) * size)
            for weights, kept in ((w, layer.gates[gate].input_weights), (r, layer.gates[gate].hidden_weights)):
                own = recorded_int8(weights[rows].reshape(1, -1))[0].reshape(weights[rows].shape)
                np.testing.assert_array_equal(kept[:, :own.shape[1]], own)  # a split input's W_lo columns follow
            assert layer.gates[gate].input_multiplier != 2**30  # the scale, not a power of two
    name, fmt = graph.inputs[0], qm.formats[graph.inputs[0]]
    with np.load(kws.NPZ) as data:
        x = data["test_x490"][:50]
    x_q = quantize_model_input(qm, name, x)
    if qm.split is None:
        x_in = dequantize(x_q, fmt)
    else:  # hi then lo per time step
        planes = x_q.reshape(len(x), -1, 2 * qm.split.channels).astype(np.float64)
        hi, lo = planes[..., :qm.split.channels], planes[..., qm.split.channels:]
        x_in = ((hi + lo * 2.0**-qm.split.bits) * 2.0**-fmt.frac).reshape(x.shape)
    got = dequantize(simulate(qm, {name: x_q})[node.outputs[0]], qm.formats[node.outputs[0]])
    want = run_float(graph, {name: x_in.astype(np.float32)})[node.outputs[0]]
    sqnr = 10 * np.log10(np.sum(want.astype(np.float64) ** 2) / np.sum((want - got) ** 2))
    assert sqnr >= 38.0
