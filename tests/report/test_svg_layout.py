"""The memory timeline SVG: every buffer visible however small, no label wider than its box, steps
labelled with the layer numbers of the C and the tables."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.report.report import build_report
from kwscc.report.svg import LEFT, MIN_BAR_H, RIGHT, render_svg

KWS = Path(__file__).resolve().parents[2] / "examples" / "kws"
NS = {"s": "http://www.w3.org/2000/svg"}
GLYPH_W = 6.0  # px: average advance of 10 px DejaVu Sans / Arial text (digits and lower case)


@pytest.fixture(scope="module")
def drawn():
    """DS-CNN int8 (no data needed): a 12-byte buffer in a 16,000-byte arena, a narrow scratch buffer,
    two reshape aliases among its steps."""
    report = build_report(compile_model(KWS / "ds_cnn_s_int8.tflite", CompileOptions()), measure_code=False)
    return report, ET.fromstring(render_svg(report))


def text_of(element) -> str:
    return "".join(t for t in element.itertext() if t not in {e.text for e in element.iter(f"{{{NS['s']}}}title")})


def test_every_buffer_is_visible(drawn):
    report, svg = drawn
    rects = [g.find("s:rect", NS) for g in svg.iterfind(".//s:g[@class='buffer']", NS)]
    assert len(rects) == len(report["buffers"])
    assert min(b["bytes"] for b in report["buffers"]) * 100 < report["arena_bytes"]  # the case to check is there
    for rect in rects:
        assert float(rect.get("height")) >= MIN_BAR_H - 0.05
        assert float(rect.get("width")) >= 10


def test_no_label_overflows_its_box(drawn):
    _, svg = drawn
    labelled = 0
    for g in svg.iterfind(".//s:g[@class='buffer']", NS):
        rect, text = g.find("s:rect", NS), g.find("s:text", NS)
        if text is None:
            continue
        labelled += 1
        left = float(text.get("x")) - float(rect.get("x"))
        assert left + GLYPH_W * len(text_of(text)) <= float(rect.get("width")), text_of(text)
    assert labelled >= 5
    for g in svg.iterfind(".//s:g[@class='caller-buffer']", NS):
        rect, text = g.find("s:rect", NS), g.find("s:text", NS)
        x0, width, tx = float(rect.get("x")), float(rect.get("width")), float(text.get("x"))
        inside = tx + GLYPH_W * len(text_of(text)) <= x0 + width
        assert inside or tx >= x0 + width, f"{text_of(text)} overlaps the edge of its box"


def test_legend_stays_in_the_picture(drawn):
    _, svg = drawn
    width = float(svg.get("width"))
    legend = [t for t in svg.iterfind("s:text", NS) if float(t.get("x", 0)) > width - RIGHT]
    assert legend
    for text in legend:
        assert float(text.get("x")) + GLYPH_W * 1.1 * len(text_of(text)) <= width, text_of(text)


def test_steps_are_labelled_with_layer_numbers(drawn):
    report, svg = drawn
    labels = [text_of(t) for t in svg.iterfind("s:text", NS) if (t.get("transform") or "").startswith("rotate(-50")]
    ops = report["plan"]["schedule_ops"]
    expected = []
    by_step = {layer["step"]: layer["index"] for layer in report["layers"]}
    for step, op in enumerate(ops):
        expected.append(f"{by_step[step]} {op}" if step in by_step else f"{op} (alias)")
    assert labels == expected
    assert any(label.endswith("(alias)") for label in labels)
    assert [label.split()[0] for label in labels if not label.endswith("(alias)")] == \
           [str(i) for i in range(len(report["layers"]))]
    assert float(svg.get("width")) > LEFT
