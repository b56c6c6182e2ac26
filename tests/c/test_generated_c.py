"""The generated C, built and run by a harness of our own (tests/c/c_harness.py), not kwscc's validate.

Build contract: `cc -std=c99 -Wall -Wextra -Werror -pedantic -IOUT -IOUT/cmsis_nn_host OUT/*.c
OUT/cmsis_nn_host/*.c main.c` (we add -Wshadow). The int8 outputs must equal kwscc's simulator exactly,
with and without ASan/UBSan, for both rounding modes; the files must be microcontroller-friendly (static
const weights, one static arena, no heap, no stdio); model-supplied names must never reach C code; and the
sources must build for Cortex-M with arm-none-eabi-gcc.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kwscc.cli import main
from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.formats import dequantize
from kwscc.quant.simulate import quantize_model_input, simulate_float_inputs
from tests.c.c_harness import (
    ARM_COMMON, ARM_M4, ARM_M55, HOST_DIR, SANITIZE, STRICT, Generated, cc_build, kws_samples, run_harness,
    sanitizer_env,
)
from tests.e2e import kws_shared as kws

MODELS = ("ds_cnn_s", "dnn_s")
SAMPLES = 100


def simulate(compiled, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 quantized input, int8 output) of kwscc's simulator for float samples [n, features]."""
    graph, qm = compiled.graph, compiled.qm
    name = graph.inputs[0]
    x = np.asarray(x, np.float32).reshape((x.shape[0],) + tuple(graph.tensors[name].shape[1:]))
    with np.errstate(over="ignore", invalid="ignore"):  # the edge-value samples hold +-Inf and 1e30
        out = simulate_float_inputs(qm, {name: x})[graph.outputs[0]]
        q = quantize_model_input(qm, name, x)
    return q.reshape(x.shape[0], -1), out.reshape(x.shape[0], -1)


def assert_matches_simulator(gen: Generated, result, x: np.ndarray) -> None:
    q_sim, y_sim = simulate(gen.compiled, x)
    np.testing.assert_array_equal(result.q, q_sim, err_msg="<name>_quantize_input differs from the simulator")
    mismatches = int(np.count_nonzero(result.y != y_sim))
    assert mismatches == 0, f"{mismatches} of {y_sim.size} output values differ from the simulator"
    np.testing.assert_array_equal(result.yf, dequantize(result.y, gen.compiled.qm.output_format))


def without_command_banner(text: str) -> str:
    return re.sub(r"^ \* Command: .*$", "", text, flags=re.M)


# ------------------------------------------------------------------------------------------------
# host build == simulator
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
def test_cli_output_is_the_simulated_model(model, generate):
    """The files the CLI wrote are the ones of the model we simulate (up to the recorded command)."""
    gen = generate(model)
    for rel in (f"{model}.c", f"{model}.h"):
        assert without_command_banner((gen.out / rel).read_text()) == without_command_banner(gen.compiled.files[rel])


@pytest.mark.parametrize("model", MODELS)
def test_host_build_matches_simulator(model, generate, host_cc, tmp_path):
    gen = generate(model)
    exe = tmp_path / "prog"
    cc_build(gen, exe)
    x = kws_samples(model, SAMPLES)
    result = run_harness(exe, gen, x)
    assert result.y.shape == (SAMPLES, 12)
    assert_matches_simulator(gen, result, x)
    # softmax outputs: a probability distribution in Q0.8 with zero point -128, not a constant
    probs = result.yf.astype(np.float64)
    assert np.all(np.abs(probs.sum(axis=1) - 1.0) < 0.1)
    assert len(set(np.argmax(result.y, axis=1))) > 1


@pytest.mark.parametrize("model", MODELS)
def test_sanitized_build_matches_simulator(model, generate, host_cc, tmp_path):
    gen = generate(model)
    exe = tmp_path / "prog_asan"
    cc_build(gen, exe, SANITIZE)
    x = kws_samples(model, SAMPLES)
    result = run_harness(exe, gen, x, env=sanitizer_env())
    for marker in ("runtime error", "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer"):
        assert marker not in result.stderr, result.stderr[-4000:]
    assert result.stderr.strip() == ""
    assert_matches_simulator(gen, result, x)


