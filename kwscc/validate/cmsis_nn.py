"""A user's CMSIS-NN checkout (--cmsis-nn DIR): its layout, its version, and building against it.

Supported: the standalone ARM-software/CMSIS-NN repository, releases v4.0.0 to v7.0.0 (the s8 API kwscc
emits; its signatures did not change over those releases). Expected layout:

    DIR/Include/arm_nnfunctions.h, arm_nn_types.h, arm_nnsupportfunctions.h (+ Internal/, on v4.1+)
    DIR/Source/<folder>/*.c for the folders in SOURCE_FOLDERS

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

from kwscc.errors import ToolError

log = logging.getLogger(__name__)

# The Source/ folders compiled: the kernels kwscc calls (conv, depthwise, fully connected, pooling,
# softmax, LSTM), their helpers (NNSupportFunctions) and the elementwise/activation kernels. Unused functions
# are dropped at link time (-ffunction-sections, --gc-sections).
SOURCE_FOLDERS = ("ActivationFunctions", "BasicMathFunctions", "ConvolutionFunctions", "FullyConnectedFunctions",
                  "LSTMFunctions", "NNSupportFunctions", "PoolingFunctions", "SoftmaxFunctions")
REQUIRED_HEADERS = ("arm_nnfunctions.h", "arm_nn_types.h")
SUPPORTED_MAJOR = range(4, 8)  # v4.x - v7.x


@dataclass(frozen=True)
class CmsisNN:
    root: Path
    include: Path
    sources: tuple[Path, ...]
    version: str | None  # from ARM.CMSIS-NN.pdsc when the checkout has it

    def describe(self) -> str:
        return f"CMSIS-NN {self.version or '(version unknown)'} at {self.root}"


def checkout(directory: str | os.PathLike) -> CmsisNN:
    """The CMSIS-NN checkout at `directory`, checked for the expected layout."""
    root = Path(directory).expanduser().resolve()
    include, source = root / "Include", root / "Source"
    if not root.is_dir():
        raise ToolError(f"--cmsis-nn {directory}: no such directory")
    missing = [h for h in REQUIRED_HEADERS if not (include / h).is_file()]
    if missing or not source.is_dir():
        hint = ""
        if (root / "CMSIS" / "NN").is_dir() or (root / "NN" / "Include").is_dir():
            hint = " (this looks like CMSIS_5: its CMSIS/NN is the legacy API; use ARM-software/CMSIS-NN v4.0.0-v7.0.0)"
        raise ToolError(f"--cmsis-nn {directory}: not a CMSIS-NN checkout: expected Include/{', Include/'.join(REQUIRED_HEADERS)} "
                        f"and Source/ (the layout of ARM-software/CMSIS-NN v4.x-v7.x){hint}")
    sources = tuple(sorted(p for folder in SOURCE_FOLDERS if (source / folder).is_dir()
                           for p in (source / folder).rglob("*.c")))
    if not sources:
        raise ToolError(f"--cmsis-nn {directory}: no C sources under Source/{{{','.join(SOURCE_FOLDERS)}}}")
    version = _version(root)
    if version is not None and int(version.split(".")[0]) not in SUPPORTED_MAJOR:
        log.warning("CMSIS-NN %s at %s: kwscc supports v4.x-v7.x; building anyway", version, root)
    return CmsisNN(root, include, sources, version)


def _version(root: Path) -> str | None:
    """The newest <release version="..."> of the checkout's pack description, if it has one."""
    for pdsc in sorted(root.glob("*.pdsc")):
        match = re.search(r'<release\s+version="([0-9]+\.[0-9]+\.[0-9]+)', pdsc.read_text(errors="replace"))
        if match:
            return match.group(1)
    return None


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


def build_host_program(compiled, work: Path, lib: CmsisNN) -> Path:
    """The host validation program (kwscc's host harness) built against the user's CMSIS-NN."""
    from kwscc.validate.host import WARNINGS, compiler, harness_source
    from kwscc.driver import write_outputs

    cc = compiler()
    write_outputs(dict(compiled.files), work)
    (work / "main.c").write_text(harness_source(compiled))
    defines = ["-DCMSIS_NN_USE_SINGLE_ROUNDING"] if compiled.qm.rounding == "single" else []
    ours = [cc, *WARNINGS, "-O2", *defines, f"-I{work}", "-isystem", str(lib.include)]
    theirs = [cc, "-std=gnu11", "-O2", *defines, f"-I{lib.include}"]
    jobs = [(ours, src, work / "obj" / "model" / (src.stem + ".o")) for src in sorted(work.glob("*.c"))]
    jobs += [(theirs, src, work / "obj" / "kernels" / object_name(src, lib.root)) for src in lib.sources]
    compile_objects(jobs)
    prog = work / "prog"
    result = subprocess.run([cc, *[str(obj) for _, _, obj in jobs], "-o", str(prog)], capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError(f"linking against {lib.describe()} failed:\n{result.stderr.strip()[:4000]}")
    return prog
