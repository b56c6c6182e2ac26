"""The report tells the truth: its arena is the arena symbol's size, its arrays are the const arrays
of the generated C, its flash is what arm-none-eabi-size says, its JSON follows the documented
schema, and every form (table, JSON, Markdown, SVG) is written beside every compile."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kwscc.cli import main
from kwscc.report import flash
from kwscc.report.report import SCHEMA_VERSION, build_report, format_markdown, format_table, report_files, to_json
from kwscc.report.svg import render_svg
from tests.report.report_util import KWS, ROOT, SCHEMA, calib

SVG = "{http://www.w3.org/2000/svg}"


def _nm_sizes(obj: Path, nm: str = "nm") -> dict[str, tuple[str, int]]:
    """{symbol: (type letter, size)} of the defined, sized symbols of an object file."""
    out = subprocess.run([nm, "-S", "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            symbols[parts[3]] = (parts[2], int(parts[1], 16))
    return symbols


def _write(compiled, directory: Path) -> Path:
    for name, text in {**compiled.files, **compiled.backend.host_files(compiled.qm.rounding)}.items():
        (directory / name).write_text(text)
    return directory / f"{compiled.name}.c"


# ---- the done-when numbers ---------------------------------------------------------------------------

def test_ds_cnn_s_cortex_m4_arena_and_lower_bound(kws):
    r = build_report(kws("ds_cnn_s"), measure_code=False)
    assert r["cpu"] == "cortex-m4" and r["cpu_build"] == "dsp"
    assert 0 < r["arena_bytes"] <= 16_200
    assert 0 < r["arena_lower_bound_bytes"] <= r["arena_bytes"]
    assert r["arena_efficiency"] == round(r["arena_lower_bound_bytes"] / r["arena_bytes"], 4)
    table = format_table(r)
    assert re.search(rf"arena {r['arena_bytes']:,} B .*lower bound {r['arena_lower_bound_bytes']:,} B, "
                     rf"efficiency \d+\.\d %", table)


def test_cli_report_prints_arena_lower_bound_and_efficiency(tmp_path, capsys, validator):
    out = tmp_path / "r.json"
    rc = main(["report", str(KWS / "ds_cnn_s.onnx"), "--calib", calib("ds_cnn_s"), "--cpu", "cortex-m4",
               "--json", str(out), "--markdown", str(tmp_path / "r.md"), "--svg", str(tmp_path / "r.svg")])
    assert rc == 0
    text = capsys.readouterr().out
    m = re.search(r"RAM\s+arena ([\d,]+) B .*lower bound ([\d,]+) B, efficiency ([\d.]+) %", text)
    assert m, text
    arena, bound = (int(m.group(i).replace(",", "")) for i in (1, 2))
    assert bound <= arena <= 16_200
    report = json.loads(out.read_text())
    validator.validate(report)
    assert report["arena_bytes"] == arena and report["arena_lower_bound_bytes"] == bound
    assert "r.svg" in (tmp_path / "r.md").read_text()
    ET.parse(tmp_path / "r.svg")


# ---- the numbers are true ------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["ds_cnn_s", "dnn_s"])
def test_host_object_symbols_match_the_report(model, kws, tmp_path):
    """Build the generated C for the host: the arena symbol is the reported arena, every array the
    report names has the reported size, and there are no other const arrays."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no host C compiler")
    compiled = kws(model)
    r = build_report(compiled, measure_code=False)
    source = _write(compiled, tmp_path)
    obj = tmp_path / f"{model}.o"
    subprocess.run([cc, "-std=c99", "-O1", "-c", "-I", str(tmp_path), str(source), "-o", str(obj)], check=True)
    symbols = _nm_sizes(obj)
    kind, size = symbols[f"{compiled.name}_arena"]
    assert kind in "bB"
    assert size == r["arena_bytes"] == compiled.plan.arena_size  # the arena is a multiple of 4
    arrays = r["shared_arrays"] + [a for layer in r["layers"] for a in layer["arrays"]]
    for a in arrays:
        assert symbols[a["symbol"]] == (symbols[a["symbol"]][0], a["bytes"]), a["symbol"]
        assert symbols[a["symbol"]][0] in "rR"
    consts = {name for name, (kind, size) in symbols.items() if kind in "rR" and size and name.startswith(model)}
    assert consts == {a["symbol"] for a in arrays}
    assert sum(a["bytes"] for a in arrays) == r["flash_data_bytes"]
    by_role = {role: sum(a["bytes"] for a in arrays if a["role"] == role) for role in ("weights", "bias")}
    assert by_role["weights"] == r["weights_only_bytes"] and by_role["bias"] == r["bias_bytes"]
    assert r["weights_bytes"] == r["weights_only_bytes"] + r["bias_bytes"]
    assert r["quant_params_bytes"] == r["flash_data_bytes"] - r["weights_bytes"]


