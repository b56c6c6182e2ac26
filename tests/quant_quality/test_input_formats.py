"""The input's and the logits' formats: the split input (hi + lo int8 planes), the input zero point chosen
by the logits' error, and the softmax input chosen by the softmax's top-1."""
from __future__ import annotations

import numpy as np
import pytest

from kwscc.frontends import read_model
from kwscc.ir.execute import run_float
from kwscc.passes import run_pipeline
from kwscc.quant.formats import Format, dequantize, quantize_input
from kwscc.quant.refine import (
    QuantOptions, choose_input_format, choose_softmax_input_ranges, quantize_calibrated, sample_values,
)
from kwscc.quant.simulate import quantize_model_input, simulate, simulate_float_inputs
from kwscc.quant.split_input import InputSplit, find_split, joined, quantize_split, split_weights
from tests.e2e import kws_shared as kws


def test_lo_weights_are_the_c_expression_for_every_int8():
    """The simulator's lo weight floor((w + 8) / 16) is what the emitted C computes: (w + 136) / 16 - 8."""
    w = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 1, -1)
    both = split_weights(w, 4)
    assert both.shape == (1, 1, 1, 512)
    np.testing.assert_array_equal(both[..., :256], w)
    c_expression = np.array([(int(v) + 136) // 16 - 8 for v in w.ravel()])  # C's / on non-negatives is floor
    np.testing.assert_array_equal(both[..., 256:].ravel(), c_expression)
    np.testing.assert_array_equal(both[..., 256:].ravel(), np.round(w.ravel() / 16 + 1e-9).astype(int))


@pytest.mark.parametrize("channels", [1, 3])
def test_split_layout_and_precision(channels):
    rng = np.random.default_rng(1)
    fmt = Format(1)
    split = InputSplit("x", "conv", frozenset({"x"}), channels, 4)
    x = rng.uniform(-60, 60, (5, 7, 4, channels)).astype(np.float32)
    q = quantize_split(x, fmt, split)
    assert q.shape == (5, 7, 4, 2 * channels) and q.dtype == np.int8
    hi, lo = q[..., :channels].astype(np.float64), q[..., channels:].astype(np.float64)
    np.testing.assert_array_equal(hi, quantize_input(x, fmt))  # the hi plane is the ordinary int8 input
    assert np.all(np.abs(lo) <= 8)
    recon = (hi + lo / 16) / 2
    assert np.max(np.abs(recon - x)) <= 2.0 ** -(1 + 4 + 1) + 1e-6  # half a step of the finer grid
    assert np.max(np.abs(hi / 2 - x)) > 0.2  # while the hi plane alone is 16x coarser


def test_split_special_values():
    split = InputSplit("x", "conv", frozenset({"x"}), 1, 4)
    x = np.array([[np.nan, np.inf, -np.inf, 1e30, 0.25, -0.25, 63.75]], np.float32)
    q = quantize_split(x, Format(1), split).reshape(-1, 2)
    assert q.tolist() == [[0, 0], [127, 127], [-128, -128], [127, 127], [1, -8], [-1, 8], [127, 8]]


def test_find_split_rules(small_models):
    ds = run_pipeline(read_model(kws.model_path("ds_cnn_s")))
    split = find_split(ds)
    assert split is not None and split.channels == 1 and split.input in split.tensors
    assert ds.node(split.layer).op == "Conv" and ds.node(split.layer).attrs["group"] == 1
    dnn = run_pipeline(read_model(kws.model_path("dnn_s")))
    assert find_split(dnn) is None  # a Dense first layer would double a whole matrix
    convnet = run_pipeline(read_model(small_models["convnet"][0]))
    assert find_split(convnet) is not None


def test_a_recurrent_first_layer_reads_the_joined_planes():
    """An LSTM/GRU reading the input through reshapes is split: per time step F hi then F lo, which the GRU
    kernel joins to hi * 16 + lo, the input on a grid 16x finer than its Qm.n."""
    graph = run_pipeline(read_model(kws.KWS / "recurrent" / "keras_gru.onnx"))
    split = find_split(graph)
    assert split is not None and split.recurrent and split.channels == 10 and graph.node(split.layer).op == "GRU"
    x = np.random.default_rng(2).uniform(-61, 23, (3, 490)).astype(np.float32)
    planes = quantize_split(x, Format(1), split)
    assert planes.shape == (3, 980)
    frames = planes.reshape(3, 49, 20)
    np.testing.assert_array_equal(frames[..., :10], quantize_input(x, Format(1)).reshape(3, 49, 10))
    values = joined(frames, split.bits)
    assert values.shape == (3, 49, 10)
    assert np.max(np.abs(values * 2.0 ** -(1 + split.bits) - x.reshape(3, 49, 10))) <= 2.0 ** -6 + 1e-6


def test_split_model_simulates_its_reshapes_and_matches_float(small_models):
    """The split layer's simulated output is closer to float than without the split."""
    path, npz = small_models["convnet"]
    graph = run_pipeline(read_model(path))
    from kwscc.data import load_inputs
    from kwscc.quant.calibrate import calibrate

    feeds = load_inputs(f"{npz}:calib", graph)
    summ = calibrate(graph, feeds, path)
    samples = sample_values(graph, feeds, path, 256)
    split = quantize_calibrated(graph, summ, QuantOptions(bias_correction=False), samples=samples)
    plain = quantize_calibrated(graph, summ, QuantOptions(bias_correction=False, split_input=False,
                                                         input_zero_point=False), samples=samples)
    assert split.split is not None and plain.split is None
    layer = split.split.layer
    out = graph.node(layer).outputs[0]
    ref = run_float(graph, feeds)[out]
    errs = []
    for qm in (split, plain):
        q = quantize_model_input(qm, graph.inputs[0], feeds[graph.inputs[0]])
        got = dequantize(simulate(qm, {graph.inputs[0]: q})[out], qm.formats[out])
        errs.append(float(np.sqrt(np.mean((got - ref) ** 2))))
    assert split.stored_bytes(graph.inputs[0]) == 2 * graph.tensors[graph.inputs[0]].size
    assert errs[0] < 0.8 * errs[1], errs


def test_input_zero_point_choice_prefers_finer_step_on_kws():
    """DNN_S's MFCC input: the logits' error picks step 2^-2 with a zero point over Q6.1."""
    graph = run_pipeline(read_model(kws.model_path("dnn_s")))
    from kwscc.data import load_inputs

    feeds = load_inputs(kws.calib_spec("dnn_s"), graph)
    fmt = choose_input_format(graph, graph.inputs[0], feeds)
    assert fmt.frac == 2 and 32 <= fmt.zero_point <= 96, fmt
    x = feeds[graph.inputs[0]]
    clipped = np.mean((x < (-128 - fmt.zero_point) / 4) | (x > (127 - fmt.zero_point) / 4))
    assert clipped <= 0.02


def test_input_format_of_constant_or_zero_input_is_symmetric():
    graph = run_pipeline(read_model(kws.model_path("dnn_s")))
    shape = (4,) + tuple(graph.tensors[graph.inputs[0]].shape[1:])
    zero = choose_input_format(graph, graph.inputs[0], {graph.inputs[0]: np.zeros(shape, np.float32)})
    assert zero.zero_point == 0


def test_softmax_input_format_keeps_top1():
    """Logits with close top two and a long negative tail: the max rule's coarse format ties the top
    two; the softmax-driven choice is finer (clipping the tail) and keeps more top-1 classes."""
    from kwscc.quant import kernels
    from kwscc.quant.formats import frac_bits_for

    graph = run_pipeline(read_model(kws.model_path("dnn_s")))
    t = next(n for n in graph.nodes() if n.op == "Softmax").inputs[0]
    rng = np.random.default_rng(3)
    rows = np.arange(400)
    logits = rng.uniform(-60, -5, (400, 12)).astype(np.float32)
    top = rng.integers(0, 12, 400)
    logits[rows, top] = rng.uniform(2, 6, 400)
    logits[rows, (top + 11) % 12] = logits[rows, top] - rng.uniform(0.05, 0.4, 400)  # ties pick the lower index
    ranges = {t: (float(logits.min()), float(logits.max()))}
    lo, hi = choose_softmax_input_ranges(graph, ranges, {"float": {t: logits}})[t]
    chosen, max_rule = frac_bits_for(max(-lo, hi)), frac_bits_for(max(-ranges[t][0], ranges[t][1]))
    assert chosen > max_rule and lo > ranges[t][0] and hi == pytest.approx(ranges[t][1])

    def kept(n: int) -> float:
        q = np.clip(np.floor(logits * 2.0**n + 0.5), -128, 127)
        return float(np.mean(kernels.softmax_s8(q, *kernels.softmax_params(n)).argmax(1) == top))

    assert kept(chosen) > kept(max_rule) + 0.1


def test_plain_and_seed_options_keep_the_ml_kws_input():
    for opts in (QuantOptions.plain(), QuantOptions.seed()):
        assert not (opts.split_input or opts.input_zero_point or opts.softmax_input)


def test_default_compile_of_kws_models_uses_the_split_where_the_first_layer_is_a_conv():
    assert kws.compiled("ds_cnn_s").qm.split is not None
    dnn = kws.compiled("dnn_s").qm
    assert dnn.split is None and dnn.input_format.zero_point != 0
    out = simulate_float_inputs(kws.compiled("ds_cnn_s").qm, {
        kws.compiled("ds_cnn_s").graph.inputs[0]: np.zeros((1, 490), np.float32)})
    assert out[kws.compiled("ds_cnn_s").graph.outputs[0]].shape[-1] == 12


def test_split_input_auto_keeps_the_arena():
    """--split-input auto (default): DS_CNN_S is split at no arena cost. On CMSIS-NN's kernels DS_CNN_M's
    first layer is its arena's peak, so it stays unsplit, and `on` shows what the split would have cost
    there; on the M4 kwscc's own first-layer kernel needs less scratch, so the split costs nothing there."""
    from kwscc.driver import CompileOptions, compile_model

    ds_s = kws.compiled("ds_cnn_s")
    assert ds_s.qm.split is not None and ds_s.plan.arena_size == 16000
    assert kws.compiled("ds_cnn_m").qm.split is not None
    calib = kws.calib_spec("ds_cnn_m")
    ds_m = compile_model(kws.model_path("ds_cnn_m"), CompileOptions(calib=calib, kernels="cmsis-nn"))
    assert ds_m.qm.split is None and find_split(ds_m.graph) is not None
    forced = compile_model(kws.model_path("ds_cnn_m"), CompileOptions(calib=calib, kernels="cmsis-nn",
                                                                        split_input="on"))
    assert forced.qm.split is not None and forced.plan.arena_size > ds_m.plan.arena_size
