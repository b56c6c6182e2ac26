"""The installed `kwscc` command, for tests of what a user's terminal shows.

It is the script pip put next to the interpreter running the tests (`.venv/bin/kwscc` after
scripts/bootstrap.sh), or the file named by the environment variable KWSCC_BIN.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def kwscc_script() -> Path:
    """Path of the installed command; fails the test (never skips it) when there is none."""
    named = os.environ.get("KWSCC_BIN")
    script = Path(named) if named else Path(sys.executable).parent / "kwscc"
    if not script.is_file():
        source = "KWSCC_BIN" if named else "the interpreter running the tests"
        pytest.fail(f"no kwscc command at {script} (from {source}): install kwscc (scripts/bootstrap.sh) "
                    "into this interpreter's environment or set KWSCC_BIN")
    return script


def run_in_clone_like_folder(commands: str, folder: Path) -> subprocess.CompletedProcess:
    """Run shell commands from a folder that looks like the repository root (examples/ beside out/),
    with the installed kwscc on PATH as after `. .venv/bin/activate`."""
    (folder / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PATH"] = f"{kwscc_script().parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)


def run_ok(cmd: list, **kw) -> subprocess.CompletedProcess:
    """Run a command (its output captured); fail the test with the command and its output's tail unless it exits 0."""
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result
