"""Recurrent models in a user's CMake build against Arm's real CMSIS-NN v7.0.0 (tests/build_integration/
recurrent_project): kwscc_add_model with NAME, CPU and OPTIONS (--streaming, --optimize speed), the LSTM on Arm's
LSTM kernels and the GRU on kwscc's kwscc_gru_s8 (in gru.c), both in one caller arena. On the host the program
runs and equals the simulator on every streaming call; for the Cortex-M55 (MVE path) it links, and the linker
pulls every file of the two models' CMSIS-NN lists out of kwscc_cmsis_nn and nothing else is in it."""
from __future__ import annotations

import re

import numpy as np

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.streaming import as_calls, calls_per_clip, simulate_stream
from tests.e2e import kws_shared as kws
from tests.installed import kwscc_script
from tests.installed import run_ok as run
from tests.system_packages import require_commands
from tests.target.linking import archive_members
from tests.third_party import library

RECURRENT = kws.KWS / "recurrent"
PROJECT = kws.ROOT / "tests" / "build_integration" / "recurrent_project"
CLIPS = 3
CROSS_M55 = ["-DCMAKE_SYSTEM_NAME=Generic", "-DCMAKE_C_COMPILER=arm-none-eabi-gcc",
             "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY",
             "-DCMAKE_C_FLAGS=-mcpu=cortex-m55 -mthumb -mfloat-abi=hard"]


def configure_and_build(tmp_path, cpu: str, extra: list[str]):
    require_commands("cmake", "make")
    lib = library("cmsis_nn")
    cmake_dir = run([kwscc_script(), "--cmake-dir"]).stdout.strip()
    build = tmp_path / "build"
    run(["cmake", "-S", PROJECT, "-B", build, f"-Dkwscc_DIR={cmake_dir}", f"-DREC_DIR={RECURRENT}",
         f"-DKWSCC_EXECUTABLE={kwscc_script()}", f"-DCMSIS_NN_PATH={lib}", f"-DKWS_CPU={cpu}", *extra])
    run(["cmake", "--build", build])
    return build


def test_recurrent_models_on_the_host_with_real_cmsis_nn(tmp_path):
    build = configure_and_build(tmp_path, "generic", [])
    lstm = compile_model(RECURRENT / "keras_lstm_int8.tflite", CompileOptions(cpu="generic", streaming=7))
    gru = compile_model(RECURRENT / "gru_s_int8.tflite", CompileOptions(cpu="generic", optimize="speed"))
    arrays = kws.kws_arrays()
    x_lstm, x_gru = arrays["test50_x490"][:CLIPS], arrays["test50_x250"][:CLIPS]
    np.ascontiguousarray(as_calls(lstm.qm, x_lstm), np.float32).tofile(tmp_path / "lstm.f32")
    np.ascontiguousarray(x_gru.reshape(CLIPS, -1), np.float32).tofile(tmp_path / "gru.f32")
    run([build / "recurrent", tmp_path / "lstm.f32", tmp_path / "gru.f32", tmp_path / "lstm.i8", tmp_path / "gru.i8"])
    out_lstm = np.fromfile(tmp_path / "lstm.i8", np.int8).reshape(CLIPS * calls_per_clip(lstm.qm), -1)
    np.testing.assert_array_equal(out_lstm, simulate_stream(lstm.qm, x_lstm))
    name = gru.graph.inputs[0]
    expected = simulate_float_inputs(gru.qm, {name: x_gru.reshape((CLIPS,) + gru.graph.tensors[name].shape[1:])})
    np.testing.assert_array_equal(np.fromfile(tmp_path / "gru.i8", np.int8).reshape(CLIPS, -1),
                                  expected[gru.graph.outputs[0]].reshape(CLIPS, -1))
    generated = build / "kwscc"
    assert "arm_nn_lstm_step_s8" in (generated / "lstm" / "kws_lstm.c").read_text()
    assert "kwscc_gru_s8(" in (generated / "gru" / "gru.c").read_text()
    header = (generated / "lstm" / "kws_lstm.h").read_text()
    state = int(re.search(r"#define KWS_LSTM_STATE_SIZE (\d+)", header).group(1))
    sections = run(["objdump", "-h", build / "recurrent"]).stdout
    assert re.search(rf"^\s*\d+\s+\.kws_state\s+0*{state:x}\s", sections, re.M), "the LSTM state is not in .kws_state"


def test_recurrent_models_link_for_cortex_m55(arm_toolchain, tmp_path):
    linker = f"-DCMAKE_EXE_LINKER_FLAGS=--specs=nano.specs --specs=nosys.specs -Wl,-Map={tmp_path / 'recurrent.map'}"
    build = configure_and_build(tmp_path, "cortex-m55", [*CROSS_M55, linker])
    listed = set()
    for target, name in (("lstm", "kws_lstm"), ("gru", "gru")):
        listed |= set((build / "kwscc" / target / f"{name}_cmsis_nn_sources.txt").read_text().split())
    assert "Source/LSTMFunctions/arm_lstm_unidirectional_s8.c" not in listed  # streaming: one step at a time
    assert "Source/NNSupportFunctions/arm_nn_lstm_step_s8.c" in listed
    # kwscc_cmsis_nn is exactly the two lists, and the linker needed every file of it
    pulled = archive_members((tmp_path / "recurrent.map").read_text(), "libkwscc_cmsis_nn.a")
    assert pulled == {f"{f.rsplit('/', 1)[-1]}.obj" for f in listed}
