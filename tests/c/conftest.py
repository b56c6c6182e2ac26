"""Fixtures of the generated-C tests: models compiled by the CLI with --with-host-kernels (once per
session), the host C compiler and arm-none-eabi-gcc."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kwscc.cli import main
from tests.c.c_harness import Generated
from tests.e2e import kws_shared as kws


@pytest.fixture(scope="session")
def host_cc():
    if shutil.which("cc") is None:
        pytest.skip("no host C compiler 'cc'")
    return "cc"


@pytest.fixture(scope="session")
def generate(tmp_path_factory):
    """generate(model, rounding="default") -> Generated: `kwscc MODEL -o OUT --calib ... --with-host-kernels`,
    once per (model, rounding) in the session."""
    cache: dict[tuple[str, str], Generated] = {}

    def get(model: str, rounding: str = "default") -> Generated:
        key = (model, rounding)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{model}_{rounding}") / "out"
            rc = main(kws.compile_argv(model, out, "--with-host-kernels", "--rounding", rounding))
            assert rc == 0, f"kwscc failed to compile {model}"
            cache[key] = Generated(out, model, kws.compiled(model, rounding=rounding))
        return cache[key]

    return get


def _apt_install_arm_gcc() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        proc = subprocess.run("apt-get update && apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi",
                              shell=True, capture_output=True, text=True, timeout=600, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("installing arm-none-eabi-gcc with apt-get took more than 600 s")
    if proc.returncode != 0:
        pytest.fail(f"apt-get could not install arm-none-eabi-gcc:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


@pytest.fixture(scope="session")
def arm_gcc() -> str:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        if os.geteuid() != 0:
            pytest.skip("arm-none-eabi-gcc not installed (run the tests as root to install it)")
        _apt_install_arm_gcc()
        gcc = shutil.which("arm-none-eabi-gcc")
        assert gcc, "apt-get reported success but arm-none-eabi-gcc is not on PATH"
    return gcc
