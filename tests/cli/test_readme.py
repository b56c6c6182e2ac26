"""The README's commands run as written: its example compiles a model, builds the shipped firmware-style
caller (examples/kws/main.c) against it and runs it; the commands it names for TFLite and for a report
without data work with the installed `kwscc`."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.installed import run_in_clone_like_folder

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_example_builds_and_runs(tmp_path):
    if shutil.which("cc") is None:
        pytest.fail("the README's example needs a C compiler (cc)")
    block = re.search(r"Example:\n\n```sh\n(.*?)```", README, re.S).group(1)
    assert "examples/kws/main.c" in block and (ROOT / "examples" / "kws" / "main.c").is_file()
    proc = run_in_clone_like_folder(block, tmp_path)
    assert proc.returncode == 0, proc.stderr
    heard = re.search(r'heard "(\w+)" \(p = [\d.]+\), expected "(\w+)"', proc.stdout)
    assert heard and heard.group(1) == heard.group(2) == "yes", proc.stdout
    assert (tmp_path / "out" / "kws" / "ds_cnn_s.h").is_file()


@pytest.mark.parametrize("command", [
    "kwscc examples/kws/ds_cnn_s_int8.tflite -o out",
    "kwscc report examples/kws/ds_cnn_s.onnx",
])
def test_readme_commands_run_as_written(command, tmp_path):
    assert f"`{command}`" in README
    proc = run_in_clone_like_folder(command, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "arena" in proc.stdout and "Traceback" not in proc.stderr
