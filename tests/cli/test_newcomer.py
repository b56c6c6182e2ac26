"""What a newcomer meets first: `kwscc compile` as an alias, a --help that names both input formats,
a readable recorded command, a report without calibration data, label names in the confusion matrix."""
from __future__ import annotations

import json
import re
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


# ------------------------------------------------------------------------------------------------
# kwscc report without calibration data
# ------------------------------------------------------------------------------------------------

SIZES = ("arena_bytes", "arena_lower_bound_bytes", "scratch_bytes", "input_bytes", "output_bytes", "macs",
         "weights_only_bytes", "bias_bytes", "quant_params_bytes", "input_split_bits")


def test_report_of_a_float_model_needs_no_data(tmp_path, capsys):
    """`kwscc report examples/kws/ds_cnn_s.onnx`: RAM, flash and MACs as with calibration data, the formats
    marked as placeholders in the JSON and omitted from the table."""
    import jsonschema

    model = str(KWS / "ds_cnn_s.onnx")
    assert main(["report", model, "--json", str(tmp_path / "bare.json"), "--markdown", str(tmp_path / "bare.md")]) == 0
    table = capsys.readouterr().out
    assert main(["report", model, "--calib", f"{KWS / 'kws_synth.npz'}:test50_x490",
                 "--json", str(tmp_path / "calibrated.json")]) == 0
    capsys.readouterr()
    bare, calibrated = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("bare", "calibrated"))
    jsonschema.validate(bare, json.loads((ROOT / "docs" / "report-schema.json").read_text()))
    assert bare["formats_provisional"] and not calibrated["formats_provisional"]
    assert {k: bare[k] for k in SIZES} == {k: calibrated[k] for k in SIZES}
    assert [layer["scratch_bytes_by_build"] for layer in bare["layers"]] == \
           [layer["scratch_bytes_by_build"] for layer in calibrated["layers"]]
    assert bare["builds"] == calibrated["builds"]
    assert "formats omitted: no calibration data" in table
    assert not re.search(r"\bQ-?\d+\.\d+", table), "the table shows placeholder formats"
    assert "formats omitted" in (tmp_path / "bare.md").read_text()


def test_compile_of_a_float_model_still_needs_data(tmp_path, capsys):
    assert main([str(KWS / "ds_cnn_s.onnx"), "-o", str(tmp_path / "out")]) == 2
    assert "--calib" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------
# one layer numbering: report, C, validate
# ------------------------------------------------------------------------------------------------

def test_one_layer_numbering_in_report_c_and_validate():
    from kwscc.driver import CompileOptions, compile_model
    from kwscc.naming import c_comment
    from kwscc.report.report import build_report, format_table
    from kwscc.validate.validate import format_summary, validate

    data = f"{KWS / 'kws_synth.npz'}:test50_x490"
    compiled = compile_model(KWS / "ds_cnn_s.onnx", CompileOptions(calib=data))
    report = build_report(compiled, measure_code=False)
    names = [layer["name"] for layer in report["layers"]]
    assert [layer["index"] for layer in report["layers"]] == list(range(len(names)))

    code = compiled.files["ds_cnn_s.c"]
    in_c = re.findall(r"/\* layer (\d+): \w+ (.*?) -> \w+ \*/", code)
    assert [(int(i), n) for i, n in in_c] == [(i, c_comment(f"'{n}'")) for i, n in enumerate(names)]
    assert [int(i) for i in re.findall(r"KWSCC_LAYER_HOOK\((\d+)\);", code)] == list(range(len(names)))

    rows = format_table(report).splitlines()[2:2 + len(names)]
    assert [row.split()[0] for row in rows] == [str(i) for i in range(len(names))]
    # column 10 is the lifetime (after MACs and the estimated instructions)
    lifetimes = [tuple(map(int, row.split()[10].rstrip("*").split("-"))) for row in rows]
    assert all(i <= first <= last < len(names) for i, (first, last) in enumerate(lifetimes))
    assert lifetimes[0][0] == 0 and lifetimes[-1] == (len(names) - 1, len(names) - 1)

    result = validate(compiled, data, "test50_y")
    assert [(layer["index"], layer["name"]) for layer in result["layers"]] == list(enumerate(names))
    summary = format_summary(result).splitlines()
    assert summary[1].split()[:2] == ["0", names[0][:40]]


# ------------------------------------------------------------------------------------------------
# --label-names
# ------------------------------------------------------------------------------------------------

def validate_argv(*extra: str) -> list[str]:
    data = f"{KWS / 'kws_synth.npz'}:test50_x250"
    return ["validate", str(KWS / "dnn_s.onnx"), "--calib", data, "--data", data, *extra]


def test_label_names_head_the_confusion_matrix(tmp_path, capsys):
    names = (KWS / "labels.txt").read_text().split()
    assert main(validate_argv("--labels", "test50_y", "--label-names", str(KWS / "labels.txt"),
                              "--json", str(tmp_path / "v.json"))) == 0
    out = capsys.readouterr().out
    matrix = out[out.index("confusion (quantized program"):].splitlines()[1:]
    assert matrix[0].split() == names
    assert [row.split()[0] for row in matrix[1:1 + len(names)]] == names
    result = json.loads((tmp_path / "v.json").read_text())
    assert result["label_names"] == names
    counts = [[int(v) for v in row.split()[1:]] for row in matrix[1:1 + len(names)]]
    assert counts == result["confusion_quantized"]


@pytest.mark.parametrize("names, extra, needle", [
    ("yes\nno\n", ("--labels", "test50_y"), "2 names for 12 classes"),
    ("", ("--labels", "test50_y"), "no names"),
    ("a\n" * 12, (), "give --labels too"),
])
def test_bad_label_names_are_one_clean_error(names, extra, needle, tmp_path, capsys):
    path = tmp_path / "names.txt"
    path.write_text(names)
    assert main(validate_argv(*extra, "--label-names", str(path))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kwscc: error:") and needle in err[0]


def test_label_names_are_shown_safely():
    from kwscc.validate.validate import format_confusion

    lines = format_confusion([[3, 1], [0, 4]], ["yes", "no\x1b[31m"])
    assert "\x1b" not in "".join(lines) and "no\\x1b[31m" in lines[0]
    assert [line.split() for line in lines] == [["yes", "no\\x1b[31m"], ["yes", "3", "1"], ["no\\x1b[31m", "0", "4"]]
