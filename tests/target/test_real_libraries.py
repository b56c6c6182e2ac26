"""The generated C against Arm's real libraries (../shared/third_party, or $KWSCC_CMSIS_NN / $KWSCC_CMSIS_5):
the four shipped KWS models on CMSIS-NN v7.0.0 on the host (both rounding builds), Cortex-M4 and Cortex-M55,
and with the legacy backend on CMSIS_5 5.9.0's CMSIS/NN on the host and Cortex-M4, bit for bit with kwscc's
simulator; each program built from the per-model file list alone, checked against the linker's map.
Without the libraries these tests skip, saying why."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from kwscc.build_files import kernel_files, library_graph
from kwscc.driver import CompileOptions, compile_model
from kwscc.kernel_sources import entry_symbols
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.validate.cmsis_nn import object_name
from kwscc.validate.target import FLASH_SECTIONS, RAM_SECTIONS, parse_map, run_on_target
from tests.e2e import kws_shared as kws
from tests.target.linking import check_list_is_what_the_linker_pulls
from tests.third_party import library

SAMPLES = 5  # per model: QEMU runs are the slow part


def samples(model: str) -> np.ndarray:
    x = kws.kws_arrays()[f"test50_{kws.FEATURES[model]}"][:SAMPLES]
    return x.reshape(SAMPLES, -1)


def compiled(model: str, rounding: str = "default", cpu: str = "cortex-m4"):
    options = {k: v for k, v in (("rounding", rounding), ("cpu", cpu)) if v != {"rounding": "default", "cpu": "cortex-m4"}[k]}
    return kws.compiled(model, **options)


def check_bit_exact(compiled, out: np.ndarray) -> None:
    graph = compiled.graph
    x = samples(compiled.model_path.stem)
    feeds = {graph.inputs[0]: x.reshape((SAMPLES,) + graph.tensors[graph.inputs[0]].shape[1:])}
    expected = simulate_float_inputs(compiled.qm, feeds, compiled.backend.simulate)[graph.outputs[0]]
    assert out.shape == (SAMPLES, graph.tensors[graph.outputs[0]].size)
    assert np.count_nonzero(out != expected.reshape(SAMPLES, -1)) == 0


@pytest.mark.parametrize("rounding", ["default", "single"])
@pytest.mark.parametrize("model", kws.MODELS)
def test_cmsis_nn_v7_on_the_host(model, rounding):
    lib = library("cmsis_nn")
    c = compiled(model, rounding)
    out, measured = run_on_target(c, samples(model), "host", str(lib))
    assert measured["cmsis_nn_version"] == "7.0.0"  # a git snapshot: read from arm_nnfunctions.h, not the pdsc
    check_bit_exact(c, out)


def test_cmsis_nn_v7_sanitized_on_the_host(tmp_path):
    """validate --sanitize --cmsis-nn: the model and Arm's kernels built with ASan and UBSan, still bit-exact."""
    lib = library("cmsis_nn")
    c = compiled("ds_cnn_s")  # convolution, depthwise, pooling, softmax: Arm's kernels in the arena's scratch
    out, _ = run_on_target(c, samples("ds_cnn_s"), "host", str(lib), sanitize=True, keep=tmp_path)
    check_bit_exact(c, out)
    # really instrumented, the model and Arm's files alike (not a silently plain build)
    for part in ("model", "kernels"):
        objects = sorted((tmp_path / "obj" / part).glob("*.o"))
        undefined = subprocess.run(["nm", "-u", *map(str, objects)], capture_output=True, text=True, check=True).stdout
        assert objects and "__asan_report" in undefined and "__ubsan_handle_" in undefined, f"{part}: no sanitizers"


def called_files(graph: dict, entries: list[str]) -> set[str]:
    """The files of the functions the entries really reach (the linker's view, function by function)."""
    seen, todo = set(), list(entries)
    while todo:
        name = todo.pop()
        if name not in seen and name in graph:
            seen.add(name)
            todo.extend(graph[name].refs)
    return {graph[name].file for name in seen}


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
@pytest.mark.parametrize("model", kws.MODELS)
def test_cmsis_nn_v7_on_cortex_m(model, target, arm_toolchain, tmp_path):
    """The image is linked from the per-model file list alone (no undefined reference); the map shows that
    the linker kept something of every file a called function lives in, and nothing of any other file; and
    linked without --gc-sections against an archive of the listed files, the model pulls in every one of them
    and leaves no library symbol undefined: the list is exactly the files the model needs, whole."""
    lib = library("cmsis_nn")
    c = compiled(model, cpu=target)
    out, _ = run_on_target(c, samples(model), target, str(lib), keep=tmp_path)
    check_bit_exact(c, out)
    checkout = c.backend.open_library(lib)
    files, _ = kernel_files(c, checkout)
    assert files == kernel_files(c)[0], "kwscc's shipped v7.0.0 table and the scan of the checkout disagree"
    kept = {os.path.basename(obj) for out_sec, _, _, size, obj in parse_map((tmp_path / "kwscc_image.map").read_text())
            if size > 0 and out_sec in FLASH_SECTIONS + RAM_SECTIONS and os.path.basename(obj).startswith("Source__")}
    graph, _ = library_graph(c, None)
    called = {object_name(lib / f, lib) for f in called_files(graph, entry_symbols(c.files[f"{c.name}.c"], graph))}
    assert kept == called, (sorted(kept - called), sorted(called - kept))
    # the rest of the list is what those files' other functions call: there so it links without --gc-sections
    assert called <= {object_name(lib / f, lib) for f in files}
    check_list_is_what_the_linker_pulls(c, tmp_path)


def test_optimize_speed_kernels_with_real_cmsis_nn_on_cortex_m4(arm_toolchain, tmp_path):
    """--optimize speed: kwscc's wide kernels (static functions in NAME.c) built with Arm's headers and the
    model's file list (pooling and softmax only), bit for bit; the list is what the linker pulls."""
    lib = library("cmsis_nn")
    c = compile_model(kws.KWS / "ds_cnn_s_int8.tflite", CompileOptions(optimize="speed"))
    assert "kwscc_depthwise_wide_s8(" in c.files[f"{c.name}.c"]
    x = kws.kws_arrays()["test50_x490"][:2].reshape(2, -1)
    out, _ = run_on_target(c, x, "cortex-m4", str(lib), keep=tmp_path)
    graph = c.graph
    feeds = {graph.inputs[0]: x.reshape((2,) + graph.tensors[graph.inputs[0]].shape[1:])}
    expected = simulate_float_inputs(c.qm, feeds, c.backend.simulate)[graph.outputs[0]]
    assert np.array_equal(out, expected.reshape(2, -1))
    check_list_is_what_the_linker_pulls(c, tmp_path)


# ------------------------------------------------------------------------------- CMSIS_5 5.9.0 (legacy q7)

@pytest.mark.parametrize("target", ["host", "cortex-m4"])
@pytest.mark.parametrize("model", kws.MODELS)
def test_cmsis_5_legacy_backend(model, target, request, tmp_path):
    lib = library("cmsis_5")
    if target != "host":
        request.getfixturevalue("arm_toolchain")
    c = kws.legacy_compiled(model)  # shared with tests/legacy
    out, measured = run_on_target(c, samples(model), target, str(lib), keep=tmp_path)
    assert measured["kernels"].startswith("CMSIS_5 5.9.0 CMSIS/NN")
    check_bit_exact(c, out)
    if target != "host":  # kwscc's CMSIS_5 table gives the list: exactly what the linker pulls
        check_list_is_what_the_linker_pulls(c, tmp_path)
