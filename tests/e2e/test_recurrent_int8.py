"""A full-int8 TFLite file of an unrolled recurrent network (ML-KWS GRU_S: UNPACK, 25 steps with their own
int32 biases, requantizing QUANTIZE ops) end to end: its steps are raised into one GRU, it compiles
without data from the file's own scales, the C is bit-exact with the simulator, and it agrees with the
float model (the same GRU_S as an ONNX GRU op) better than TensorFlow's int8 file does."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.validate.validate import validate
from tests.e2e import kws_shared as kws

RECURRENT = kws.KWS / "recurrent"
CLIPS = 200
# the floor on every model; TF's own int8 file agrees 0.81 with the float model on the 2000 test
# clips, 0.565 on these 200 (int8_anchor_recurrent.json, the README's test_out arrays)
MIN_AGREEMENT = 0.93

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the generated C")


def test_gru_s_int8_raises_compiles_without_data_and_agrees_with_the_float_model(tmp_path):
    with np.load(kws.NPZ) as data:
        np.save(tmp_path / "x250.npy", data["test_x250"][:CLIPS])
    compiled = compile_model(RECURRENT / "gru_s_int8.tflite", CompileOptions())
    assert [node.op for node in compiled.graph.nodes()].count("GRU") == 1
    result = validate(compiled, str(tmp_path / "x250.npy"), reference=str(RECURRENT / "gru_s_rnnop.onnx"))
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["reference_top1_agreement"] >= MIN_AGREEMENT
    assert result["reference_top1_agreement"] > result["model_vs_reference_top1_agreement"]
