"""Arm's real libraries for the tests: $KWSCC_CMSIS_NN / $KWSCC_CMSIS_5, else ../shared/third_party beside the
checkout (where CI puts them). Tests that need one skip, saying why, when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = {
    "cmsis_nn": ("KWSCC_CMSIS_NN", "CMSIS-NN-v7.0.0", "Include/arm_nnfunctions.h"),
    "cmsis_5": ("KWSCC_CMSIS_5", "CMSIS_5-5.9.0", "CMSIS/NN/Include/arm_nnfunctions.h"),
}


def library(kind: str) -> Path:
    """The checkout of `kind` (cmsis_nn: CMSIS-NN v7.0.0, cmsis_5: CMSIS_5 5.9.0), or skip the test."""
    env, folder, probe = LIBRARIES[kind]
    path = Path(os.environ[env]) if os.environ.get(env) else ROOT.parent / "shared" / "third_party" / folder
    if not (path / probe).is_file():
        pytest.skip(f"{folder} not found: set {env} or put it at ../shared/third_party/{folder} beside the checkout")
    return path
