"""Paths and a session cache of the real KWS models compiled for the report tests."""
from __future__ import annotations

import functools
from pathlib import Path

from kwscc.driver import CompileOptions, compile_model

ROOT = Path(__file__).resolve().parents[2]
KWS = ROOT / "examples" / "kws"
NPZ = KWS / "kws_synth.npz"
FEATURES = {"dnn_s": "x250", "cnn_s": "x490", "ds_cnn_s": "x490", "ds_cnn_m": "x490"}
SCHEMA = ROOT / "docs" / "report-schema.json"


def calib(model: str) -> str:
    return f"{NPZ}:calib_{FEATURES[model]}"


@functools.lru_cache(maxsize=None)
def compiled(model: str, cpu: str = "cortex-m4", weights: str = "per-channel"):
    return compile_model(KWS / f"{model}.onnx", CompileOptions(calib=calib(model), cpu=cpu, weights=weights))
