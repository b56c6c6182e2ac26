"""The data-driven steps: unsigned ReLU outputs (zero point folded into biases), bias correction,
power-of-two equalization -- and that the C stays bit-exact with the simulator with all of them."""
from __future__ import annotations

import numpy as np
import pytest

from kwscc.data import load_inputs
from kwscc.driver import CompileOptions, compile_model
from kwscc.frontends import read_model
from kwscc.ir.execute import run_float
from kwscc.passes import run_pipeline
from kwscc.quant import kernels
from kwscc.quant.calibrate import calibrate
from kwscc.quant.equalize import equalize
from kwscc.quant.formats import dequantize
from kwscc.quant.refine import QuantOptions, quantize_calibrated, sample_values, unsigned_tensors
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.validate.validate import validate


def _setup(small_models, name):
    path, npz = small_models[name]
    graph = run_pipeline(read_model(path))
    feeds = load_inputs(f"{npz}:calib", graph)
    return path, npz, graph, feeds, calibrate(graph, feeds, path)


def _producer_output(graph, source_name):
    """The IR tensor that holds the ONNX tensor `source_name` (names survive the passes)."""
    return next(t for t in graph.tensors if t == source_name)


def test_unsigned_tensors_include_padded_readers(small_models):
    """Every ReLU output read by Conv / Dense / pools is unsigned: CMSIS-NN's input_offset makes zero
    padding read as a real 0, so zero-padded readers qualify too; graph outputs and softmax-less
    logits do not."""
    _, _, graph, _, _ = _setup(small_models, "convnet")
    uns = unsigned_tensors(graph)
    assert _producer_output(graph, "ar") in uns  # read by an unpadded 1x1 conv
    assert "br" in uns and "dr" in uns  # read by zero-padded (depthwise) convolutions
    assert "er" in uns  # pool -> reshape -> dense
    _, _, mlp, _, _ = _setup(small_models, "mlp")
    assert unsigned_tensors(mlp) == {"r1", "r2"}


def test_unsigned_reader_accumulator_is_exact(small_models):
    """A reader of an unsigned tensor runs with input_offset 128 and its plain bias: its accumulator is
    exactly the one of the unshifted input."""
    path, _, graph, feeds, summ = _setup(small_models, "mlp")
    qm = quantize_calibrated(graph, summ, QuantOptions(bias_correction=False))
    assert qm.formats["r1"].zero_point == -128 and qm.formats["r2"].zero_point == -128
    sim = simulate_float_inputs(qm, feeds)
    reader = next(n for n in graph.nodes() if n.inputs[0] == "r1")
    layer = qm.layers[reader.name]
    assert layer.input_offset == 128
    mult, shift = kernels.pow2_multiplier_shift(layer.shift)
    unshifted = sim["r1"].astype(np.int32) + 128  # 0..255: needs int32, which is what input_offset avoids
    acc = unshifted @ layer.weights.astype(np.int32).T + layer.bias
    want = np.clip(kernels.requantize(acc, mult, shift, qm.rounding), *layer.act)
    np.testing.assert_array_equal(sim[reader.outputs[0]], want)
    # and the unsigned tensor means what the float model computes, zeros exactly
    ref = run_float(graph, feeds)["r1"]
    deq = dequantize(sim["r1"], qm.formats["r1"])
    assert np.all(deq[ref == 0] == 0) and np.all(deq >= 0)


