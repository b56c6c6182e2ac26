"""ResNet-8 (examples/mlperf-tiny) built against Arm's real CMSIS-NN v7.0.0, on the host and on emulated
Cortex-M4 (DSP paths) and Cortex-M55 (Helium paths): its elementwise adds and the convolutions that write
over their dying input must give the simulator's bytes exactly.

The library is found by tests.third_party ($KWSCC_CMSIS_NN, or ../shared/third_party beside the checkout,
as CI has it); without it the test skips and says so."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.validate.target import run_on_target
from tests.third_party import library

ROOT = Path(__file__).resolve().parents[2]
IC = ROOT / "examples" / "mlperf-tiny"
SAMPLES = 4  # QEMU runs a Cortex-M55 inference of ResNet-8 in seconds: keep the run short


@pytest.mark.parametrize("target", ["host", "cortex-m4", "cortex-m55"])
def test_resnet8_on_real_cmsis_nn(target, request):
    cmsis_nn = library("cmsis_nn")
    if target != "host":
        request.getfixturevalue("arm_toolchain")  # the Arm toolchain and QEMU (the host needs only gcc)
    cpu = "cortex-m55" if target == "cortex-m55" else "cortex-m4"
    compiled = compile_model(IC / "pretrainedResnet_quant.tflite", CompileOptions(cpu=cpu))
    assert compiled.plan.overlapped  # the arena relies on convolutions writing over their dying input
    x = np.load(IC / "ic_32_small.npz")["test_x"][:SAMPLES].astype(np.float32)
    out, _ = run_on_target(compiled, x.reshape(SAMPLES, -1), target, str(cmsis_nn))
    graph = compiled.graph
    want = simulate_float_inputs(compiled.qm, {graph.inputs[0]: x}, compiled.backend.simulate)[graph.outputs[0]]
    assert np.count_nonzero(out != want.reshape(SAMPLES, -1)) == 0
