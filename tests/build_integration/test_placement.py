"""Placement macros of the generated C (arena and weights sections and alignment, no static arena) and the
refusals around library checkouts."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from kwscc.cli import main
from kwscc.driver import CompileOptions, compile_model, output_files, write_outputs
from tests.e2e import kws_shared as kws

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c"]


def sections(obj) -> dict[str, tuple[int, int]]:
    """{section: (size, alignment)} from objdump -h."""
    out = subprocess.run(["objdump", "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    return {m.group(1): (int(m.group(2), 16), 2 ** int(m.group(3)))
            for m in re.finditer(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+2\*\*(\d+)", out, re.M)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    if shutil.which("cc") is None or shutil.which("objdump") is None:
        pytest.skip("needs cc and objdump")
    compiled = kws.compiled("dnn_s")
    out = tmp_path_factory.mktemp("placement")
    write_outputs(output_files(compiled, True, {}), out)
    return compiled, out


def build(generated, tmp_path, *defines):
    compiled, out = generated
    obj = tmp_path / "model.o"
    subprocess.run(["cc", *STRICT, *defines, f"-I{out}", f"-I{out / 'cmsis_nn_host'}", str(out / f"{compiled.name}.c"),
                    "-o", str(obj)], check=True, capture_output=True, text=True)
    nm = subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True).stdout
    return sections(obj), nm


def test_default_arena_is_16_byte_aligned_bss(generated, tmp_path):
    compiled, _ = generated
    found, nm = build(generated, tmp_path)
    size, align = found[".bss"]
    assert size >= compiled.plan.arena_size and align >= 16
    assert re.search(r" [bB] dnn_s_arena$", nm, re.M) and re.search(r" T dnn_s_run_with_arena$", nm, re.M)


def test_sections_and_alignment_from_macros(generated, tmp_path):
    compiled, _ = generated
    found, _ = build(generated, tmp_path, '-DDNN_S_ARENA_SECTION=".fast_ram"', "-DDNN_S_ARENA_ALIGN=32",
                     '-DDNN_S_WEIGHTS_SECTION=".ext_flash"', "-DDNN_S_WEIGHTS_ALIGN=8")
    assert found[".fast_ram"][0] >= compiled.plan.arena_size and found[".fast_ram"][1] == 32
    weights = sum(a.values.nbytes for call in compiled.calls for a in call.arrays)
    assert found[".ext_flash"][0] >= weights and found[".ext_flash"][1] == 8
    assert found.get(".rodata", (0, 0))[0] < weights // 10  # the weights moved


def test_no_static_arena(generated, tmp_path):
    found, nm = build(generated, tmp_path, "-DDNN_S_NO_STATIC_ARENA")
    assert "dnn_s_arena" not in nm and " T dnn_s_run\n" not in nm and " T dnn_s_run_with_arena" in nm
    assert found.get(".bss", (0, 0))[0] == 0


def test_streaming_state_section_from_macro(tmp_path):
    """--streaming: the recurrent state kept between calls has its own section macro, like the arena."""
    compiled = compile_model(kws.KWS / "recurrent" / "keras_lstm_int8.tflite", CompileOptions(streaming=7))
    out = tmp_path / "out"
    write_outputs(output_files(compiled, True, {}), out)
    assert "KERAS_LSTM_INT8_STATE_SECTION" in (out / "keras_lstm_int8.h").read_text()
    found, _ = build((compiled, out), tmp_path, '-DKERAS_LSTM_INT8_STATE_SECTION=".retained"')
    header = (out / "keras_lstm_int8.h").read_text()
    state = int(re.search(r"#define KERAS_LSTM_INT8_STATE_SIZE (\d+)", header).group(1))
    assert state > 0 and found[".retained"][0] == state


def test_checkout_options_are_checked(tmp_path, capsys):
    model = str(kws.model_path("dnn_s"))
    data = kws.split_spec("dnn_s", "test50")
    assert main(["validate", model, "--data", data, "--cmsis-5", str(tmp_path)]) == 2
    assert "--cmsis-5 DIR is CMSIS_5's legacy q7 API" in capsys.readouterr().err
    assert main(["validate", model, "--data", data, "--backend", "cmsis-nn-legacy", "--cmsis-5", str(tmp_path)]) != 0
    assert "not a CMSIS_5 checkout" in capsys.readouterr().err


def test_sanitize_is_refused_on_a_target(capsys):
    assert main(["validate", str(kws.model_path("dnn_s")), "--data", kws.split_spec("dnn_s", "test50"),
                 "--sanitize", "--target", "cortex-m4"]) == 2
    assert "--target host only" in capsys.readouterr().err
    from kwscc.errors import ToolError
    from kwscc.validate.target import run_on_target

    with pytest.raises(ToolError, match="--sanitize .* host only"):
        run_on_target(kws.compiled("dnn_s"), kws.kws_arrays()["test50_x250"][:1], "cortex-m4", sanitize=True)