@pytest.mark.parametrize("model", MODELS)
def test_quantize_input_edge_values(model, generate, host_cc, tmp_path):
    """NaN -> the zero point, +-Inf and huge values saturate, halves round away from zero: exactly as the
    simulator, for DNN_S's input (one int8 with a zero point) and DS_CNN_S's (split into hi + lo)."""
    gen = generate(model)
    qm = gen.compiled.qm
    step, zp = 2.0 ** -qm.input_format.frac, qm.input_format.zero_point
    specials = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 0.5 * step, -0.5 * step, 1.5 * step,
                         -1.5 * step, 127.49 * step, 127.5 * step, -128.49 * step, -128.5 * step, 3e-39,
                         np.float32(np.finfo(np.float32).max)], np.float32)
    features = gen.compiled.graph.tensors[gen.compiled.graph.inputs[0]].size
    x = np.resize(specials, (3, features)).astype(np.float32)
    x[2] = 0.0
    exe = tmp_path / "prog"
    cc_build(gen, exe)
    result = run_harness(exe, gen, x)
    assert_matches_simulator(gen, result, x)
    q = result.q[0].astype(np.int64)
    if qm.split is not None:  # one input channel: hi, lo interleaved
        assert qm.split.channels == 1 and zp == 0
        q, lo = q[0::2], q[1::2]
        half = 2 ** (qm.split.bits - 1)
        assert list(lo[[0, 5, 7, 8, 9, 10]]) == [0, 0, -half, half, -half, half]  # the residual of each half
        assert lo[1] == 127 and lo[2] == -128  # +-Inf: the residual saturates too
    q = q[:len(specials)]
    assert q[0] == zp and q[1] == 127 and q[2] == -128 and q[3] == 127 and q[4] == -128
    assert q[7] == 1 + zp and q[8] == -1 + zp and q[9] == 2 + zp and q[10] == -2 + zp  # half away from zero


def test_single_rounding_build(generate, host_cc, tmp_path):
    """--rounding single: the written host kernels select single rounding themselves (no -D flag), and the
    program computes the single-rounding simulation, which differs from the default one on these samples."""
    gen = generate("ds_cnn_s", "single")
    config = (gen.out / HOST_DIR / "kwscc_host_config.h").read_text()
    assert re.search(r"^#define CMSIS_NN_USE_SINGLE_ROUNDING\b", config, re.M)
    assert re.search(r"#define DS_CNN_S_SINGLE_ROUNDING 1\b", gen.h_file.read_text())
    default_config = (generate("ds_cnn_s").out / HOST_DIR / "kwscc_host_config.h").read_text()
    assert not re.search(r"^#define CMSIS_NN_USE_SINGLE_ROUNDING\b", default_config, re.M)

    exe = tmp_path / "prog_single"
    cc_build(gen, exe)  # no -DCMSIS_NN_USE_SINGLE_ROUNDING
    x = kws_samples("ds_cnn_s", SAMPLES)
    result = run_harness(exe, gen, x)
    assert_matches_simulator(gen, result, x)
    _, y_default = simulate(generate("ds_cnn_s").compiled, x)
    assert np.count_nonzero(result.y != y_default) > 0, "single and default rounding gave identical outputs"


def test_single_rounding_sanitized_dnn_s(generate, host_cc, tmp_path):
    gen = generate("dnn_s", "single")
    exe = tmp_path / "prog"
    cc_build(gen, exe, SANITIZE)
    x = kws_samples("dnn_s", SAMPLES)
    result = run_harness(exe, gen, x, env=sanitizer_env())
    assert "runtime error" not in result.stderr and result.stderr.strip() == ""
    assert_matches_simulator(gen, result, x)


