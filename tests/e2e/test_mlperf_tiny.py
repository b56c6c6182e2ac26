"""MLPerf Tiny's ResNet-8 image classifier (examples/mlperf-tiny): a residual graph with three ADDs.

The int8 file compiles without data and the float file with its calibration slice; the C equals the
simulator bit for bit, the arena for --cpu cortex-m4 stays under 49,100 B (TensorFlow Lite Micro: 55,984 B),
and the top-1 classes agree with LiteRT running the same file."""
from __future__ import annotations

from pathlib import Path

import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.validate.validate import validate

IC = Path(__file__).resolve().parents[2] / "examples" / "mlperf-tiny"
DATA = IC / "ic_32_small.npz"
MAX_ARENA = 49_100
# LiteRT's int8 file agrees with its float file on 89.5 % of the 200 test crops (examples/mlperf-tiny/README.md)
INT8_VS_FLOAT = 0.895
# The int8 file with no data (kwscc/quant/from_int8.py: the file's int8 weights, power-of-two activation steps
# with zero points): 92.2 % of these 64 crops and 15.2 dB output SQNR against LiteRT, 90.0 % of all 200
# (INT8_VS_FLOAT reached). Requantized power-of-two weights and symmetric formats gave 90.6 % and 12.7 dB here,
# 84.5 % of the 200.
INT8_NO_DATA_FLOOR = 0.92
INT8_NO_DATA_MIN_SQNR_DB = 14.5


@pytest.fixture(scope="module")
def int8_compiled():
    return compile_model(IC / "pretrainedResnet_quant.tflite", CompileOptions(cpu="cortex-m4"))


def test_int8_without_data(int8_compiled):
    assert [n.op for n in int8_compiled.graph.nodes()].count("Add") == 3
    assert int8_compiled.plan.arena_size <= MAX_ARENA, int8_compiled.plan.arena_size
    result = validate(int8_compiled, f"{DATA}:test_x")
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= INT8_NO_DATA_FLOOR, result["top1_agreement"]
    assert result["output_sqnr_db"] >= INT8_NO_DATA_MIN_SQNR_DB, result["output_sqnr_db"]
    layers = [int8_compiled.qm.layers[node.name] for node in int8_compiled.graph.nodes() if node.op in ("Conv", "Dense")]
    assert all(layer.multiplier is not None for layer in layers)  # every layer keeps the file's int8 weights


def test_float_with_calibration():
    compiled = compile_model(IC / "pretrainedResnet.tflite", CompileOptions(calib=f"{DATA}:calib_x"))
    assert compiled.plan.arena_size <= MAX_ARENA, compiled.plan.arena_size
    result = validate(compiled, f"{DATA}:test_x")
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= INT8_VS_FLOAT, result["top1_agreement"]
