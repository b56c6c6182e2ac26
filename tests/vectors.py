"""Loader for the CMSIS-NN golden vectors in tests/data/cmsis_nn_vectors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VECTOR_DIR = Path(__file__).resolve().parent / "data" / "cmsis_nn_vectors"


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
