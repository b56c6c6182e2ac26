"""The breadth matrix of synthetic recurrent models (tests/frontends/recurrent_breadth.py): every variant's
float IR against onnxruntime / LiteRT (or its one-line refusal), and a lean subset compiled to C and
validated (C == simulator, SQNR against the float model). benchmarks/recurrent_breadth.py runs the whole
matrix through the C."""
from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest

from tests.frontends.recurrent_breadth import _data, _runtime, build, check, matrix

VARIANTS = {v.name: v for v in matrix()}
KNOWN_WEAK = {"lstm-weights-x6", "gru-weights-x6"}  # parts of gate pre-activations beyond Q3.12: see the benchmark
# compiled to C here: one per fix and per kernel path, small and fast
COMPILED = ["lstm-use-Y_sq", "gru-use-Y", "gru-layout1", "lstm-layout1-last", "lstm-torch-hn_gather",
            "gru-torch-bf_gather_last", "tfl-time-major-last-head", "tfl-time-major", "lstm-clip8-bites",
            "gru-clip8-bites", "gru-lbr1-opset7", "lstm-peepholes-init", "tfl-peep-proj-clips", "lstm-Y-and-Y_h",
            "gru-stacked-seq-head"]


@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in KNOWN_WEAK])
def test_float_ir_matches_runtime_or_refuses_in_one_line(tmp_path, name):
    result = check(VARIANTS[name], tmp_path, compile_c=False)
    assert result["result"] == ("ok" if VARIANTS[name].expect == "ok" else "refused"), result["detail"]
    if result["result"] == "refused":
        assert "node '" in result["detail"] or "op #" in result["detail"] or "input 'x'" in result["detail"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the generated C")
@pytest.mark.parametrize("name", COMPILED)
def test_compiled_variant_matches_simulator_and_float(tmp_path, name):
    result = check(VARIANTS[name], tmp_path, calib=24, test=8)
    assert result["result"] == "ok", result["detail"]
    assert result["mismatches"] == 0 and result["sqnr_db"] >= VARIANTS[name].min_sqnr_db


@pytest.mark.parametrize("op", ["lstm", "gru"])
def test_clip_variant_clips(tmp_path, op):
    """The clip-8 variant's pre-activations do pass 8: onnxruntime's output moves without the clip, so the
    float check of that variant (clip applied by kwscc's reference) is not vacuous."""
    variant = VARIANTS[f"{op}-clip8-bites"]
    x = _data(variant, 4, 3)
    clipped = _runtime(build(variant, tmp_path), x)
    unclipped_variant = type(variant)(f"{op}-noclip", "onnx", {**variant.build, "attrs": {}}, variant.steps,
                                      variant.features)
    unclipped = _runtime(build(unclipped_variant, tmp_path), x)
    assert np.abs(clipped - unclipped).max() > 1e-4


def test_layout1_is_beyond_onnxruntime():
    """Why the layout-1 variants need onnx's reference implementation (kwscc.frontends.onnx_runtime falls back
    to it): if onnxruntime ever runs them, the fallback is no longer exercised by them."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = build(VARIANTS["gru-layout1"], Path(tmp))
        with pytest.raises(Exception, match="layout"):
            options = ort.SessionOptions()
            options.log_severity_level = 4
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("op", ["lstm", "gru"])
def test_y_and_y_h_of_one_layer_run_it_once(tmp_path, op):
    """Y feeds a second layer and Y_h is read too: Y_h is the last step of the one run (a Crop), so the stacked
    model has two recurrent nodes, not three."""
    result = check(VARIANTS[f"{op}-Y-and-Y_h"], tmp_path, compile_c=False)
    assert result["result"] == "ok" and result["layers"] == f"{op.upper()}+{op.upper()}"
