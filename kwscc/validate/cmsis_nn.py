"""A user's CMSIS-NN checkout (--cmsis-nn DIR): its layout, its version, and building against it.

Supported: the standalone ARM-software/CMSIS-NN repository, releases v4.0.0 to v7.0.0 (the s8 API kwscc
emits; its signatures did not change over those releases). Expected layout:

    DIR/Include/arm_nnfunctions.h, arm_nn_types.h, arm_nnsupportfunctions.h (+ Internal/, on v4.1+)
    DIR/Source/<folder>/*.c, with the CMakeLists.txt that say which of them the release builds

The sources compiled are the ones the release's own CMake lists compile (kwscc.kernel_sources.cmake_sources:
TransposeFunctions and PadFunctions where the release has them, no float kernels behind the F16/F32
options); unused functions are dropped at link time (-ffunction-sections, --gc-sections). The library's
headers are included after <stdint.h> (-include stdint.h: v4.1.0's Internal/arm_nn_compiler.h uses
uint8_t before including it).

CMSIS_5's CMSIS/NN (<= 5.9.0, the legacy q7 API) is not supported by the cmsis-nn backend. The library
picks its own code path from the compiler's target: ARM_MATH_DSP on cores with the DSP extension
(Cortex-M4/M7/M33), ARM_MATH_MVEI on Cortex-M55 (Helium), pure C elsewhere (Cortex-M3, the host).
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kwscc.errors import CheckoutError, ToolError
from kwscc.kernel_sources import cmake_sources

log = logging.getLogger(__name__)

REQUIRED_HEADERS = ("arm_nnfunctions.h", "arm_nn_types.h")
SUPPORTED_MAJOR = range(4, 8)  # v4.x - v7.x
# arm_nnfunctions.h's $Revision in each release: a git checkout's pdsc says 0.0.0 (the release tooling fills
# it in), but this header is the same in the tag and in the packed release
API_REVISIONS = {"V.18.0.0": "7.0.0"}


@dataclass(frozen=True)
class CmsisNN:
    root: Path
    include: Path
    sources: tuple[Path, ...]
    version: str | None  # the release: from the pdsc, else from arm_nnfunctions.h's $Revision
    api_revision: str | None = None  # arm_nnfunctions.h's $Revision

    def describe(self) -> str:
        version = self.version or (f"(arm_nnfunctions.h {self.api_revision})" if self.api_revision else
                                   "(version unknown)")
        return f"CMSIS-NN {version} at {self.root}"

    def kernel_flags(self, build: str, host: bool) -> list[str]:
        """Flags compiling the library's sources (and preprocessing them: kwscc.kernel_sources)."""
        return [f"-I{self.include}", "-include", "stdint.h"]

    def model_flags(self, build: str, host: bool) -> list[str]:
        """Flags compiling the generated C against the library (its headers as system headers)."""
        return ["-isystem", str(self.include)]


def checkout(directory: str | os.PathLike) -> CmsisNN:
    """The CMSIS-NN checkout at `directory`, checked for the expected layout."""
    root = Path(directory).expanduser().resolve()
    include, source = root / "Include", root / "Source"
    if not root.is_dir():
        raise CheckoutError(f"--cmsis-nn {directory}: no such directory")
    missing = [h for h in REQUIRED_HEADERS if not (include / h).is_file()]
    if missing or not source.is_dir():
        hint = ""
        if (root / "CMSIS" / "NN").is_dir() or (root / "NN" / "Include").is_dir():
            hint = " (this looks like CMSIS_5: its CMSIS/NN is the legacy API; use ARM-software/CMSIS-NN v4.0.0-v7.0.0)"
        raise CheckoutError(f"--cmsis-nn {directory}: not a CMSIS-NN checkout: expected Include/{', Include/'.join(REQUIRED_HEADERS)} "
                        f"and Source/ (the layout of ARM-software/CMSIS-NN v4.x-v7.x){hint}")
    sources = tuple(cmake_sources(source))
    if not sources:
        raise CheckoutError(f"--cmsis-nn {directory}: no C sources under Source/")
    version, revision = _version(root)
    if version is not None and int(version.split(".")[0]) not in SUPPORTED_MAJOR:
        log.warning("CMSIS-NN %s at %s: kwscc supports v4.x-v7.x; building anyway", version, root)
    return CmsisNN(root, include, sources, version, revision)


