"""Names are untrusted: NAME.h never shadows a header, and a model's names reach the terminal, the SVG and
the Markdown report printable (no control characters, valid XML)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kwscc.cli import main
from kwscc.naming import file_stem

ROOT = Path(__file__).resolve().parents[2]
TFLITE = ROOT / "examples" / "kws" / "dnn_s_int8.tflite"
EVIL = "fc\x1b[31m|red`\x07"


@pytest.mark.parametrize("name,stem", [("stdint", "stdint_model"), ("arm_nnfunctions", "arm_nnfunctions_model"),
                                       ("arm_nn_types", "arm_nn_types_model"), ("string", "string_model"),
                                       ("kws", "kws"), ("my_stdint", "my_stdint")])
def test_file_stem_never_a_header(name, stem):
    assert file_stem(name) == stem


def test_name_stdint_is_suffixed(tmp_path, capsys):
    assert main([str(TFLITE), "--name", "stdint", "-o", str(tmp_path / "out")]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "stdint.h" not in files and "stdint_model.h" in files and "stdint_model.c" in files
    assert "shadow" in capsys.readouterr().err


def test_control_characters_in_names(tmp_path, capsys):
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name=EVIL),
             helper.make_node("Softmax", ["h"], ["y"], name="soft\x00max", axis=-1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(rng.standard_normal((10, 4)).astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "evil\x1b.onnx"))
    np.save(tmp_path / "x.npy", rng.standard_normal((20, 10)).astype(np.float32))
    out = tmp_path / "out"
    assert main([str(tmp_path / "evil\x1b.onnx"), "--calib", str(tmp_path / "x.npy"), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert "\x1b" not in printed.out + printed.err and "\\x1b" in printed.out
    svg = next(out.glob("*_report.svg")).read_text()
    ET.fromstring(svg)  # valid XML
    assert "\x1b" not in svg and "\x00" not in svg
    markdown = next(out.glob("*_report.md")).read_text()
    assert "\x1b" not in markdown and "\x07" not in markdown
    assert "| fc\\\\x1b[31m\\|red\\`\\\\x07 |" in markdown  # renders as fc\x1b[31m|red`\x07
