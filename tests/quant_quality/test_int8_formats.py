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
    from kwscc.quant.refine import unsigned_tensors

    graph = run_pipeline(read_model(small_models["mlp"][0]))
    recorded = {name: _recorded(0.02, 0) for name, t in graph.tensors.items() if not t.is_const}
    recorded["r1"] = _recorded(0.03, -128)  # [0, 7.65]: a ReLU output
    recorded["r2"] = _recorded(0.05, -128)
    ranges, unsigned, inputs = int8_formats(graph, recorded, unsigned_tensors(graph))
    qm = quantize(graph, ranges, unsigned=unsigned, input_formats=inputs)
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
