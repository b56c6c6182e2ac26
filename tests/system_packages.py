"""Debian packages the tests need: installed with apt-get when the tests run as root (as CI does), otherwise
their absence skips the tests that need them, saying why."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

APT_TIMEOUT = 900


def can_install() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(packages) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = f"apt-get update && apt-get install -y --no-install-recommends {' '.join(packages)}"
    try:
        proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=APT_TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"installing {' '.join(packages)} with apt-get took more than {APT_TIMEOUT} s")
    if proc.returncode != 0:
        pytest.fail(f"apt-get could not install {' '.join(packages)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def require_commands(*commands: str) -> None:
    """The commands (each from the Debian package of the same name: cmake, make) on PATH, installed as root."""
    missing = [c for c in commands if shutil.which(c) is None]
    if not missing:
        return
    if not can_install():
        pytest.skip(f"{', '.join(missing)} not installed (run the tests as root to install them with apt-get, or: "
                    f"apt-get install {' '.join(missing)})")
    apt_install(missing)
    still = [c for c in missing if shutil.which(c) is None]
    assert not still, f"apt-get reported success but {', '.join(still)} is still missing"
