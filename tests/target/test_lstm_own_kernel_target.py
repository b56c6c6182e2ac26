"""kwscc_lstm_s8 (peepholes, projection, clips) on emulated Cortex-M4 and Cortex-M55, built against Arm's real
CMSIS-NN v7.0.0 (its arm_nn_activation_s16) and compiled with the core's flags: bit for bit with the simulator.
The host runs are in tests/e2e/test_lstm_own_kernel.py."""
from __future__ import annotations

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.validate.validate import validate
from tests.e2e.test_lstm_own_kernel import MODELS
from tests.target.linking import check_list_is_what_the_linker_pulls
from tests.third_party import library

CLIPS = 3


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_kwscc_lstm_on_cortex_m_with_real_cmsis_nn(target, arm_toolchain, tmp_path, monkeypatch):
    """Also: the model's CMSIS-NN list (arm_nn_activation_s16's files: kwscc_lstm_s8 is in NAME.c) is exactly
    what the linker pulls."""
    lib = library("cmsis_nn")
    monkeypatch.setenv("KWSCC_TARGET_BUILD_DIR", str(tmp_path / "image"))
    build, args, steps, features, _ = MODELS["tflite-peep-proj-clips"]
    rng = np.random.default_rng(2)
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (32, steps, features)).astype(np.float32))
    np.save(tmp_path / "clips.npy", rng.normal(0, 1, (CLIPS, steps, features)).astype(np.float32))
    compiled = compile_model(build(tmp_path, **args), CompileOptions(calib=str(tmp_path / "calib.npy"), cpu=target))
    assert compiled.calls[0].function == "kwscc_lstm_s8"
    result = validate(compiled, str(tmp_path / "clips.npy"), target=target, cmsis_nn_dir=str(lib))
    assert "CMSIS-NN" in result["kernels"] and result["c_vs_simulator_mismatches"] == 0
    check_list_is_what_the_linker_pulls(compiled, tmp_path / "image")
