"""The four ML-KWS-for-MCU models (examples/kws) through --backend cmsis-nn-legacy: the same kernels ML-KWS
called, C vs simulator bit for bit and agreement with the float model on the first 400 test clips (the
Done-when numbers on all 2000 clips are measured with the CLI: README "cmsis-nn-legacy"), and an arena below
ML-KWS's hand-written DS-CNN buffers (18,304 bytes)."""
from __future__ import annotations

import numpy as np
import pytest

from kwscc.validate.validate import validate
from tests.e2e import kws_shared as kws

SAMPLES = 400
MLKWS_DS_CNN_S_ARENA = 18304  # ML-KWS ds_cnn.cpp: two 8000-byte activation buffers + a 2304-byte col buffer


compiled = kws.legacy_compiled  # shared with the tests against the real CMSIS_5 (tests/target)


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """{model: DATA spec} of the first SAMPLES test clips, labels included."""
    path = tmp_path_factory.mktemp("legacy_kws") / "subset.npz"
    arrays = kws.kws_arrays()
    with np.load(kws.NPZ) as data:
        labels = data["test_y"][:SAMPLES]
    np.savez(path, x490=arrays["test_x490"][:SAMPLES], x250=arrays["test_x250"][:SAMPLES], y=labels)
    return {model: f"{path}:{kws.FEATURES[model]}" for model in kws.MODELS}, path


@pytest.mark.parametrize("model", kws.MODELS)
def test_kws_model_validates(model, subset):
    specs, path = subset
    result = validate(compiled(model), specs[model], f"{path}:y")
    print(f"{model}: agreement {result['top1_agreement']:.4f} quantized accuracy {result['quantized_accuracy']:.4f}")
    assert result["samples"] == SAMPLES
    assert result["c_vs_simulator_mismatches"] == 0
    if model != "dnn_s":
        assert result["top1_agreement"] >= 0.90


def test_ds_cnn_uses_ml_kws_kernels_and_less_ram():
    c = compiled("ds_cnn_s")
    assert [call.function for call in c.calls] == [
        "arm_convolve_HWC_q7_basic_nonsquare + arm_relu_q7",
        *["arm_depthwise_separable_conv_HWC_q7_nonsquare + arm_relu_q7",
          "arm_convolve_1x1_HWC_q7_fast_nonsquare + arm_relu_q7"] * 4,
        "kwscc_avepool_q7_HWC", "arm_fully_connected_q7_opt", "kwscc_softmax_q7"]
    assert c.plan.arena_size < MLKWS_DS_CNN_S_ARENA
    assert c.plan.arena_size == 2 * 8000 + 64 * 3 * 3  # two 25x5x64 activations + the depthwise col buffer
    assert f"#define DS_CNN_S_ARENA_SIZE {c.plan.arena_size} " in c.files["ds_cnn_s.h"]


def test_dnn_is_fully_connected_and_relu():
    assert [call.function for call in compiled("dnn_s").calls] == [
        *["arm_fully_connected_q7_opt + arm_relu_q7"] * 3, "arm_fully_connected_q7_opt", "kwscc_softmax_q7"]


def test_cmsis_softmax_option(subset):
    specs, _ = subset
    c = compiled("ds_cnn_s", "cmsis")
    assert c.calls[-1].function == "arm_softmax_q7"
    assert (c.qm.output_format.frac, c.qm.output_format.zero_point) == (7, 0)
    assert "arm_softmax_q7 of CMSIS_5 5.7.0-5.9.0" in c.files["ds_cnn_s.h"]
    result = validate(c, specs["ds_cnn_s"])
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.90