def _version(root: Path) -> tuple[str | None, str | None]:
    """(release, arm_nnfunctions.h revision): the release from the newest <release version="..."> of the pack
    description unless it is a git checkout's placeholder 0.0.0, else from the header's revision."""
    header = (root / "Include" / "arm_nnfunctions.h").read_text(errors="replace")
    match = re.search(r"\$Revision:\s*(V\.[0-9.]+)", header)
    revision = match.group(1) if match else None
    for pdsc in sorted(root.glob("*.pdsc")):
        match = re.search(r'<release\s+version="([0-9]+\.[0-9]+\.[0-9]+)', pdsc.read_text(errors="replace"))
        if match and match.group(1) != "0.0.0":
            return match.group(1), revision
    return API_REVISIONS.get(revision), revision


def needed_sources(compiled, lib, build: str) -> list[Path]:
    """The checkout's files the model calls in CMSIS-NN's `build` code path (kwscc.build_files.kernel_files):
    what the program is built from, so that every validation also checks that list."""
    from kwscc.build_files import kernel_files

    files, _ = kernel_files(compiled, lib, build)
    return [lib.root / f for f in files]


def compile_objects(jobs: list[tuple[list[str], Path, Path]]) -> None:
    """Compile (command prefix, source, object) jobs in parallel; the first failure raises ToolError."""
    def run(job):
        cmd, src, obj = job
        obj.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([*cmd, "-c", str(src), "-o", str(obj)], capture_output=True, text=True)
        return src, result

    with ThreadPoolExecutor(max_workers=max(1, min(16, os.cpu_count() or 1))) as pool:
        for src, result in pool.map(run, jobs):
            if result.returncode != 0:
                raise ToolError(f"{src.name} did not build:\n{result.stderr.strip()[:4000]}")


def object_name(src: Path, base: Path) -> str:
    """A unique object file name for a source below base."""
    try:
        rel = src.relative_to(base)
    except ValueError:
        rel = Path(src.name)
    return "__".join(rel.with_suffix(".o").parts)


def build_host_program(compiled, work: Path, lib, sanitize: bool = False) -> Path:
    """The host validation program (kwscc's host harness) built against the user's library checkout
    (CmsisNN, or kwscc.validate.cmsis_5.Cmsis5 for the legacy backend)."""
    from kwscc.validate.host import SANITIZE, WARNINGS, compiler, harness_source
    from kwscc.driver import write_outputs

    cc = compiler()
    write_outputs(dict(compiled.files), work)
    (work / "main.c").write_text(harness_source(compiled))
    defines = ["-DCMSIS_NN_USE_SINGLE_ROUNDING"] if compiled.qm.rounding == "single" else []
    checks = SANITIZE if sanitize else []
    # CMSIS-NN left-shifts negative values (arm_nn_exp_on_negative_values in its softmax): defined by GCC,
    # not by C99, so UBSan's shift check is off for Arm's sources; everything else stays on
    library_checks = [*SANITIZE, "-fno-sanitize=shift"] if sanitize else []
    ours = [cc, *WARNINGS, "-O2", *checks, *defines, f"-I{work}", *lib.model_flags("c", host=True)]
    theirs = [cc, "-std=gnu11", "-O2", *library_checks, *defines, *lib.kernel_flags("c", host=True)]
    jobs = [(ours, src, work / "obj" / "model" / (src.stem + ".o")) for src in sorted(work.glob("*.c"))]
    jobs += [(theirs, src, work / "obj" / "kernels" / object_name(src, lib.root))
             for src in needed_sources(compiled, lib, "c")]  # the host compiler takes the pure-C path
    compile_objects(jobs)
    prog = work / "prog"
    result = subprocess.run([cc, *checks, *[str(obj) for _, _, obj in jobs], "-o", str(prog)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise ToolError(f"linking against {lib.describe()} failed:\n{result.stderr.strip()[:4000]}")
    return prog
