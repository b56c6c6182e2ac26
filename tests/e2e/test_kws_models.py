"""End to end on the four real KWS models (examples/kws): compile with the calibration split, build the
generated C for the host, run it on the test split and compare with kwscc's simulator and onnxruntime.

Every model is compiled once per session (tests.e2e.kws_shared.compiled); the variants (rounding, weight
granularity, cpu) go through the CLI the way a user runs them.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from kwscc.cli import main
from kwscc.validate.validate import validate
from tests.e2e import kws_shared as kws

# top-1 agreement of the quantized C with the float model (onnxruntime) on the 2000-sample test split
MIN_AGREEMENT = {"cnn_s": 0.92, "ds_cnn_s": 0.92, "ds_cnn_m": 0.92, "dnn_s": 0.90}
HEADER_DEFINES = ("INPUT_SIZE", "OUTPUT_SIZE", "ARENA_SIZE", "INPUT_FRAC_BITS")
LAYER_KEYS = ("name", "op", "sqnr_db", "cosine")
REPORT_LAYER_KEYS = ("name", "op", "macs", "weights_bytes", "output_bytes", "arena_offset")


def check_layers(result: dict, compiled=None) -> None:
    assert result["layers"], "validate reported no layers"
    for layer in result["layers"]:
        missing = [k for k in LAYER_KEYS if k not in layer]
        assert not missing, f"layer {layer.get('name')} lacks {missing}"
        assert isinstance(layer["name"], str) and layer["name"]
        assert isinstance(layer["op"], str) and layer["op"]
        sqnr = layer["sqnr_db"]
        assert sqnr is None or (isinstance(sqnr, float) and math.isfinite(sqnr) and sqnr > 10.0), layer
        assert 0.95 <= layer["cosine"] <= 1.0 + 1e-9, layer
    if compiled is not None:
        assert [layer["name"] for layer in result["layers"]] == [call.node.name for call in compiled.calls]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# ------------------------------------------------------------------------------------------------
# the four models on the full test split
# ------------------------------------------------------------------------------------------------

# (model, split): the full 2000-sample test split, except ds_cnn_m (the slowest to simulate): its
# 50-sample split and the first 500 test samples
SPLITS = [("ds_cnn_s", "test"), ("cnn_s", "test"), ("dnn_s", "test"), ("ds_cnn_m", "test50"),
          ("ds_cnn_m", "first500")]


@pytest.fixture(scope="session")
def first500(tmp_path_factory):
    """An .npz with the first 500 test samples of both feature sets and their labels."""
    arrays = kws.kws_arrays()
    path = tmp_path_factory.mktemp("slices") / "first500.npz"
    np.savez(path, test_x490=arrays["test_x490"][:500], test_x250=arrays["test_x250"][:500],
             test_y=arrays["test_y"][:500])
    return path


@pytest.mark.parametrize("model,split", SPLITS, ids=[f"{m}-{s}" for m, s in SPLITS])
def test_model_validates_on_test_split(model, split, kws_compiled, first500, record_property):
    compiled = kws_compiled(model)
    if split == "first500":
        data, labels, samples = f"{first500}:test_{kws.FEATURES[model]}", "test_y", 500
    else:
        data, labels, samples = kws.split_spec(model, split), f"{split}_y", 2000 if split == "test" else 50
    result = validate(compiled, data, labels)
    record_property(f"{model}_{split}_top1_agreement", result["top1_agreement"])
    record_property(f"{model}_{split}_quantized_accuracy", result["quantized_accuracy"])
    print(f"{model} {split}: agreement {result['top1_agreement']:.4f}, float acc {result['float_accuracy']:.4f}, "
          f"quantized acc {result['quantized_accuracy']:.4f}")

    assert result["samples"] == samples
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= MIN_AGREEMENT[model]
    assert 0.0 <= result["quantized_accuracy"] <= 1.0
    if samples == 2000:
        # quantization costs at most a few points of accuracy on these models (measured: <= 2.3 points)
        assert result["float_accuracy"] - result["quantized_accuracy"] <= 0.05
    # a 12-class problem: clearly better than chance, so the labels are wired to the right samples
    assert result["quantized_accuracy"] > 0.5
    assert result["rounding"] == "default" and result["cpu"] == "cortex-m4"
    assert result["arena_bytes"] == compiled.plan.arena_size
    check_layers(result, compiled)


# ------------------------------------------------------------------------------------------------
# variants: rounding, weight granularity, cpu
# ------------------------------------------------------------------------------------------------

def test_rounding_single_dnn_s_cli(tmp_path, capsys):
    out_json = tmp_path / "single.json"
    rc, _, err = run_cli(["validate", str(kws.model_path("dnn_s")), "--calib", kws.calib_spec("dnn_s"),
                          "--data", kws.split_spec("dnn_s", "test"), "--labels", "test_y",
                          "--rounding", "single", "--json", str(out_json)], capsys)
    assert rc == 0, err
    result = kws.read_json(out_json)
    assert result["rounding"] == "single"
    assert result["samples"] == 2000
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= MIN_AGREEMENT["dnn_s"]
    check_layers(result)


def test_rounding_single_ds_cnn_s(kws_compiled):
    compiled = kws_compiled("ds_cnn_s", rounding="single")
    assert compiled.qm.rounding == "single"
    assert re.search(r"#define DS_CNN_S_SINGLE_ROUNDING 1\b", compiled.files["ds_cnn_s.h"])
    result = validate(compiled, kws.split_spec("ds_cnn_s", "test50"), "test50_y")
    assert result["rounding"] == "single"
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.85
    check_layers(result, compiled)


def test_weights_per_tensor_dnn_s(tmp_path, capsys):
    """--weights per-tensor lowers every Dense to arm_fully_connected_s8 (per-channel: 1x1 convolutions),
    and the C still matches the simulator bit for bit."""
    out = tmp_path / "out"
    rc, _, err = run_cli(kws.compile_argv("dnn_s", out, "--weights", "per-tensor"), capsys)
    assert rc == 0, err
    code = kws.strip_c_comments((out / "dnn_s.c").read_text())
    assert len(re.findall(r"\barm_fully_connected_s8\s*\(", code)) == 4
    assert "arm_convolve" not in code

    out_json = tmp_path / "pt.json"
    rc, _, err = run_cli(["validate", str(kws.model_path("dnn_s")), "--calib", kws.calib_spec("dnn_s"),
                          "--data", kws.split_spec("dnn_s", "test"), "--labels", "test_y",
                          "--weights", "per-tensor", "--json", str(out_json)], capsys)
    assert rc == 0, err
    result = kws.read_json(out_json)
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= MIN_AGREEMENT["dnn_s"]
    check_layers(result)


def test_weights_per_channel_dnn_s_dense_layers(kws_compiled):
    """Per-channel dense layers run on kwscc_dense_s8 on a Cortex-M4 (fewer instructions by the cost table);
    on a Cortex-M55 the cost table keeps CMSIS-NN's MVE 1x1 convolutions (its FC requantizes per tensor)."""
    code = kws.strip_c_comments(kws_compiled("dnn_s").files["dnn_s.c"])
    assert "arm_fully_connected_s8" not in code
    assert len(re.findall(r"\bkwscc_dense_s8\s*\(", code)) == 1 + 4  # its definition and four calls
    code = kws.strip_c_comments(kws_compiled("dnn_s", cpu="cortex-m55").files["dnn_s.c"])
    assert "arm_fully_connected_s8" not in code and "kwscc_dense_s8" not in code
    assert len(re.findall(r"\barm_convolve_wrapper_s8\s*\(", code)) == 4


