"""ResNet-8 (examples/mlperf-tiny) built against Arm's real CMSIS-NN v7.0.0, on the host and on emulated
Cortex-M4 (DSP paths) and Cortex-M55 (Helium paths): its elementwise adds and the convolutions that write
over their dying input must give the simulator's bytes exactly.

The library is found at $KWSCC_CMSIS_NN or beside the checkout at ../shared/third_party/CMSIS-NN-v7.0.0
(as CI clones it); without it the test skips and says so."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.validate.target import run_on_target

ROOT = Path(__file__).resolve().parents[2]
IC = ROOT / "examples" / "mlperf-tiny"
CMSIS_NN = Path(os.environ.get("KWSCC_CMSIS_NN") or ROOT.parent / "shared" / "third_party" / "CMSIS-NN-v7.0.0")
SAMPLES = 4  # QEMU runs a Cortex-M55 inference of ResNet-8 in seconds: keep the run short


@pytest.mark.parametrize("target", ["host", "cortex-m4", "cortex-m55"])
def test_resnet8_on_real_cmsis_nn(target, arm_toolchain):
    if not (CMSIS_NN / "Include" / "arm_nnfunctions.h").is_file():
        pytest.skip(f"no CMSIS-NN checkout at {CMSIS_NN} (set KWSCC_CMSIS_NN to one)")
    cpu = "cortex-m55" if target == "cortex-m55" else "cortex-m4"
    compiled = compile_model(IC / "pretrainedResnet_quant.tflite", CompileOptions(cpu=cpu))
    assert compiled.plan.overlapped  # the arena relies on convolutions writing over their dying input
    x = np.load(IC / "ic_32_small.npz")["test_x"][:SAMPLES].astype(np.float32)
    out, _ = run_on_target(compiled, x.reshape(SAMPLES, -1), target, str(CMSIS_NN))
    graph = compiled.graph
    want = simulate_float_inputs(compiled.qm, {graph.inputs[0]: x}, compiled.backend.simulate)[graph.outputs[0]]
    assert np.count_nonzero(out != want.reshape(SAMPLES, -1)) == 0
