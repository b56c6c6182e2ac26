"""Fixtures of the emulated Cortex-M tests: the Arm toolchain and QEMU (installed with apt when the tests run
as root, as CI does; otherwise their absence skips the tests that need them, saying why)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kwscc.validate.target import APT_PACKAGES, missing_tools
from tests.target.fake_cmsis_nn import make_fake_cmsis_nn

APT_TIMEOUT = 900


def _apt_install() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = f"apt-get update && apt-get install -y --no-install-recommends {' '.join(APT_PACKAGES)}"
    try:
        proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=APT_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"installing {' '.join(APT_PACKAGES)} with apt-get took more than {APT_TIMEOUT} s")
    if proc.returncode != 0:
        pytest.fail(f"apt-get could not install {' '.join(APT_PACKAGES)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


@pytest.fixture(scope="session")
def arm_toolchain():
    """arm-none-eabi-gcc, newlib and qemu-system-arm, plus a host C compiler for the counting plugin."""
    missing = missing_tools()
    if missing:
        if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip(f"Debian packages {', '.join(missing)} are not installed (run the tests as root to "
                        f"install them with apt-get, or: apt-get install {' '.join(APT_PACKAGES)})")
        _apt_install()
        missing = missing_tools()
        assert not missing, f"apt-get reported success but {', '.join(missing)} is still missing"
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no host C compiler (cc, gcc or clang) to build kwscc's QEMU instruction-counting plugin")


@pytest.fixture(scope="session")
def fake_cmsis_nn(tmp_path_factory):
    """A directory laid out like a CMSIS-NN v7 checkout, holding kwscc's host kernels."""
    return make_fake_cmsis_nn(tmp_path_factory.mktemp("cmsis_nn") / "CMSIS-NN")
