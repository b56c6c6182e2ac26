"""Loader for the CMSIS-NN golden vectors in tests/data/cmsis_nn_vectors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VECTOR_DIR = Path(__file__).resolve().parent / "data" / "cmsis_nn_vectors"


def vector_problems(status: int, out: np.ndarray, case: dict, arrays: dict, config: str) -> list[str]:
    """What differs between one run of a case and its golden vector (empty when status and output match)."""
    want = arrays[f"out_{config}"]
    problems = []
    if status != case["status"][config]:
        problems.append(f"status {status}, expected {case['status'][config]}")
    if not np.array_equal(out, want):
        diff = np.flatnonzero(out.ravel() != want.ravel())
        problems.append(f"{diff.size}/{want.size} outputs differ, first at flat index {diff[0]}: "
                        f"got {out.ravel()[diff[0]]}, expected {want.ravel()[diff[0]]}")
    return problems


def load_family(name: str) -> list[tuple[dict, dict]]:
    """Every case of one family as (case JSON, {role: array}), roles being the npz names without 'c{i}_'."""
    meta = json.loads((VECTOR_DIR / f"{name}.json").read_text())
    with np.load(VECTOR_DIR / f"{name}.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    cases = []
    for case in meta["cases"]:
        prefix = f"c{case['index']}_"
        roles = {key[len(prefix):]: arr for key, arr in arrays.items() if key.startswith(prefix)}
        cases.append((case, roles))
    return cases
