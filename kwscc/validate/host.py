"""Build the generated C with kwscc's host kernels and run it on samples."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kwscc.codegen import environment
from kwscc.driver import Compiled, output_files, write_outputs
from kwscc.errors import ToolError
from kwscc.streaming import calls_per_clip

WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]


def compiler() -> str:
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            return cc
    raise ToolError("no C compiler found (cc, gcc or clang): install one to validate")


def harness_source(compiled: Compiled) -> str:
    name = compiled.name
    return environment().get_template("harness/validate_main.c.j2").render(
        name=name, NAME=name.upper(), reset_every=calls_per_clip(compiled.qm) if compiled.qm.streaming else 0)


def build_host_program(compiled: Compiled, work: Path, sanitize: bool = False, opt: str = "-O2",
                       main: str | None = None) -> Path:
    """OUT files + host kernels + harness (or the C program `main`) in `work`, compiled warning-free into
    work/prog."""
    write_outputs(output_files(compiled, True, {}), work)
    (work / "main.c").write_text(harness_source(compiled) if main is None else main)
    host = work / compiled.backend.host_dir_name
    sources = sorted(str(p) for p in work.glob("*.c")) + sorted(str(p) for p in host.glob("*.c"))
    cmd = [compiler(), *WARNINGS, opt, *(SANITIZE if sanitize else []), f"-I{work}", f"-I{host}", *sources,
           "-o", str(work / "prog")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError(f"the generated C did not build:\n{result.stderr.strip()[:4000]}")
    return work / "prog"


def run_host_program(prog: Path, x: np.ndarray, output_size: int, timeout: float = 600) -> np.ndarray:
    """int8 outputs [samples, output_size] of the host program on float samples."""
    with tempfile.TemporaryDirectory(prefix="kwscc-run-") as tmp:
        inp, out = Path(tmp) / "in.f32", Path(tmp) / "out.i8"
        np.ascontiguousarray(x, np.float32).tofile(inp)
        result = subprocess.run([str(prog), str(inp), str(out)], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise ToolError(f"the generated program failed (status {result.returncode}): {result.stderr.strip()[:2000]}")
        return np.fromfile(out, np.int8).reshape(-1, output_size)
