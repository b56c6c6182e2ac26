"""kwscc inside a user's build: find_package(kwscc CONFIG) + kwscc_add_model (two models sharing one caller
arena, regenerated after the model changes), a Make project including OUT/NAME.mk, each run and compared
with kwscc's simulator bit for bit; with kwscc's own kernels and, when it is there, the real CMSIS-NN."""
from __future__ import annotations

import functools
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from kwscc.driver import CompileOptions, Compiled, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from tests.e2e import kws_shared as kws
from tests.installed import kwscc_script
from tests.installed import run_ok as run
from tests.models_util import make_model, save
from tests.system_packages import require_commands
from tests.third_party import library

HERE = Path(__file__).resolve().parent
SAMPLES = 5


def samples(model: str) -> np.ndarray:
    x = kws.kws_arrays()[f"test50_{kws.FEATURES[model.removesuffix('_int8')]}"][:SAMPLES]
    return np.ascontiguousarray(x.reshape(SAMPLES, -1), np.float32)


@functools.lru_cache(maxsize=None)
def compiled_model(model: str, cpu: str = "cortex-m4") -> Compiled:
    """As the CLI compiles it: the ONNX model with its calibration split, or an int8 TFLite model alone."""
    if model.endswith("_int8"):
        return compile_model(kws.KWS / f"{model}.tflite", CompileOptions(cpu=cpu))
    return kws.compiled(model) if cpu == "cortex-m4" else kws.compiled(model, cpu=cpu)


def simulated(model: str, cpu: str = "cortex-m4") -> np.ndarray:
    compiled = compiled_model(model, cpu)
    graph = compiled.graph
    x = samples(model).reshape((SAMPLES,) + graph.tensors[graph.inputs[0]].shape[1:])
    out = simulate_float_inputs(compiled.qm, {graph.inputs[0]: x}, compiled.backend.simulate)
    return out[graph.outputs[0]].reshape(SAMPLES, -1)