def test_padded_reader_of_unsigned_tensor_reads_zero_padding(small_models):
    """'br' is unsigned and read by a zero-padded depthwise conv: with input_offset 128 the padding is a
    real 0, so the border outputs are as accurate as the inner ones; reading the padding as -128 (the
    stored zero point, what a bias-folding scheme would do) would ruin them."""
    path, _, graph, feeds, summ = _setup(small_models, "convnet")
    qm = quantize_calibrated(graph, summ, QuantOptions(bias_correction=False))
    assert qm.formats["br"].zero_point == -128
    reader = next(n for n in graph.nodes() if n.inputs[0] == "br")
    layer = qm.layers[reader.name]
    assert layer.input_offset == 128 and any(reader.attrs["pads"])
    sim = simulate_float_inputs(qm, feeds)
    ref = run_float(graph, feeds)[reader.outputs[0]]
    got = dequantize(sim[reader.outputs[0]], qm.formats[reader.outputs[0]])
    border = np.zeros(ref.shape[1:3], bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    err = np.abs(got - ref)
    assert err[:, border].max() <= 4 * err[:, ~border].max() + 2.0 ** -qm.formats[reader.outputs[0]].frac
    # the bias-folding scheme instead (input_offset 0, bias + 128 * sum(w)): exact inside, but the padding
    # reads as -128, i.e. as a real -128 * 2^-n, on the border
    w = np.ascontiguousarray(layer.weights.transpose(3, 1, 2, 0))  # CMSIS-NN depthwise layout [1, KH, KW, C]
    folded = layer.bias.astype(np.int64) + 128 * w.reshape(-1, w.shape[3]).astype(np.int64).sum(axis=0)
    wrong = kernels.depthwise_conv_s8(
        sim["br"], w, folded.astype(np.int32), *kernels.pow2_multiplier_shift(layer.shift),
        stride=reader.attrs["strides"], padding=(1, 1), out_hw=ref.shape[1:3], act=layer.act,
        rounding=qm.rounding, input_offset=0)
    np.testing.assert_array_equal(wrong[:, ~border], sim[reader.outputs[0]][:, ~border])
    wrong = dequantize(wrong, qm.formats[reader.outputs[0]])
    assert np.abs(wrong - ref)[:, border].mean() > 5 * err[:, border].mean()


def test_unsigned_gains_resolution(small_models):
    path, _, graph, feeds, summ = _setup(small_models, "mlp")
    ref = run_float(graph, feeds)

    def sqnr(qm, t):
        d = dequantize(simulate_float_inputs(qm, feeds)[t], qm.formats[t]).astype(np.float64)
        return 10 * np.log10(np.sum(ref[t] ** 2) / np.sum((ref[t] - d) ** 2))

    signed = quantize_calibrated(graph, summ, QuantOptions.plain())
    unsigned = quantize_calibrated(graph, summ, QuantOptions(bias_correction=False, weight_method="max"))
    assert unsigned.formats["r1"].frac == signed.formats["r1"].frac + 1
    assert sqnr(unsigned, "r1") > sqnr(signed, "r1") + 1.5  # input and weight noise stay


def test_bias_correction_removes_the_mean_error(small_models):
    path, _, graph, feeds, summ = _setup(small_models, "convnet")
    samples = sample_values(graph, feeds, path, 300)
    out = graph.outputs[0]
    logits = graph.producer(out).inputs[0]

    def mean_err(qm):
        d = dequantize(simulate_float_inputs(qm, samples["feeds"])[logits], qm.formats[logits])
        return float(np.abs((d - samples["float"][logits]).mean(axis=0)).mean())

    before = quantize_calibrated(graph, summ, QuantOptions(bias_correction=False), samples=samples)
    after = quantize_calibrated(graph, summ, QuantOptions(bias_correction=True), samples=samples)
    assert mean_err(after) < mean_err(before)


def test_equalization_keeps_the_float_function(small_models):
    path, _, graph, feeds, _ = _setup(small_models, "convnet")
    before = run_float(graph, feeds)
    g2 = graph.copy()
    absmax = {n: np.abs(v).reshape(-1, v.shape[-1]).max(axis=0) for n, v in before.items()
              if isinstance(v, np.ndarray) and v.ndim == 4 and n in g2.tensors and not g2.tensors[n].is_const}
    changed = equalize(g2, absmax)
    assert changed and all((e >= 0).all() for e in changed.values())
    after = run_float(g2, feeds)
    np.testing.assert_allclose(after[g2.outputs[0]], before[graph.outputs[0]], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "convnet"])
@pytest.mark.parametrize("extra", [{}, {"weights": "per-tensor"}, {"weights": "seed", "calib_method": "max"},
                                   {"calib_method": "kl", "search_formats": True},
                                   {"calib_method": "percentile", "rounding": "single"}])
def test_c_is_bit_exact_with_every_step(small_models, have_cc, name, extra):
    path, npz = small_models[name]
    compiled = compile_model(path, CompileOptions(calib=f"{npz}:calib", **extra))
    result = validate(compiled, f"{npz}:test", "test_y")
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.85
