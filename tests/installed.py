"""The installed `kwscc` command, for tests of what a user's terminal shows.

It is the script pip put next to the interpreter running the tests (`.venv/bin/kwscc` after
scripts/bootstrap.sh), or the file named by the environment variable KWSCC_BIN.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def kwscc_script() -> Path:
    """Path of the installed command; fails the test (never skips it) when there is none."""
    named = os.environ.get("KWSCC_BIN")
    script = Path(named) if named else Path(sys.executable).parent / "kwscc"
    if not script.is_file():
        source = "KWSCC_BIN" if named else "the interpreter running the tests"
        pytest.fail(f"no kwscc command at {script} (from {source}): install kwscc (scripts/bootstrap.sh) "
                    "into this interpreter's environment or set KWSCC_BIN")
    return script
