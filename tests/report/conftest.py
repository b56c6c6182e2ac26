"""Fixtures of the report tests: real KWS models compiled once per session, the JSON schema, and the
Arm toolchain (installed with apt when running as root and missing, else the test is skipped)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.report.report_util import SCHEMA, compiled


@pytest.fixture(scope="session")
def kws():
    """kws(model, cpu=..., weights=...) -> Compiled, cached for the session."""
    return compiled


@pytest.fixture(scope="session")
def validator():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency: pip install -e .[test]")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _apt_install(packages: str) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        proc = subprocess.run(f"apt-get update && apt-get install -y {packages}", shell=True, capture_output=True,
                              text=True, timeout=600, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"apt-get install {packages} took more than 600 s")
    if proc.returncode != 0:
        pytest.fail(f"apt-get could not install {packages}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


@pytest.fixture(scope="session")
def arm_toolchain() -> str:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-size") is None:
        if os.geteuid() != 0:
            pytest.skip("arm-none-eabi-gcc is not installed and the tests are not root (apt-get install gcc-arm-none-eabi)")
        _apt_install("gcc-arm-none-eabi libnewlib-arm-none-eabi")
    gcc = shutil.which("arm-none-eabi-gcc")
    assert gcc, "apt-get reported success but arm-none-eabi-gcc is not on PATH"
    return gcc


@pytest.fixture(scope="session")
def svg_renderer() -> str:
    """rsvg-convert (librsvg, a real SVG renderer that rejects invalid XML), installed with apt as root."""
    if shutil.which("rsvg-convert") is None:
        if os.geteuid() != 0:
            pytest.skip("rsvg-convert is not installed and the tests are not root (apt-get install librsvg2-bin)")
        _apt_install("--no-install-recommends librsvg2-bin")
    tool = shutil.which("rsvg-convert")
    assert tool, "apt-get reported success but rsvg-convert is not on PATH"
    return tool
