"""examples/firmware: the bare-metal keyword spotter, configured and built with CMake and arm-none-eabi-gcc
(kwscc_add_model on the shipped int8 DS-CNN), run under QEMU (mps2-an386, Cortex-M4), with kwscc's own
kernels and with the real CMSIS-NN v7.0.0 when it is there: it must hear what kwscc's simulator hears."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from tests.e2e import kws_shared as kws
from tests.installed import kwscc_script
from tests.third_party import library

FIRMWARE = kws.ROOT / "examples" / "firmware"
CLIPS = [332, 499, 998, 1668]  # examples/firmware/samples.h
LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def run(cmd, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def simulated_words() -> list[str]:
    compiled = compile_model(kws.KWS / "ds_cnn_s_int8.tflite", CompileOptions(cpu="cortex-m4"))
    graph = compiled.graph
    x = kws.kws_arrays()["test_x490"][CLIPS]
    feeds = {graph.inputs[0]: x.reshape((len(CLIPS),) + graph.tensors[graph.inputs[0]].shape[1:])}
    out = simulate_float_inputs(compiled.qm, feeds, compiled.backend.simulate)[graph.outputs[0]]
    # first maximum, as the firmware's loop picks it
    return [LABELS[int(np.argmax(row))] for row in out.reshape(len(CLIPS), -1)]


@pytest.mark.parametrize("kernels", ["kwscc", "cmsis-nn"])
def test_example_firmware_under_qemu(kernels, arm_toolchain, tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    extra = [f"-DCMSIS_NN_PATH={library('cmsis_nn')}"] if kernels == "cmsis-nn" else []
    cmake_dir = run([kwscc_script(), "--cmake-dir"]).stdout.strip()
    build = tmp_path / "build"
    run(["cmake", "-S", FIRMWARE, "-B", build, f"-DCMAKE_TOOLCHAIN_FILE={FIRMWARE / 'arm-none-eabi.cmake'}",
         f"-Dkwscc_DIR={cmake_dir}", f"-DKWSCC_EXECUTABLE={kwscc_script()}", *extra])
    run(["cmake", "--build", build])
    assert re.search(r"^\.kws_arena\s+0x20000000\s", (build / "kws_firmware.map").read_text(), re.M), \
        "the arena is not in the section DS_CNN_S_ARENA_SECTION names"
    result = run(["cmake", "--build", build, "--target", "run"], timeout=120)  # exits 0: every clip heard right
    heard = re.findall(r"clip \d: heard \"(\w+)\", said \"(\w+)\"", result.stdout + result.stderr)  # semihosting: stderr
    assert [h for h, _ in heard] == simulated_words() == [s for _, s in heard]
