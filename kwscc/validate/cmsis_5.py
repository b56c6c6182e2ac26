"""A user's CMSIS_5 checkout (validate --backend cmsis-nn-legacy --cmsis-5 DIR): the legacy q7 API of
CMSIS/NN (CMSIS_5 <= 5.9.0) that the cmsis-nn-legacy backend calls.

Expected layout: DIR/CMSIS/NN/{Include,Source}, DIR/CMSIS/DSP/Include (arm_math_types.h, for arm_status)
and DIR/CMSIS/Core/Include (the core's intrinsics on Cortex-M). Every .c of CMSIS/NN/Source is a candidate:
the release's CMake lists build only its s8/s16 API, not the q7 functions. On the host, which is no Arm
core, the library builds as CMSIS-DSP's Python wrapper builds it: -D__GNUC_PYTHON__ -D__RESTRICT=__restrict
and dsp/none.h, which defines the saturating intrinsics (__SSAT, ...) in plain C.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kwscc.errors import CheckoutError

# CMSIS/NN/Include/arm_nnfunctions.h's $Revision in each CMSIS_5 release
API_REVISIONS = {"V.9.0.0": "5.9.0"}
HOST_FLAGS = ("-D__GNUC_PYTHON__", "-D__RESTRICT=__restrict", "-include", "dsp/none.h")


@dataclass(frozen=True)
class Cmsis5:
    root: Path  # the checkout: file lists are relative to it (CMSIS/NN/Source/...)
    include_dirs: tuple[Path, ...]
    sources: tuple[Path, ...]
    version: str | None
    api_revision: str | None

    def describe(self) -> str:
        version = self.version or f"(CMSIS/NN arm_nnfunctions.h {self.api_revision or 'revision unknown'})"
        return f"CMSIS_5 {version} CMSIS/NN at {self.root}"

    def kernel_flags(self, build: str, host: bool) -> list[str]:
        return [*(f"-I{d}" for d in self.include_dirs), *(HOST_FLAGS if host else ())]

    def model_flags(self, build: str, host: bool) -> list[str]:
        return [arg for d in self.include_dirs for arg in ("-isystem", str(d))] + list(HOST_FLAGS if host else ())


def checkout(directory: str | os.PathLike) -> Cmsis5:
    top = Path(directory).expanduser().resolve()
    if not top.is_dir():
        raise CheckoutError(f"--cmsis-5 {directory}: no such directory")
    nn = top / "CMSIS" / "NN"
    needed = (nn / "Include" / "arm_nnfunctions.h", top / "CMSIS" / "DSP" / "Include" / "arm_math_types.h",
              top / "CMSIS" / "Core" / "Include" / "cmsis_compiler.h")
    if not all(p.is_file() for p in needed) or not (nn / "Source").is_dir():
        hint = (" (this looks like ARM-software/CMSIS-NN: use it with the cmsis-nn backend and --cmsis-nn)"
                if (top / "Include" / "arm_nnfunctions.h").is_file() else "")
        raise CheckoutError(f"--cmsis-5 {directory}: not a CMSIS_5 checkout: expected CMSIS/NN/Include, CMSIS/NN/Source, "
                        f"CMSIS/DSP/Include and CMSIS/Core/Include (ARM-software/CMSIS_5 up to 5.9.0){hint}")
    sources = tuple(sorted((nn / "Source").rglob("*.c")))
    match = re.search(r"\$Revision:\s*(V\.[0-9.]+)", needed[0].read_text(errors="replace"))
    revision = match.group(1) if match else None
    include_dirs = (nn / "Include", top / "CMSIS" / "DSP" / "Include", top / "CMSIS" / "Core" / "Include")
    return Cmsis5(top, include_dirs, sources, API_REVISIONS.get(revision), revision)
