"""examples/firmware: the bare-metal keyword spotter, configured and built with CMake and arm-none-eabi-gcc
(kwscc_add_model on the shipped int8 DS-CNN), run under QEMU (mps2-an386, Cortex-M4), with kwscc's own
kernels and with the real CMSIS-NN v7.0.0 when it is there: it must hear what kwscc's simulator hears."""
from __future__ import annotations

import re

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from tests.e2e import kws_shared as kws
from tests.installed import run_in_clone_like_folder
from tests.system_packages import require_commands
from tests.target.linking import archive_members
from tests.third_party import library

FIRMWARE = kws.ROOT / "examples" / "firmware"
CLIPS = [332, 499, 998, 1668]  # examples/firmware/samples.h
LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def simulated_words() -> list[str]:
    compiled = compile_model(kws.KWS / "ds_cnn_s_int8.tflite", CompileOptions(cpu="cortex-m4"))
    graph = compiled.graph
    x = kws.kws_arrays()["test_x490"][CLIPS]
    feeds = {graph.inputs[0]: x.reshape((len(CLIPS),) + graph.tensors[graph.inputs[0]].shape[1:])}
    out = simulate_float_inputs(compiled.qm, feeds, compiled.backend.simulate)[graph.outputs[0]]
    # first maximum, as the firmware's loop picks it
    return [LABELS[int(np.argmax(row))] for row in out.reshape(len(CLIPS), -1)]


README_BLOCK = re.compile(r"\*\*A bare-metal firmware: `examples/firmware`\.\*\*.*?```sh\n(.*?)```", re.S)


@pytest.mark.parametrize("kernels", ["kwscc", "cmsis-nn"])
def test_example_firmware_under_qemu(kernels, arm_toolchain, tmp_path):
    """The README's two commands as written, from a folder laid out like the checkout (build/ inside it)."""
    require_commands("cmake", "make")
    commands = README_BLOCK.search((kws.ROOT / "README.md").read_text()).group(1)
    option = "[-DCMSIS_NN_PATH=/path/to/CMSIS-NN]"
    assert option in commands and "--target run" in commands
    commands = commands.replace(option, f"-DCMSIS_NN_PATH={library('cmsis_nn')}" if kernels == "cmsis-nn" else "")
    result = run_in_clone_like_folder(commands, tmp_path)  # the run exits 0: every clip heard right
    assert result.returncode == 0, f"{commands}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    build = tmp_path / "build" / "firmware"
    linker_map = (build / "kws_firmware.map").read_text()
    pulled = archive_members(linker_map, "libkwscc_cmsis_nn.a")
    if kernels == "cmsis-nn":  # kwscc_cmsis_nn holds the model's list, and the linker needed every file of it
        listed = (build / "kwscc" / "ds_cnn_s" / "ds_cnn_s_cmsis_nn_sources.txt").read_text().split()
        assert pulled == {f"{f.rsplit('/', 1)[-1]}.obj" for f in listed} and "arm_nn_softmax_common_s8.c.obj" in pulled
    else:
        host_kernels = (build / "kwscc" / "ds_cnn_s" / "cmsis_nn_host").glob("*.c")
        assert pulled and pulled <= {f"{p.name}.obj" for p in host_kernels}
    assert re.search(r"^\.kws_arena\s+0x20000000\s", linker_map, re.M), \
        "the arena is not in the section DS_CNN_S_ARENA_SECTION names"
    # semihosting writes to stderr
    heard = re.findall(r"clip \d: heard \"(\w+)\", said \"(\w+)\"", result.stdout + result.stderr)
    assert [h for h, _ in heard] == simulated_words() == [s for _, s in heard]
