"""What a newcomer meets first: `kwscc compile` as an alias, a --help that names both input formats,
a readable recorded command, a report without calibration data, label names in the confusion matrix."""
from __future__ import annotations

from pathlib import Path

import pytest

from kwscc.cli import main
from kwscc.command import recorded_command

ROOT = Path(__file__).resolve().parents[2]
KWS = ROOT / "examples" / "kws"


def test_help_names_onnx_and_tflite(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "ONNX or TFLite" in text and "kwscc compile" in text


def test_compile_subcommand_is_the_default_command(tmp_path, capsys):
    argv = [str(KWS / "ds_cnn_s_int8.tflite")]  # a full int8 model: no data needed
    assert main(["compile", *argv, "-o", str(tmp_path / "a")]) == 0
    assert main([*argv, "-o", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    for rel in ("ds_cnn_s_int8.c", "ds_cnn_s_int8.h"):  # the report records the C's hash
        a, b = ((tmp_path / d / rel).read_text() for d in ("a", "b"))
        assert a.replace("kwscc compile ", "kwscc ") == b, rel


@pytest.mark.parametrize("argv, recorded", [
    (["/abs/models/m.onnx", "-o", "/abs/out/x", "--calib", "../data/k.npz:calib_x490"],
     "kwscc m.onnx -o . --calib k.npz:calib_x490"),
    (["compile", "m.onnx", "--output=deep/out", "--ranges=/r/ranges.json", "--name", "kws"],
     "kwscc compile m.onnx --output=. --ranges=ranges.json --name kws"),
    (["m.onnx", "-oout", "--input-shape", "x=1,490", "--calib", "data dir/k.npy"],
     "kwscc m.onnx -o. --input-shape x=1,490 --calib k.npy"),
    (["validate", "dir/m.onnx", "--data", "d/k.npz:test_x", "--json", "/tmp/v.json"],
     "kwscc validate m.onnx --data k.npz:test_x --json v.json"),
])
def test_recorded_command_has_base_names_and_no_output_folder(argv, recorded):
    assert recorded_command(argv) == recorded


def test_recorded_command_quotes_for_the_shell():
    assert recorded_command(["my model.onnx", "-o", "o"]) == "kwscc 'my model.onnx' -o ."