def test_weights_per_tensor_ds_cnn_s(kws_compiled):
    compiled = kws_compiled("ds_cnn_s", weights="per-tensor")
    assert all(not layer.per_channel for layer in compiled.qm.layers.values() if layer.weights is not None)
    result = validate(compiled, kws.split_spec("ds_cnn_s", "test50"), "test50_y")
    assert result["c_vs_simulator_mismatches"] == 0
    check_layers(result)


@pytest.mark.parametrize("cpu", ["generic", "cortex-m55"])
def test_cpu_variants_compile_and_validate(cpu, tmp_path, capsys):
    out_json = tmp_path / "v.json"
    rc, out, err = run_cli(["validate", str(kws.model_path("ds_cnn_s")), "--calib", kws.calib_spec("ds_cnn_s"),
                            "--data", kws.split_spec("ds_cnn_s", "test50"), "--labels", "test50_y",
                            "--cpu", cpu, "--json", str(out_json)], capsys)
    assert rc == 0, err
    assert re.search(r"C vs simulator mismatches\s+0\b", out), out
    result = kws.read_json(out_json)
    assert result["cpu"] == cpu
    assert result["samples"] == 50
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.85
    assert "quantized_accuracy" in result and "float_accuracy" in result
    check_layers(result)


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ds_cnn_s_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.json"
    rc = main(["report", str(kws.model_path("ds_cnn_s")), "--calib", kws.calib_spec("ds_cnn_s"),
               "--cpu", "cortex-m4", "--json", str(path)])
    assert rc == 0
    return kws.read_json(path)


