"""The command line of issue 4: --calib-method, --ranges FILE, --weights seed, validate --split with
confusion matrices, and the sweep subcommand."""
from __future__ import annotations

import csv
import json

import pytest

from kwscc.cli import main


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("method", ["max", "percentile", "kl", "mse"])
def test_calib_methods_compile(small_models, tmp_path, capsys, method):
    path, npz = small_models["convnet"]
    rc, out, err = _run([path, "--calib", f"{npz}:calib", "--calib-method", method, "-o", tmp_path / "o"], capsys)
    assert rc == 0, err
    assert (tmp_path / "o" / "convnet.c").is_file()


def test_ranges_file_written_then_reused(small_models, tmp_path, capsys, caplog):
    path, npz = small_models["mlp"]
    ranges = tmp_path / "r.json"
    rc, _, err = _run([path, "--calib", f"{npz}:calib", "--ranges", ranges, "-o", tmp_path / "a"], capsys)
    assert rc == 0, err
    doc = json.loads(ranges.read_text())
    assert doc["format"] == "kwscc-ranges-1" and doc["samples"] == 300 and "x" in doc["tensors"]
    before = ranges.read_text()
    rc, _, err = _run([path, "--calib", f"{npz}:calib", "--ranges", ranges, "-o", tmp_path / "b"], capsys)
    assert rc == 0, err
    assert ranges.read_text() == before  # reused, not rewritten
    assert (tmp_path / "a" / "mlp.c").read_text() == (tmp_path / "b" / "mlp.c").read_text()
    # without --calib: formats from the file, the data-driven steps skipped with a warning
    rc, _, err = _run([path, "--ranges", ranges, "-o", tmp_path / "c"], capsys)
    assert rc == 0 and "skipped" in caplog.text + err


def test_missing_ranges_file_without_calib_is_an_error(small_models, tmp_path, capsys):
    path, _ = small_models["mlp"]
    rc, _, err = _run([path, "--ranges", tmp_path / "none.json", "-o", tmp_path / "o"], capsys)
    assert rc != 0 and "does not exist" in err


def test_validate_split_and_confusion(small_models, have_cc, tmp_path, capsys):
    path, npz = small_models["convnet"]
    rc, out, err = _run(["validate", path, "--calib", f"{npz}:calib", "--data", f"{npz}:test", "--labels",
                         "test_y", "--split", "test_split", "--weights", "seed", "--json", tmp_path / "v.json"],
                        capsys)
    assert rc == 0, err
    assert "split a" in out and "split b" in out and "confusion" in out
    result = json.loads((tmp_path / "v.json").read_text())
    assert result["c_vs_simulator_mismatches"] == 0
    assert [s["split"] for s in result["splits"]] == ["a", "b"]
    for part in result["splits"]:
        assert part["samples"] == 100
        q = part["confusion_quantized"]
        assert sum(map(sum, q)) == 100
        assert sum(q[i][i] for i in range(len(q))) / 100 == pytest.approx(part["quantized_accuracy"])
        f = part["confusion_float"]
        assert sum(f[i][i] for i in range(len(f))) / 100 == pytest.approx(part["float_accuracy"])


def test_validate_split_needs_labels(small_models, tmp_path, capsys):
    path, npz = small_models["mlp"]
    rc, _, err = _run(["validate", path, "--data", f"{npz}:test", "--split", "test_split"], capsys)
    assert rc != 0 and "--split needs --labels" in err


def test_sweep_table_csv_and_plot(small_models, tmp_path, capsys):
    path, npz = small_models["mlp"]
    rc, out, err = _run(["sweep", path, "--data", f"{npz}:test", "--labels", "test_y", "--bits", "16,8,2,1",
                         "--noise", "0,0.1", "--draws", "2", "--out", tmp_path / "s"], capsys)
    assert rc == 0, err
    rows = list(csv.DictReader(open(tmp_path / "s" / "sweep.csv")))
    assert [(r["study"], r["value"]) for r in rows] == [("float", ""), ("bits", "16"), ("bits", "8"), ("bits", "2"),
                                                        ("bits", "1"), ("noise", "0.0"), ("noise", "0.1")]
    acc = {(r["study"], r["value"]): float(r["accuracy"]) for r in rows}
    assert acc[("float", "")] == 1.0  # the labels are the float model's own predictions
    assert acc[("bits", "16")] == 1.0 and acc[("noise", "0.0")] == 1.0
    assert acc[("bits", "8")] >= 0.95
    svg = (tmp_path / "s" / "sweep.svg").read_text()
    assert svg.startswith("<svg") and "weight bits" in svg and "polyline" in svg
    assert "bits" in out and "noise" in out


@pytest.mark.parametrize("args, message", [(["--bits", "8,x"], "--bits"), (["--bits", "0"], "between 1 and 32"),
                                           (["--noise", "-1"], ">= 0"), (["--draws", "0"], "at least 1")])
def test_sweep_bad_arguments(small_models, capsys, args, message):
    path, npz = small_models["mlp"]
    rc, _, err = _run(["sweep", path, "--data", f"{npz}:test", "--labels", "test_y", *args], capsys)
    assert rc != 0 and message in err


def _defines(header: str) -> dict[str, str]:
    import re

    return dict(re.findall(r"^#define \w+?_(INPUT_SIZE|QUANTIZED_INPUT_SIZE|INPUT_ZERO_POINT|INPUT_SPLIT_BITS) (\S+)",
                           header, re.M))


def test_input_options_change_the_header(small_models, tmp_path, capsys):
    """convnet's first layer is a conv: split by default (2 int8 per value), --split-input off gives one
    int8 with a zero point, adding --no-input-zero-point the symmetric Qm.n input."""
    path, npz = small_models["convnet"]
    seen = {}
    for flags in ((), ("--split-input", "off"), ("--split-input", "off", "--no-input-zero-point")):
        out = tmp_path / str(len(seen))
        rc, _, err = _run([path, "--calib", f"{npz}:calib", "-o", out, *flags], capsys)
        assert rc == 0, err
        seen[flags] = _defines((out / "convnet.h").read_text())
    split, offset, plain = seen.values()
    assert split["INPUT_SIZE"] == "80" and split["QUANTIZED_INPUT_SIZE"] == "160"
    assert split["INPUT_SPLIT_BITS"] == "4" and split["INPUT_ZERO_POINT"] == "(0)"
    assert offset["QUANTIZED_INPUT_SIZE"] == "80" and offset["INPUT_SPLIT_BITS"] == "0"
    assert plain["QUANTIZED_INPUT_SIZE"] == "80" and plain["INPUT_ZERO_POINT"] == "(0)"
