"""Helpers of the generated-C tests (import as tests.c.c_harness): a harness of our own that uses only the
generated header's API, the documented host build, and running the harness on samples."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwscc.driver import Compiled
from tests.e2e import kws_shared as kws

HOST_DIR = "cmsis_nn_host"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow"]
SANITIZE = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
ARM_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
ARM_M55 = ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"]
ARM_COMMON = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]

# Reads float32 samples, writes for each: the quantized input (int8), the output (int8) and the
# dequantized output (float32). Uses only the header's public API.
HARNESS = r"""
#include <stdio.h>
#include <stdint.h>

#include "@name@.h"

int main(int argc, char **argv)
{
    static float x[@NAME@_INPUT_SIZE];
    static int8_t q[@NAME@_QUANTIZED_INPUT_SIZE];
    static int8_t y[@NAME@_OUTPUT_SIZE];
    static float yf[@NAME@_OUTPUT_SIZE];
    FILE *in;
    FILE *q_out;
    FILE *y_out;
    FILE *f_out;
    long samples = 0;
    int status;

    if (argc != 5) {
        fprintf(stderr, "usage: %s IN.f32 Q.i8 Y.i8 Y.f32\n", argv[0]);
        return 2;
    }
    in = fopen(argv[1], "rb");
    q_out = fopen(argv[2], "wb");
    y_out = fopen(argv[3], "wb");
    f_out = fopen(argv[4], "wb");
    if (in == NULL || q_out == NULL || y_out == NULL || f_out == NULL) {
        fprintf(stderr, "cannot open the files\n");
        return 2;
    }
    while (fread(x, sizeof(float), @NAME@_INPUT_SIZE, in) == @NAME@_INPUT_SIZE) {
        @name@_quantize_input(x, q);
        status = @name@_run(q, y);
        if (status != 0) {
            fprintf(stderr, "@name@_run returned %d on sample %ld\n", status, samples);
            return 1;
        }
        @name@_dequantize_output(y, yf);
        if (fwrite(q, 1, @NAME@_QUANTIZED_INPUT_SIZE, q_out) != @NAME@_QUANTIZED_INPUT_SIZE
            || fwrite(y, 1, @NAME@_OUTPUT_SIZE, y_out) != @NAME@_OUTPUT_SIZE
            || fwrite(yf, sizeof(float), @NAME@_OUTPUT_SIZE, f_out) != @NAME@_OUTPUT_SIZE) {
            fprintf(stderr, "write failed\n");
            return 3;
        }
        ++samples;
    }
    fclose(in);
    fclose(q_out);
    fclose(y_out);
    fclose(f_out);
    printf("%ld\n", samples);
    return 0;
}
"""


def harness_source(name: str) -> str:
    return HARNESS.replace("@NAME@", name.upper()).replace("@name@", name)


@dataclass
class Generated:
    """One CLI compile: OUT directory, C name, and the same model compiled in-process (for simulation)."""

    out: Path
    name: str
    compiled: Compiled

    @property
    def c_file(self) -> Path:
        return self.out / f"{self.name}.c"

    @property
    def h_file(self) -> Path:
        return self.out / f"{self.name}.h"

    def sources(self) -> list[str]:
        return [str(self.c_file)] + sorted(str(p) for p in (self.out / HOST_DIR).glob("*.c"))

    def includes(self) -> list[str]:
        return [f"-I{self.out}", f"-I{self.out / HOST_DIR}"]


def cc_build(gen: Generated, exe: Path, extra: list[str] = ()) -> None:
    """The documented host build (plus -Wshadow): warnings are errors, and there must be none."""
    main_c = exe.parent / f"{exe.name}_main.c"
    main_c.write_text(harness_source(gen.name))
    cmd = ["cc", *STRICT, *extra, *gen.includes(), *gen.sources(), str(main_c), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"build failed: {' '.join(cmd)}\n{proc.stderr}"
    assert proc.stderr.strip() == "", f"the build printed diagnostics:\n{proc.stderr}"


@dataclass
class RunResult:
    q: np.ndarray
    y: np.ndarray
    yf: np.ndarray
    stdout: str
    stderr: str


def run_harness(exe: Path, gen: Generated, x: np.ndarray, env: dict | None = None) -> RunResult:
    work = exe.parent
    x = np.ascontiguousarray(x, np.float32).reshape(x.shape[0], -1)
    files = [work / f"{exe.name}.{suffix}" for suffix in ("in.f32", "q.i8", "y.i8", "y.f32")]
    x.tofile(files[0])
    proc = subprocess.run([str(exe), *map(str, files)], capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, f"harness failed ({proc.returncode}): {proc.stderr[-4000:]}"
    assert proc.stdout.strip() == str(x.shape[0])
    out_size = gen.compiled.graph.tensors[gen.compiled.graph.outputs[0]].size
    return RunResult(np.fromfile(files[1], np.int8).reshape(x.shape[0], -1),
                     np.fromfile(files[2], np.int8).reshape(-1, out_size),
                     np.fromfile(files[3], np.float32).reshape(-1, out_size), proc.stdout, proc.stderr)


def sanitizer_env() -> dict:
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=86"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=87"
    return env


def kws_samples(model: str, count: int = 100) -> np.ndarray:
    """The first `count` samples of the model's test split, float32 [count, features]."""
    return kws.kws_arrays()[f"test_{kws.FEATURES[model]}"][:count]