def test_report_ds_cnn_s_budgets(ds_cnn_s_report):
    r = ds_cnn_s_report
    assert r["cpu"] == "cortex-m4"
    assert 0 < r["arena_bytes"] <= 16200
    # 24,920 B on CMSIS-NN's calls; kwscc's kernels add the depthwise weights as int16 (+2,304 B) and the split
    # input's lo weights (+2,560 B, which CMSIS-NN's call rebuilds in its scratch at run time)
    assert 0 < r["weights_bytes"] <= 30000
    assert 0 < r["arena_lower_bound_bytes"] <= r["arena_bytes"]
    assert r["macs"] > 2_000_000  # ds_cnn_s: ~2.66 M MACs per inference


def test_report_ds_cnn_s_layers(ds_cnn_s_report, kws_compiled):
    r = ds_cnn_s_report
    layers = r["layers"]
    assert len(layers) == len(kws_compiled("ds_cnn_s").calls)
    for layer in layers:
        missing = [k for k in REPORT_LAYER_KEYS if k not in layer]
        assert not missing, f"report layer {layer.get('name')} lacks {missing}"
        assert layer["macs"] >= 0 and layer["weights_bytes"] >= 0 and layer["output_bytes"] > 0
        if layer["arena_offset"] is not None:
            # the layer's output lies inside the arena
            assert 0 <= layer["arena_offset"] and layer["arena_offset"] + layer["output_bytes"] <= r["arena_bytes"]
    assert sum(layer["macs"] for layer in layers) == r["macs"]
    assert sum(layer["weights_bytes"] + layer["bias_bytes"] for layer in layers) == r["weights_bytes"]
    assert layers[-1]["op"] == "Softmax" and layers[-1]["output_bytes"] == 12
    assert {layer["op"] for layer in layers} >= {"Conv", "AveragePool", "Dense", "Softmax"}


# ------------------------------------------------------------------------------------------------
# the files compile writes
# ------------------------------------------------------------------------------------------------

def test_compile_writes_expected_files(ds_cnn_s_cli_outputs, ds_cnn_s_report):
    out = ds_cnn_s_cli_outputs[0]
    for rel in ("ds_cnn_s.h", "ds_cnn_s.c", "ds_cnn_s_report.json"):
        assert (out / rel).is_file(), rel
    host = sorted(p.name for p in (out / "cmsis_nn_host").glob("*.c"))
    assert host, "--with-host-kernels wrote no C files"
    assert "arm_nnfunctions.h" in {p.name for p in (out / "cmsis_nn_host").iterdir()}
    assert not [p.name for p in out.iterdir() if p.name.startswith(".kwscc")], "staging folder left behind"
    written = kws.read_json(out / "ds_cnn_s_report.json")
    for key in ("arena_bytes", "weights_bytes", "arena_lower_bound_bytes", "macs"):
        assert written[key] == ds_cnn_s_report[key], key