def test_readme_snippets_are_the_tested_ones():
    """The README's CMake, Make and shared-arena snippets are (parts of) the projects these tests build."""
    section = (kws.ROOT / "README.md").read_text().split("## Using kwscc in your build", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(cmake|make|c)\n(.*?)```", section, re.S)
    assert [kind for kind, _ in blocks] == ["cmake", "cmake", "make", "c"]
    (_, package), (_, included), (_, make), (_, arena) = blocks
    assert (HERE / "cmake_project" / "CMakeLists.txt").read_text().endswith(package)
    assert (HERE / "include_project" / "CMakeLists.txt").read_text().endswith(included)
    assert (HERE / "make_project" / "Makefile").read_text().endswith(make)
    main = (HERE / "cmake_project" / "main.c").read_text()
    assert all(line.strip().rstrip(";") in main for line in arena.splitlines() if line.strip())


@pytest.fixture(scope="module")
def cmake_project(tmp_path_factory):
    """tests/build_integration/cmake_project configured and built against copies of the models (the tests touch
    them)."""
    require_commands("cmake", "make")
    work = tmp_path_factory.mktemp("cmake")
    models = work / "kws"
    models.mkdir()
    for f in ("ds_cnn_s_int8.tflite", "dnn_s.onnx", "kws_synth.npz"):
        shutil.copy(kws.KWS / f, models / f)
    cmake_dir = run([kwscc_script(), "--cmake-dir"]).stdout.strip()
    build = work / "build"
    # the kwscc under test, whatever else is on PATH
    run(["cmake", "-S", HERE / "cmake_project", "-B", build, f"-Dkwscc_DIR={cmake_dir}", f"-DKWS_DIR={models}",
         f"-DKWSCC_EXECUTABLE={kwscc_script()}"])
    run(["cmake", "--build", build])
    return build, models


def run_two_models(build: Path, tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    a, b = tmp / "a.f32", tmp / "b.f32"
    samples("ds_cnn_s_int8").tofile(a)
    samples("dnn_s").tofile(b)
    run([build / "two_models", a, b, tmp / "a.i8", tmp / "b.i8"])
    return (np.fromfile(tmp / "a.i8", np.int8).reshape(SAMPLES, -1),
            np.fromfile(tmp / "b.i8", np.int8).reshape(SAMPLES, -1))


def test_cmake_two_models_share_one_caller_arena(cmake_project, tmp_path):
    build, _ = cmake_project
    out_a, out_b = run_two_models(build, tmp_path)  # the program also checks the static arena's outputs
    np.testing.assert_array_equal(out_a, simulated("ds_cnn_s_int8"))
    np.testing.assert_array_equal(out_b, simulated("dnn_s"))


def touch_and_build(build: Path, touched: Path, generated: Path) -> int:
    """Touch an input, build, and return the new modification time of a generated file."""
    # "now", strictly after the outputs: a file stamped in the future would stay newer than the files
    # CMake regenerates from it, and every later build would configure again
    time.sleep(max(0.0, generated.stat().st_mtime_ns / 1e9 + 1.1 - time.time()))
    os.utime(touched)
    run(["cmake", "--build", build])
    return generated.stat().st_mtime_ns


@pytest.mark.parametrize("touched", ["dnn_s.onnx", "kws_synth.npz"])
def test_cmake_regenerates_after_the_model_or_the_data_change(touched, cmake_project, tmp_path):
    build, models = cmake_project
    generated, other, program = (build / "kwscc" / "dnn_s" / "dnn_s.c", build / "kwscc" / "ds_cnn_s" / "ds_cnn_s.c",
                                 build / "two_models")
    before = generated.stat().st_mtime_ns, program.stat().st_mtime_ns, other.stat().st_mtime_ns
    after = touch_and_build(build, models / touched, generated), program.stat().st_mtime_ns, other.stat().st_mtime_ns
    assert after[0] > before[0] and after[1] > before[1], f"touching {touched} did not regenerate and relink"
    assert after[2] == before[2], "the other model (no calibration data) was regenerated too"
    out_a, out_b = run_two_models(build, tmp_path)
    np.testing.assert_array_equal(out_b, simulated("dnn_s"))
    second = run(["cmake", "--build", build]).stdout
    assert "kwscc: compiling" not in second and generated.stat().st_mtime_ns == after[0]


@pytest.mark.parametrize("kernels", ["kwscc", "cmsis-nn", "copied"])
def test_make_and_cmake_include_the_fragments(kernels, tmp_path):
    """OUT/NAME.mk in a Makefile and OUT/NAME.cmake include()d by CMake, with kwscc's kernels; a CMSIS-NN
    checkout named to make / cmake; the files `--cmsis-nn DIR` copied into OUT."""
    require_commands("cmake", "make")
    extra, cpu = ["--with-host-kernels"], "cortex-m4"
    make_vars = []
    if kernels == "cmsis-nn":
        extra, cpu = ["--cpu", "generic"], "generic"  # the host compiles CMSIS-NN's pure-C path
        make_vars = [f"CMSIS_NN_PATH={library('cmsis_nn')}"]
    if kernels == "copied":
        extra, cpu = ["--cpu", "generic", "--cmsis-nn", str(library("cmsis_nn"))], "generic"
    run([kwscc_script(), *kws.compile_argv("dnn_s", tmp_path / "out", *extra)])
    if kernels == "copied":
        listed = (tmp_path / "out" / "dnn_s_cmsis_nn_sources.txt").read_text().split()
        copied = sorted(p.relative_to(tmp_path / "out" / "cmsis_nn").as_posix()
                        for p in (tmp_path / "out" / "cmsis_nn").rglob("*.c"))
        assert copied == listed and (tmp_path / "out" / "cmsis_nn" / "LICENSE").is_file()
    for f in ("Makefile", "main.c"):
        shutil.copy(HERE / "make_project" / f, tmp_path / f)
    run(["make", "-C", tmp_path, "OUT=out", *make_vars])
    samples("dnn_s").tofile(tmp_path / "in.f32")
    # and the same folder include()d by CMake, without the package
    source = tmp_path / "cmake_source"
    source.mkdir()
    shutil.copy(HERE / "include_project" / "CMakeLists.txt", source)
    shutil.copy(HERE / "make_project" / "main.c", source)
    run(["cmake", "-S", source, "-B", tmp_path / "cmake_build", f"-DOUT={tmp_path / 'out'}",
         *[f"-D{v}" for v in make_vars]])
    run(["cmake", "--build", tmp_path / "cmake_build"])
    built = sorted(o.name for o in (tmp_path / "cmake_build" / "CMakeFiles" / "dnn_s_cmsis_nn.dir").rglob("*.o"))
    if kernels == "kwscc":
        assert built == sorted(f"{p.name}.o" for p in (tmp_path / "out" / "cmsis_nn_host").glob("*.c"))
    else:  # exactly the model's list
        listed = (tmp_path / "out" / "dnn_s_cmsis_nn_sources.txt").read_text().split()
        assert built == sorted(f"{f.rsplit('/', 1)[-1]}.o" for f in listed) and built
    for program in (tmp_path / "dnn_s_demo", tmp_path / "cmake_build" / "dnn_s_demo"):
        run([program, tmp_path / "in.f32", tmp_path / "out.i8"])
        out = np.fromfile(tmp_path / "out.i8", np.int8).reshape(SAMPLES, -1)
        np.testing.assert_array_equal(out, simulated("dnn_s", cpu), err_msg=str(program))


def test_a_model_calling_no_cmsis_nn_function(tmp_path):
    """A dense layer with ReLU on the Cortex-M4 runs on kwscc's own kernel (in NAME.c): its CMSIS-NN list is
    empty, and with CMSIS_NN_PATH set it still builds, through kwscc_add_model and through include(NAME.cmake)."""
    require_commands("cmake", "make")
    lib = library("cmsis_nn")
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["y"]), helper.make_node("Relu", ["y"], ["z"])]
    weights = {"w": rng.normal(0, 0.3, (64, 32)), "b": rng.normal(0, 0.1, 32)}
    model = save(make_model(nodes, {"x": [1, 64]}, ["z"], weights), tmp_path, "dense.onnx")
    np.save(tmp_path / "calib.npy", rng.normal(0, 1, (16, 64)).astype(np.float32))
    run([kwscc_script(), model, "--calib", tmp_path / "calib.npy", "-o", tmp_path / "out", "--name", "dense_out"])
    assert (tmp_path / "out" / "dense_out_cmsis_nn_sources.txt").read_text() == ""
    build = tmp_path / "build"
    cmake_dir = run([kwscc_script(), "--cmake-dir"]).stdout.strip()
    run(["cmake", "-S", HERE / "own_kernels_project", "-B", build, f"-Dkwscc_DIR={cmake_dir}",
         f"-DKWSCC_EXECUTABLE={kwscc_script()}", f"-DMODEL={model}", f"-DCALIB={tmp_path / 'calib.npy'}",
         f"-DOUT={tmp_path / 'out'}", f"-DCMSIS_NN_PATH={lib}"])
    run(["cmake", "--build", build])
    x = rng.normal(0, 1, (3, 64)).astype(np.float32)
    x.tofile(tmp_path / "in.f32")
    run([build / "both", tmp_path / "in.f32", tmp_path / "a.i8", tmp_path / "b.i8"])
    compiled = compile_model(model, CompileOptions(calib=str(tmp_path / "calib.npy")))
    assert "arm_" not in "".join(call.function for call in compiled.calls)
    graph = compiled.graph
    expected = simulate_float_inputs(compiled.qm, {graph.inputs[0]: x}, compiled.backend.simulate)[graph.outputs[0]]
    for out in ("a.i8", "b.i8"):
        np.testing.assert_array_equal(np.fromfile(tmp_path / out, np.int8).reshape(3, -1), expected.reshape(3, -1))