@pytest.mark.parametrize("model,cpu", [("ds_cnn_s", "cortex-m4"), ("cnn_s", "cortex-m55"), ("dnn_s", "cortex-m3")])
def test_flash_matches_arm_none_eabi_size(model, cpu, kws, arm_toolchain, tmp_path):
    """The reported flash is text + data of `arm-none-eabi-size` on the object compiled for the core,
    its bss is the arena, and each array's .rodata section has the reported size."""
    compiled = kws(model, cpu=cpu)
    r = build_report(compiled)
    code = r["code_size"]
    assert code["measured"], code["reason"]
    assert f"-mcpu={cpu}" in code["flags"]
    source = _write(compiled, tmp_path)
    obj = tmp_path / f"{model}.o"
    subprocess.run([arm_toolchain, *code["flags"], "-I", str(tmp_path), "-c", str(source), "-o", str(obj)], check=True)
    berkeley = subprocess.run(["arm-none-eabi-size", str(obj)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in berkeley.splitlines()[1].split()[:3])
    assert r["flash_bytes"] == text + data
    assert r["flash_bytes"] == r["flash_data_bytes"] + r["code_bytes"]
    assert bss == r["arena_bytes"]
    sections = flash.parse_size_a(subprocess.run(["arm-none-eabi-size", "-A", "-d", str(obj)], capture_output=True,
                                                 text=True, check=True).stdout)
    for a in r["shared_arrays"] + [a for layer in r["layers"] for a in layer["arrays"]]:
        assert sections[f".rodata.{a['symbol']}"] == a["bytes"], a["symbol"]
    assert code["const_data_bytes"] == r["flash_data_bytes"]
    assert 0 < r["code_bytes"] < 10_000


def test_unmeasured_code_is_marked(kws, monkeypatch, validator):
    monkeypatch.setattr(flash, "toolchain", lambda: None)
    r = build_report(kws("ds_cnn_s"))
    assert r["code_size"]["measured"] is False and "not installed" in r["code_size"]["reason"]
    assert r["code_bytes"] is None and r["flash_bytes"] is None
    assert "code unmeasured" in format_table(r)
    assert "unmeasured" in format_markdown(r)
    validator.validate(json.loads(to_json(r)))


def test_scratch_for_every_build(kws):
    """One report answers for every core: each build's arena equals a compile for that build."""
    r = build_report(kws("ds_cnn_s"), measure_code=False)
    assert set(r["builds"]) == {"c", "dsp", "mve"}
    for build, cpu in (("c", "generic"), ("dsp", "cortex-m4"), ("mve", "cortex-m55")):
        other = kws("ds_cnn_s", cpu=cpu)
        assert r["builds"][build]["arena_bytes"] == other.plan.arena_size, build
        assert cpu in r["builds"][build]["cpus"]
        scratch = [layer["scratch_bytes_by_build"][build] for layer in r["layers"]]
        assert r["builds"][build]["scratch_bytes"] == max(scratch)
    # the depthwise layers' MVE buffers make the M55 arena larger; on DSP cores the cost table picks kwscc's
    # kernels, whose scratch (two im2col windows) is smaller than CMSIS-NN's pure-C buffers
    assert r["builds"]["mve"]["arena_bytes"] > r["builds"]["dsp"]["arena_bytes"]
    assert r["builds"]["dsp"]["scratch_bytes"] < r["builds"]["c"]["scratch_bytes"]


def test_layers_are_consistent_with_the_plan(kws):
    compiled = kws("ds_cnn_s")
    r = build_report(compiled, measure_code=False)
    plan = compiled.plan
    assert [layer["name"] for layer in r["layers"]] == [n for n in plan.schedule if n in {c.node.name for c in compiled.calls}]
    assert [layer["step"] for layer in r["layers"]] == sorted(layer["step"] for layer in r["layers"])
    for layer in r["layers"]:
        first, last = layer["lifetime"]
        assert first == layer["step"] <= last
        if layer["arena_offset"] is not None:
            buf = next(b for b in r["buffers"] if layer["name"] in {c.node.name for c in compiled.calls}
                       and b["offset"] == layer["arena_offset"] and b["first_step"] <= first and last <= b["last_step"])
            assert buf["kind"] == "activation"
            assert layer["arena_offset"] + layer["output_bytes"] <= r["arena_bytes"]
        if layer["scratch_bytes"]:
            assert layer["scratch_offset"] is not None
            assert layer["scratch_offset"] + layer["scratch_bytes"] <= r["arena_bytes"]
        assert layer["input_bytes"] > 0 and layer["output_bytes"] > 0
        if layer["op"] in ("Conv", "Dense"):
            assert layer["weight_frac_bits"] and layer["weight_formats"]
            assert layer["macs"] > 0
    assert r["layers"][-1]["output_location"] == "output" and not r["output_in_arena"]
    assert r["plan"]["occupancy_bytes"] and max(r["plan"]["occupancy_bytes"]) == r["arena_lower_bound_bytes"]
    assert len(r["plan"]["candidates"]) >= 2
    assert r["arena_bytes"] == min(c["arena_bytes"] for c in r["plan"]["candidates"])


# ---- JSON schema ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model,cpu,weights", [("ds_cnn_s", "cortex-m4", "per-channel"),
                                                ("dnn_s", "cortex-m3", "per-tensor"),
                                                ("cnn_s", "cortex-m55", "per-channel")])
