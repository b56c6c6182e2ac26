"""kwscc's host CMSIS-NN v7 kernels (backends/cmsis_nn/host) against the golden vectors, bit for bit.

Every case of the modern conv / depthwise / FC / max pool / avg pool / softmax families is run through the
library built twice (default TFLM double rounding and -DCMSIS_NN_USE_SINGLE_ROUNDING) and compared with the
real CMSIS-NN v7.0.0 host outputs and statuses. get_buffer_size answers are compared with the pure-C build's.
A third, ASan+UBSan instrumented build runs every case in a child process (libasan must be preloaded).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host_build import (  # noqa: E402
    CONFIG_KEYS,
    FAMILIES,
    HostLibrary,
    build_host_library,
    check_vector_case,
    sanitizer_env,
    vector_buffer_size,
)
from tests.vectors import load_family  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the host kernels")

BUFFER_SIZE_FAMILIES = (
    "modern_convolve_wrapper_s8",
    "modern_depthwise_conv_wrapper_s8",
    "modern_fully_connected_s8",
    "modern_avgpool_s8",
)


@lru_cache(maxsize=None)
def _family(name: str):
    return load_family(name)


def _case_params(families):
    return [pytest.param(fam, i, id=f"{fam.removeprefix('modern_')}-{case['name']}")
            for fam in families for i, (case, _) in enumerate(_family(fam))]


@pytest.fixture(scope="session")
def host_build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cmsis_host")


@pytest.fixture(scope="session")
def host_libs(host_build_dir):
    """Both rounding builds, compiled once per session; keyed by vector configuration."""
    return {CONFIG_KEYS[single]: HostLibrary(build_host_library(host_build_dir, single_rounding=single))
            for single in (False, True)}


@pytest.mark.parametrize("config", ["host_default", "host_single"])
@pytest.mark.parametrize("family,index", _case_params(FAMILIES))
def test_kernel_matches_cmsis(host_libs, family, index, config):
    case, arrays = _family(family)[index]
    problems = check_vector_case(host_libs[config], family, case, arrays, config)
    assert not problems, f"{family}/{case['name']} [{config}]: " + "; ".join(problems)


@pytest.mark.parametrize("family,index", _case_params(BUFFER_SIZE_FAMILIES))
def test_get_buffer_size_matches_pure_c_build(host_libs, family, index):
    case, _ = _family(family)[index]
    want = case["buffer_size"]["host_default"]["get_buffer_size"]
    for config, host in host_libs.items():
        assert vector_buffer_size(host, family, case) == want, f"{family}/{case['name']} [{config}]"


def test_expected_arg_error_is_covered():
    """The v7.0.0 grouped-1x1 quirk (README §7.1) must stay in the data this file checks."""
    errors = [c["name"] for c, _ in _family("modern_convolve_wrapper_s8") if c["status"]["host_default"] != 0]
    assert errors == ["grouped_3g_1x1_6x6x9_to_6_tflm_style_scratch"]


@pytest.mark.parametrize("single", [False, True], ids=["default", "single"])
def test_sanitized_build_runs_all_cases(host_build_dir, single):
    """ASan + UBSan build (-fno-sanitize-recover=all) over every case, in a child process with libasan preloaded."""
    lib = build_host_library(host_build_dir, single_rounding=single, sanitize=True)
    script = Path(__file__).resolve().parent / "host_build.py"
    proc = subprocess.run([sys.executable, str(script), str(lib), CONFIG_KEYS[single], *FAMILIES],
                          env=sanitizer_env(), capture_output=True, text=True, timeout=300)
    failures = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last_case = [line for line in proc.stderr.splitlines() if line.startswith("running ")][-1:]
    assert proc.returncode == 0 and not failures, (
        f"exit {proc.returncode}, last {last_case}, failures {failures}\n{proc.stderr[-4000:]}")