TWO_MODELS_MAIN = r"""
#include <stdio.h>
#include <stdint.h>

#include "ds_cnn_s.h"
#include "dnn_s.h"

int main(int argc, char **argv)
{
    static float a[DS_CNN_S_INPUT_SIZE];
    static float b[DNN_S_INPUT_SIZE];
    static int8_t qa[DS_CNN_S_QUANTIZED_INPUT_SIZE];
    static int8_t qb[DNN_S_QUANTIZED_INPUT_SIZE];
    static int8_t ya[DS_CNN_S_OUTPUT_SIZE];
    static int8_t yb[DNN_S_OUTPUT_SIZE];
    FILE *fa;
    FILE *fb;
    FILE *out;

    if (argc != 4) {
        return 2;
    }
    fa = fopen(argv[1], "rb");
    fb = fopen(argv[2], "rb");
    out = fopen(argv[3], "wb");
    if (fa == NULL || fb == NULL || out == NULL) {
        return 2;
    }
    while (fread(a, sizeof(float), DS_CNN_S_INPUT_SIZE, fa) == DS_CNN_S_INPUT_SIZE
           && fread(b, sizeof(float), DNN_S_INPUT_SIZE, fb) == DNN_S_INPUT_SIZE) {
        ds_cnn_s_quantize_input(a, qa);
        dnn_s_quantize_input(b, qb);
        /* interleaved: each model keeps its own arena */
        if (ds_cnn_s_run(qa, ya) != 0 || dnn_s_run(qb, yb) != 0) {
            return 1;
        }
        fwrite(ya, 1, DS_CNN_S_OUTPUT_SIZE, out);
        fwrite(yb, 1, DNN_S_OUTPUT_SIZE, out);
    }
    fclose(fa);
    fclose(fb);
    fclose(out);
    return 0;
}
"""