def test_json_validates_against_the_schema(model, cpu, weights, kws, validator):
    r = json.loads(to_json(build_report(kws(model, cpu=cpu, weights=weights))))
    validator.validate(r)
    assert r["schema_version"] == SCHEMA_VERSION


def test_schema_is_versioned_and_documented(validator):
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    doc = (ROOT / "docs" / "report.md").read_text()
    for key in schema["properties"]:
        assert f"`{key}`" in doc, f"docs/report.md does not describe {key}"
    assert "report-schema.json" in doc


def test_schema_rejects_a_wrong_report(kws, validator):
    import jsonschema

    r = json.loads(to_json(build_report(kws("ds_cnn_s"), measure_code=False)))
    for broken in ({**r, "arena_bytes": -1}, {**r, "surprise": 1}, {k: v for k, v in r.items() if k != "layers"}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


# ---- files beside every compile; the SVG ------------------------------------------------------------------

def test_compile_writes_report_files(tmp_path, capsys, validator):
    out = tmp_path / "out"
    rc = main([str(KWS / "ds_cnn_s.onnx"), "--calib", calib("ds_cnn_s"), "-o", str(out)])
    assert rc == 0
    assert "efficiency" in capsys.readouterr().out
    for suffix in ("json", "md", "svg"):
        assert (out / f"ds_cnn_s_report.{suffix}").is_file(), suffix
    report = json.loads((out / "ds_cnn_s_report.json").read_text())
    validator.validate(report)
    header = (out / "ds_cnn_s.h").read_text()
    assert re.search(rf"#define DS_CNN_S_ARENA_SIZE {report['arena_bytes']}\b", header)
    md = (out / "ds_cnn_s_report.md").read_text()
    assert "ds_cnn_s_report.svg" in md and f"{report['arena_bytes']:,} B" in md


def test_svg_shows_every_buffer(kws):
    compiled = kws("ds_cnn_s")
    r = build_report(compiled, measure_code=False)
    svg = render_svg(r)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "buffer"]
    assert sorted(g.get("data-name") for g in groups) == sorted(b["name"] for b in r["buffers"])
    assert len(groups) == len(compiled.plan.buffers)
    titles = " ".join(t.text or "" for t in root.iter(f"{SVG}title"))
    for b in r["buffers"]:
        for tensor in b["tensors"]:
            assert tensor in titles
    for g in groups:
        rect = g.find(f"{SVG}rect")
        assert float(rect.get("width")) > 0 and float(rect.get("height")) >= 3
    callers = {g.get("data-name") for g in root.iter(f"{SVG}g") if g.get("class") == "caller-buffer"}
    assert callers == {"input", "output"}
    assert f"{r['arena_bytes']:,} B" in svg


def test_svg_renders(kws, tmp_path, svg_renderer):
    """A real renderer draws the timeline: valid XML, a picture of the size the SVG declares."""
    path = tmp_path / "timeline.svg"
    svg = render_svg(build_report(kws("ds_cnn_s"), measure_code=False))
    path.write_text(svg)
    png = tmp_path / "timeline.png"
    proc = subprocess.run([svg_renderer, "-o", str(png), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    width = int.from_bytes(png.read_bytes()[16:20], "big")  # PNG IHDR
    assert png.stat().st_size > 10_000 and width == round(float(ET.fromstring(svg).get("width")))


def test_report_files_are_the_three_forms(kws):
    files = report_files(kws("dnn_s"), build_report(kws("dnn_s"), measure_code=False))
    assert sorted(files) == ["dnn_s_report.json", "dnn_s_report.md", "dnn_s_report.svg"]
    assert json.loads(files["dnn_s_report.json"])["name"] == "dnn_s"
