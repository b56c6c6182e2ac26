"""Fixtures of the emulated Cortex-M tests: the Arm toolchain and QEMU (installed with apt when the tests run
as root, as CI does; otherwise their absence skips the tests that need them, saying why)."""
from __future__ import annotations

import shutil

import pytest

from kwscc.validate.target import APT_PACKAGES, missing_tools
from tests.system_packages import apt_install, can_install
from tests.target.fake_cmsis_nn import make_fake_cmsis_nn


@pytest.fixture(scope="session")
def arm_toolchain():
    """arm-none-eabi-gcc, newlib and qemu-system-arm, plus a host C compiler for the counting plugin."""
    missing = missing_tools()
    if missing:
        if not can_install():
            pytest.skip(f"Debian packages {', '.join(missing)} are not installed (run the tests as root to "
                        f"install them with apt-get, or: apt-get install {' '.join(APT_PACKAGES)})")
        apt_install(APT_PACKAGES)
        missing = missing_tools()
        assert not missing, f"apt-get reported success but {', '.join(missing)} is still missing"
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("no host C compiler (cc, gcc or clang) to build kwscc's QEMU instruction-counting plugin")


@pytest.fixture(scope="session")
def fake_cmsis_nn(tmp_path_factory):
    """A directory laid out like a CMSIS-NN v7 checkout, holding kwscc's host kernels."""
    return make_fake_cmsis_nn(tmp_path_factory.mktemp("cmsis_nn") / "CMSIS-NN")