def test_header_contract(ds_cnn_s_cli_outputs, ds_cnn_s_report):
    header = (ds_cnn_s_cli_outputs[0] / "ds_cnn_s.h").read_text()
    code = kws.strip_c_comments(header)
    values = {}
    for define in HEADER_DEFINES:
        m = re.search(rf"^\s*#define\s+DS_CNN_S_{define}\s+\(?(-?\d+)\)?", code, re.M)
        assert m, f"DS_CNN_S_{define} not defined"
        values[define] = int(m.group(1))
    assert values["INPUT_SIZE"] == 490
    assert values["OUTPUT_SIZE"] == 12
    assert values["ARENA_SIZE"] == ds_cnn_s_report["arena_bytes"]
    assert re.search(r"\bint\s+ds_cnn_s_run\s*\(\s*const\s+int8_t\s*\*\s*\w+\s*,\s*int8_t\s*\*\s*\w+\s*\)\s*;", code)
    assert re.search(r"\bvoid\s+ds_cnn_s_quantize_input\s*\(\s*const\s+float\s*\*\s*\w+\s*,\s*int8_t\s*\*\s*\w+\s*\)\s*;",
                     code)
    assert re.search(r"\bvoid\s+ds_cnn_s_dequantize_output\s*\(\s*const\s+int8_t\s*\*\s*\w+\s*,\s*float\s*\*\s*\w+\s*\)\s*;",
                     code)
    assert re.search(r"#ifndef\s+DS_CNN_S_H\b", code) and re.search(r"#define\s+DS_CNN_S_H\b", code)


def test_compile_is_deterministic(ds_cnn_s_cli_outputs):
    """The same command in two directories writes byte-identical files."""
    a, b = (kws.tree(d) for d in ds_cnn_s_cli_outputs)
    assert sorted(a) == sorted(b)
    assert len(a) >= 5
    different = [rel for rel in a if a[rel] != b[rel]]
    assert not different, f"files differ between two identical compiles: {different}"


def test_compile_into_different_folders_is_byte_identical(tmp_path, capsys):
    """Two output folders at different depths, the model named by an absolute and by a relative path:
    every file is byte-identical, the recorded command included (base names, `-o .`)."""
    outs = [tmp_path / "first", tmp_path / "second" / "nested"]
    rc, _, err = run_cli(kws.compile_argv("dnn_s", outs[0], "--with-host-kernels"), capsys)
    assert rc == 0, err
    with kws.chdir(kws.ROOT):
        argv = kws.compile_argv("dnn_s", outs[1], "--with-host-kernels")
        argv[0] = str(kws.model_path("dnn_s").relative_to(kws.ROOT))
        rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    a, b = (kws.tree(d) for d in outs)
    assert sorted(a) == sorted(b)
    different = [rel for rel in a if a[rel] != b[rel]]
    assert not different, f"files differ between the two output folders: {different}"
    banner = re.search(rb"^ \* Command: (.*)$", a["dnn_s.c"], re.M).group(1).decode()
    assert banner == "kwscc dnn_s.onnx -o . --calib kws_synth.npz:calib_x250 --with-host-kernels"


def test_compiled_model_is_deterministic_in_process(kws_compiled):
    """Two compile_model() calls on the same input give the same C text and the same integers."""
    from kwscc.driver import CompileOptions, compile_model

    first = kws_compiled("cnn_s")
    second = compile_model(kws.model_path("cnn_s"), CompileOptions(calib=kws.calib_spec("cnn_s")))
    assert first.files == second.files
    for name, layer in first.qm.layers.items():
        other = second.qm.layers[name]
        if layer.weights is not None:
            np.testing.assert_array_equal(layer.weights, other.weights)
            np.testing.assert_array_equal(layer.bias, other.bias)
            np.testing.assert_array_equal(layer.shift, other.shift)