def test_two_models_link_into_one_program(generate, host_cc, tmp_path):
    """Two generated models and one copy of the host kernels link together (no clashing symbols)."""
    a, b = generate("ds_cnn_s"), generate("dnn_s")
    main_c = tmp_path / "two.c"
    main_c.write_text(TWO_MODELS_MAIN)
    exe = tmp_path / "two"
    cmd = ["cc", *STRICT, *a.includes(), f"-I{b.out}", str(a.c_file), str(b.c_file),
           *sorted(str(p) for p in (a.out / HOST_DIR).glob("*.c")), str(main_c), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    xa, xb = kws_samples("ds_cnn_s", 20), kws_samples("dnn_s", 20)
    xa.tofile(tmp_path / "a.f32")
    xb.tofile(tmp_path / "b.f32")
    run = subprocess.run([str(exe), str(tmp_path / "a.f32"), str(tmp_path / "b.f32"), str(tmp_path / "y.i8")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    y = np.fromfile(tmp_path / "y.i8", np.int8).reshape(20, 24)
    np.testing.assert_array_equal(y[:, :12], simulate(a.compiled, xa)[1])
    np.testing.assert_array_equal(y[:, 12:], simulate(b.compiled, xb)[1])


# ------------------------------------------------------------------------------------------------
# what the generated source is made of
# ------------------------------------------------------------------------------------------------

def nm_symbols(obj: Path) -> list[tuple[str, str, int | None]]:
    """(type, name, size) of every symbol of an object file."""
    proc = subprocess.run(["nm", "-S", str(obj)], capture_output=True, text=True, check=True)
    symbols = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            symbols.append((parts[2], parts[3], int(parts[1], 16)))
        elif len(parts) == 3:
            symbols.append((parts[1], parts[2], None))
        elif len(parts) == 2:
            symbols.append((parts[0], parts[1], None))
    return symbols


@pytest.mark.parametrize("model", MODELS)
def test_generated_source_is_static(model, generate):
    gen = generate(model)
    code = kws.strip_c_comments(gen.c_file.read_text())
    # every array with an initializer is static const (weights, biases, shifts, multipliers: flash)
    initialized = re.findall(r"^([^\n;{}]*?)\b(\w+)\s*\[[^\]]*\]\s*(?:\w+_WEIGHTS_ATTRIBUTES\s*)?=\s*\{", code, re.M)
    assert len(initialized) >= 3
    for prefix, symbol in initialized:
        assert prefix.split()[:2] == ["static", "const"], f"{symbol} is not static const: {prefix!r}"
    # one static arena, and no other writable file-scope data
    writable = re.findall(r"^static\s+(?!const\b)[^\n;{]*;", code, re.M)
    assert len(writable) == 1, writable
    assert re.match(rf"static\s+int32_t\s+{model}_arena\s*\[\s*\({model.upper()}_ARENA_SIZE\s*\+\s*3\)\s*/\s*4\s*\]"
                    rf"\s*{model.upper()}_ARENA_ATTRIBUTES\s*;",
                    writable[0]), writable[0]
    for banned in ("malloc", "calloc", "realloc", "free", "printf", "fprintf", "sprintf", "puts", "FILE", "stdio.h",
                   "stdlib.h", "exit", "abort", "assert"):
        assert not re.search(rf"\b{re.escape(banned)}\b", code), f"{banned} in {gen.c_file.name}"
    assert not re.search(r"\b(double|long\s+long)\b", code), "double or 64-bit arithmetic in the model code"


@pytest.mark.parametrize("model", MODELS)
def test_object_file_symbols(model, generate, host_cc, tmp_path):
    """Compiled NAME.c exports exactly the four API functions, keeps all weights read-only, has one
    zero-initialised arena of NAME_ARENA_SIZE bytes and needs nothing but CMSIS-NN functions (and memcpy/memset)."""
    gen = generate(model)
    obj = tmp_path / f"{model}.o"
    proc = subprocess.run(["cc", *STRICT, "-O0", *gen.includes(), "-c", str(gen.c_file), "-o", str(obj)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    symbols = nm_symbols(obj)
    exported = sorted(name for kind, name, _ in symbols if kind.isupper() and kind != "U")
    assert exported == sorted(f"{model}_{f}" for f in ("run", "run_with_arena", "quantize_input", "dequantize_output"))
    undefined = sorted(name for kind, name, _ in symbols if kind == "U")
    # CMSIS-NN, and the two libc functions kwscc's own kernels call (any freestanding toolchain has them)
    assert undefined and all(name.startswith("arm_") or name in ("memcpy", "memset") for name in undefined), undefined
    data = [(kind, name) for kind, name, _ in symbols if kind in "dD"]
    assert not data, f"writable initialised data: {data}"
    bss = [(name, size) for kind, name, size in symbols if kind in "bB"]
    arena = gen.compiled.plan.arena_size
    assert bss == [(f"{model}_arena", (arena + 3) // 4 * 4)]
    weights = sum(size for kind, _, size in symbols if kind in "rR" and size)
    assert weights >= sum(a.values.nbytes for c in gen.compiled.calls for a in c.arrays if a.role == "weights")


# ------------------------------------------------------------------------------------------------
# hostile names from the model never reach C code
# ------------------------------------------------------------------------------------------------

EVIL = 'int */ #include "evil.h"\n\'quoted\' \u00e9\u4e2d\U0001F600 \\ ??= ??/ //'
EVIL_MARKERS = ("evil", "quoted", "stdio", "??", "\u00e9", "\u4e2d", "#define X", "volatile_x")


def hostile_model(path: Path) -> Path:
    rng = np.random.default_rng(7)
    x = "in:" + EVIL
    nodes = [
        helper.make_node("Conv", [x, "w " + EVIL, "b " + EVIL], ["conv " + EVIL], name="conv " + EVIL,
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv " + EVIL], ["int"], name="while"),
        helper.make_node("MaxPool", ["int"], ["pool */"], name='static */ #define X 1 /* "',
                         kernel_shape=[2, 1], strides=[2, 1]),
        helper.make_node("Flatten", ["pool */"], ["flat\n#include <stdio.h>"], name="volatile_x"),
        helper.make_node("Gemm", ["flat\n#include <stdio.h>", "fc w", "fc b"], ["logits " + EVIL],
                         name='gemm "*/\n#include <stdio.h>\n/*', transB=1),
        helper.make_node("Softmax", ["logits " + EVIL], ["out " + EVIL], name="return", axis=-1),
    ]
    inits = [numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w " + EVIL),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b " + EVIL),
             numpy_helper.from_array(rng.standard_normal((5, 4 * 3 * 5)).astype(np.float32), "fc w"),
             numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "fc b")]
    graph = helper.make_graph(nodes, "graph " + EVIL, [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 1, 6, 5])],
                              [helper.make_tensor_value_info("out " + EVIL, TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    model = hostile_model(d / "hostile.onnx")
    data = d / "calib.npy"
    np.save(data, np.random.default_rng(8).standard_normal((64, 30)).astype(np.float32))
    return d, model, data


def assert_no_raw_names(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.isascii(), f"{path.name} contains non-ASCII text"
    assert "*/ #include" not in text
    assert text.count("/*") == text.count("*/"), f"unbalanced comments in {path.name}"
    code = kws.strip_c_comments(text)
    for marker in EVIL_MARKERS:
        assert marker not in code, f"{marker!r} from a model name appears outside comments in {path.name}"
    includes = re.findall(r"^\s*#\s*include\s*(\S+)", code, re.M)
    expected = {".c": ["<stddef.h>", "<stdint.h>", '"arm_nnfunctions.h"', f'"{path.stem}.h"'],
                ".h": ["<stdint.h>"]}[path.suffix]
    own_kernels = ["KWSCC_SIMD_HEADER", "<arm_acle.h>", "<string.h>"]  # where kwscc's kernels are emitted
    assert includes in (expected, expected + own_kernels), includes
    for text_ok in (f'#include "{path.stem}.h"', '#include "arm_nnfunctions.h"', 'extern "C"'):
        code = code.replace(text_ok, "")
    # the fixed inline assembly of kwscc's SIMD kernels (template text, no model name reaches it)
    code = re.sub(r"__asm\s*\((?:[^()]|\([^()]*\))*\)", "", code)
    assert '"' not in code and "'" not in code, f"a string or character literal in {path.name}"
    for comment in re.findall(r"/\*.*?\*/", text, re.S):  # names are quoted in comments on one line
        if any(word in comment for word in ("evil", "gemm", "conv ")):
            assert "\n" not in comment, f"a model name spans lines in a comment: {comment!r}"
    assert not re.search(r"\\[ \t]*$", text, re.M), "a line ends in a backslash (line splice)"


def test_hostile_names_compile_and_build(hostile, host_cc, tmp_path, capsys):
    d, model, data = hostile
    out = tmp_path / "out"
    rc = main([str(model), "-o", str(out), "--calib", str(data), "--name", "3 bad-name", "--with-host-kernels"])
    err = capsys.readouterr().err
    assert rc == 0, err
    name = "m_3_bad_name"
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
    assert sorted(p.name for p in out.glob("*.[ch]")) == [f"{name}.c", f"{name}.h"]
    for path in (out / f"{name}.c", out / f"{name}.h"):
        assert_no_raw_names(path)
    assert re.search(r"\bint\s+m_3_bad_name_run\s*\(", (out / f"{name}.h").read_text())

    compiled = compile_model(model, CompileOptions(calib=str(data), name="3 bad-name"))
    assert compiled.name == name
    gen = Generated(out, name, compiled)
    exe = tmp_path / "prog"
    cc_build(gen, exe)
    x = np.random.default_rng(9).standard_normal((16, 30)).astype(np.float32)
    result = run_harness(exe, gen, x)
    assert_matches_simulator(gen, result, x)


@pytest.mark.parametrize("file_name,expected", [("while.onnx", "m_while"), ("main.onnx", "m_main"),
                                                ("9 lives-\u00e9.onnx", "m_9_lives"),
                                                ("_reserved.onnx", "reserved")])
def test_model_file_names_become_identifiers(file_name, expected, hostile, host_cc, tmp_path, capsys):
    d, model, data = hostile
    renamed = tmp_path / file_name
    renamed.write_bytes(model.read_bytes())
    out = tmp_path / "out"
    rc = main([str(renamed), "-o", str(out), "--calib", str(data)])
    assert rc == 0, capsys.readouterr().err
    c_files = sorted(p.name for p in out.glob("*.c"))
    assert len(c_files) == 1
    name = c_files[0][:-2]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name), name
    assert name not in ("while", "main", "int", "return")
    assert name == expected
    for path in (out / f"{name}.c", out / f"{name}.h"):
        assert_no_raw_names(path)
    proc = subprocess.run(["cc", *STRICT, f"-I{out}", f"-I{out / HOST_DIR}",
                           f"-I{Path(kws.ROOT) / 'backends' / 'cmsis_nn' / 'host'}",
                           "-fsyntax-only", str(out / f"{name}.c")], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


# ------------------------------------------------------------------------------------------------
# Cortex-M builds
# ------------------------------------------------------------------------------------------------

def arm_compile(gcc: str, flags: list[str], gen: Generated, tmp: Path) -> None:
    for src in gen.sources():
        obj = tmp / (Path(src).stem + ".o")
        cmd = [gcc, *flags, *ARM_COMMON, *gen.includes(), "-c", src, "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
        assert not proc.stderr.strip(), proc.stderr
        assert obj.stat().st_size > 0


ARM_MAIN = r"""
#include <stdint.h>
#include "@name@.h"

static float x[@NAME@_INPUT_SIZE];
static int8_t q[@NAME@_QUANTIZED_INPUT_SIZE];
static int8_t y[@NAME@_OUTPUT_SIZE];
static float yf[@NAME@_OUTPUT_SIZE];

int main(void)
{
    @name@_quantize_input(x, q);
    if (@name@_run(q, y) != 0) {
        return 1;
    }
    @name@_dequantize_output(y, yf);
    return yf[0] > 0.5f;
}
"""


@pytest.mark.parametrize("model", MODELS)
def test_arm_cortex_m4_build(model, generate, arm_gcc, tmp_path):
    gen = generate(model)
    arm_compile(arm_gcc, ARM_M4, gen, tmp_path)
    # and the whole program links: every CMSIS-NN function the model calls is provided
    main_c = tmp_path / "arm_main.c"
    main_c.write_text(ARM_MAIN.replace("@NAME@", model.upper()).replace("@name@", model))
    elf = tmp_path / "prog.elf"
    cmd = [arm_gcc, *ARM_M4, *ARM_COMMON, *gen.includes(), *gen.sources(), str(main_c), "--specs=nosys.specs",
           "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    size = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True)
    if size.returncode == 0:
        sections = {p[0]: int(p[1]) for p in (line.split() for line in size.stdout.splitlines()) if len(p) >= 2
                    and p[1].isdigit()}
        assert sections.get(".bss", 0) >= gen.compiled.plan.arena_size


def _accepts(gcc: str, flags: list[str], tmp: Path) -> bool:
    src = tmp / "probe.c"
    src.write_text("int probe(int x) { return x + 1; }\n")
    return subprocess.run([gcc, *flags, "-c", str(src), "-o", str(tmp / "probe.o")],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("model", MODELS)
def test_arm_cortex_m55_build(model, generate, arm_gcc, tmp_path):
    if not _accepts(arm_gcc, ARM_M55, tmp_path):
        pytest.skip("this arm-none-eabi-gcc does not accept -mcpu=cortex-m55")
    arm_compile(arm_gcc, ARM_M55, generate(model), tmp_path)
