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


def _tool(tools: tuple[str, ...], packages: str) -> str:
    """The path of tools[0], after installing `packages` with apt (as root) if any of `tools` is missing."""
    if any(shutil.which(t) is None for t in tools):
        if os.geteuid() != 0:
            pytest.skip(f"{tools[0]} is not installed and the tests are not root (apt-get install {packages})")
        _apt_install(packages)
    path = shutil.which(tools[0])
    assert path, f"apt-get reported success but {tools[0]} is not on PATH"
    return path


@pytest.fixture(scope="session")
def arm_toolchain() -> str:
    return _tool(("arm-none-eabi-gcc", "arm-none-eabi-size"), "gcc-arm-none-eabi libnewlib-arm-none-eabi")


@pytest.fixture(scope="session")
def svg_renderer() -> str:
    """rsvg-convert (librsvg, a real SVG renderer that rejects invalid XML), installed with apt as root."""
    return _tool(("rsvg-convert",), "--no-install-recommends librsvg2-bin")
