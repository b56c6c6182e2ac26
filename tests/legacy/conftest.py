"""Session fixtures of the cmsis-nn-legacy tests: the host q7 library with kwscc's own kernels, built once."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from legacy_host import LegacyHost, build_legacy_library  # noqa: E402

from kwscc.backends.cmsis_nn_legacy.backend import KERNEL_ORDER  # noqa: E402
from kwscc.codegen import environment  # noqa: E402


def kernels_source() -> str:
    """kwscc's own kernels (templates/cmsis_nn_legacy/kernels) as one C file with external linkage."""
    env = environment()
    parts = ["#include <stdint.h>", '#include "arm_nnfunctions.h"', ""]
    parts += [env.get_template(f"cmsis_nn_legacy/kernels/{k}.c.j2").render(storage="") for k in KERNEL_ORDER]
    return "\n".join(parts)


@pytest.fixture(scope="session")
def legacy_lib_path(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the host kernels")
    work = tmp_path_factory.mktemp("legacy_host")
    kernels = work / "kwscc_kernels.c"
    kernels.write_text(kernels_source())
    return build_legacy_library(work, extra_sources=[kernels])


@pytest.fixture(scope="session")
def legacy_lib(legacy_lib_path):
    return LegacyHost(legacy_lib_path)
