"""kwscc's own kernels for the ops beyond the keyword spotters (lookup tables, pad, transpose, and the
transposing quantize_input) built with arm-none-eabi-gcc -Werror and run on emulated Cortex-M cores:
the outputs equal the simulator's bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from kwscc.driver import CompileOptions, compile_model
from kwscc.validate.validate import validate
from tests.models_util import make_model, save


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_table_pad_transpose_kernels_on_target(target, arm_toolchain, tmp_path):
    rng = np.random.default_rng(0)
    params = {"w1": rng.normal(0, 0.4, (4, 3, 3, 3)), "b1": rng.normal(0, 0.1, 4),
              "w2": rng.normal(0, 0.4, (3, 4, 3, 3)), "b2": rng.normal(0, 0.1, 3), "slope": rng.uniform(0.1, 0.3, (4, 1, 1)),
              "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "value": np.array(0.5, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c1", "slope"], ["a1"]),
             helper.make_node("Pad", ["a1", "pads", "value"], ["p1"]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"]),
             helper.make_node("Sigmoid", ["c2"], ["y"])]  # an NCHW output: a transpose that moves data
    path = save(make_model(nodes, {"x": [1, 3, 6, 5]}, ["y"], params), tmp_path)
    data = tmp_path / "x.npy"
    np.save(data, rng.normal(0, 1, (8, 3, 6, 5)).astype(np.float32))
    compiled = compile_model(path, CompileOptions(calib=str(data), cpu=target))
    functions = [call.function for call in compiled.calls]
    assert {"kwscc_table_s8", "kwscc_pad_s8", "kwscc_transpose_s8"} <= set(functions)
    result = validate(compiled, str(data), target=target)
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["instructions_per_inference"] > 0
