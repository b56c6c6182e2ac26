"""The recurrent keyword spotters against Arm's real CMSIS-NN v7.0.0 (../shared/third_party, or $KWSCC_CMSIS_NN)
on emulated Cortex-M4 and Cortex-M55, bit for bit with kwscc's simulator: arm_lstm_unidirectional_s8 (and
arm_nn_lstm_step_s8 for --streaming) on the library's DSP and MVE paths, kwscc_gru_s8 on arm_nn_activation_s16.
The host runs against the same library are in tests/e2e/test_recurrent_kws.py; benchmarks/recurrent.py measures
every model on both cores. Two clips per run: the QEMU image builds are the slow part."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.validate.target import run_on_target
from kwscc.validate.validate import validate
from tests.e2e import kws_shared as kws
from tests.e2e.test_recurrent_kws import MODELS, RECURRENT, compiled
from tests.target.linking import check_list_is_what_the_linker_pulls
from tests.third_party import library

CLIPS = 2
# one model per code path: the LSTM with 64 units and with 118 (not a multiple of the SIMD width), the GRU in both
# linear_before_reset forms; keras_lstm.onnx/.tflite run the int8 file's kernels (all six: benchmarks/recurrent.py)
M4_MODELS = ("keras_lstm_int8", "basic_lstm_s", "keras_gru", "gru_s")
M55_MODELS = ("keras_lstm_int8", "gru_s")


def clips(model: str) -> np.ndarray:
    return kws.kws_arrays()[f"test50_{MODELS[model][1]}"][:CLIPS].reshape(CLIPS, -1)


@functools.lru_cache(maxsize=None)
def compiled_for(model: str, cpu: str):
    if cpu == "cortex-m4":
        return compiled(model)  # test_recurrent_kws's compile (the default core), shared within the session
    path, features, calibrate = MODELS[model]
    return compile_model(RECURRENT / path, CompileOptions(calib=f"{kws.NPZ}:calib_{features}" if calibrate else None,
                                                          cpu=cpu))


RUNS = [(m, "cortex-m4") for m in M4_MODELS] + [(m, "cortex-m55") for m in M55_MODELS]


@pytest.mark.parametrize("model, target", RUNS)
def test_recurrent_on_cortex_m_with_real_cmsis_nn(model, target, arm_toolchain, tmp_path):
    """Built from the model's CMSIS-NN file list alone (kwscc_gru_s8 and kwscc's other kernels are in NAME.c and
    call Arm's arm_nn_activation_s16), which is exactly what the linker pulls from it."""
    lib = library("cmsis_nn")
    c = compiled_for(model, target)
    x = clips(model)
    out, measured = run_on_target(c, x, target, str(lib), keep=tmp_path)
    check_list_is_what_the_linker_pulls(c, tmp_path)
    assert measured["cmsis_nn_version"] == "7.0.0"
    name = c.graph.inputs[0]
    expected = simulate_float_inputs(c.qm, {name: x.reshape((CLIPS,) + c.graph.tensors[name].shape[1:])})
    assert np.array_equal(out, expected[c.graph.outputs[0]].reshape(CLIPS, -1))


def test_streaming_lstm_on_cortex_m4_with_real_cmsis_nn(arm_toolchain, tmp_path):
    """The firmware harness resets the state between clips; arm_nn_lstm_step_s8 (DSP path) from the kept state
    equals the simulator on every call."""
    lib = library("cmsis_nn")
    c = compile_model(RECURRENT / MODELS["keras_lstm_int8"][0], CompileOptions(streaming=7))
    np.save(tmp_path / "clips.npy", clips("keras_lstm_int8"))
    result = validate(c, str(tmp_path / "clips.npy"), target="cortex-m4", cmsis_nn_dir=str(lib))
    assert result["c_vs_simulator_mismatches"] == 0 and result["calls_per_clip"] == 7
    assert "arm_nn_lstm_step_s8" in c.files["keras_lstm_int8.c"]
