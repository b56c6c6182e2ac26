"""The safety net of the data-driven steps: a step that lowers the agreement with the float model on
the calibration samples is not applied, and the steps applied are listed (QuantModel.steps, the
report's quantization_steps, validate's JSON)."""
from __future__ import annotations

import numpy as np

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant import refine


def test_steps_applied_are_listed(small_models):
    path, npz = small_models["mlp"]
    compiled = compile_model(path, CompileOptions(calib=f"{npz}:calib"))
    assert compiled.qm.steps == ("logits_format", "unsigned_outputs", "weight_format_search", "input_zero_point",
                                 "bias_correction")
    off = compile_model(path, CompileOptions(calib=f"{npz}:calib", bias_correction=False, unsigned_relu=False))
    assert "bias_correction" not in off.qm.steps and "unsigned_outputs" not in off.qm.steps


def test_a_step_that_lowers_agreement_is_not_applied(conv_flatten_dense, monkeypatch, caplog):
    """A bias correction gone wrong (biases pushed off, as the NCHW layout bug did) is caught on the
    calibration samples and left out; the other steps stay."""
    path, npz = conv_flatten_dense
    good = compile_model(path, CompileOptions(calib=f"{npz}:calib"))
    assert "bias_correction" in good.qm.steps
    real = refine.correct_biases

    def ruinous(qm, samples, values=None):  # values left empty: the net simulates the ruined program itself
        changed = real(qm, samples)
        for layer in qm.layers.values():
            if layer.bias is not None:  # +-40 output steps, alternating over the channels
                sign = np.where(np.arange(layer.bias.size) % 2, -40, 40)
                off = (np.int64(1) << layer.shift.astype(np.int64)) * sign
                layer.bias = (layer.bias.astype(np.int64) + off).clip(-(2**31 - 1), 2**31 - 1).astype(np.int32)
        return changed

    monkeypatch.setattr(refine, "correct_biases", ruinous)
    bad = compile_model(path, CompileOptions(calib=f"{npz}:calib"))
    assert "bias_correction" not in bad.qm.steps
    assert set(bad.qm.steps) == set(good.qm.steps) - {"bias_correction"}
    assert "step bias_correction lowered the agreement" in caplog.text
    samples = refine.sample_values(bad.graph, {"x": np.load(npz)["calib"]}, path, 512)
    assert refine.agreement(bad.qm, samples) >= refine.agreement(good.qm, samples) - 0.01
