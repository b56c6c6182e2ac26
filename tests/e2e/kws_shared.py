"""Shared helpers for the end-to-end and generated-C tests: paths of the real KWS models and a
process-wide cache of compiled models, so each (model, options) is compiled once per test session
whichever test directory asks for it (import it as ``tests.e2e.kws_shared``)."""
from __future__ import annotations

import functools
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from kwscc.driver import CompileOptions, Compiled, compile_model

ROOT = Path(__file__).resolve().parents[2]
KWS = ROOT / "examples" / "kws"
NPZ = KWS / "kws_synth.npz"

MODELS = ("dnn_s", "cnn_s", "ds_cnn_s", "ds_cnn_m")
# dnn_s takes the 250-feature input, the convolutional models 490 features
FEATURES = {"dnn_s": "x250", "cnn_s": "x490", "ds_cnn_s": "x490", "ds_cnn_m": "x490"}


def model_path(model: str) -> Path:
    return KWS / f"{model}.onnx"


def calib_spec(model: str) -> str:
    return f"{NPZ}:calib_{FEATURES[model]}"


def split_spec(model: str, split: str = "test") -> str:
    """DATA spec of the test split ("test" = 2000 samples, "test50" = 50 samples)."""
    return f"{NPZ}:{split}_{FEATURES[model]}"


@functools.lru_cache(maxsize=1)
def kws_arrays() -> dict[str, np.ndarray]:
    with np.load(NPZ, allow_pickle=False) as data:
        return {k: data[k] for k in data.files if not k.startswith("meta_") and k != "labels"}


@functools.lru_cache(maxsize=None)
def compiled(model: str, rounding: str = "default", cpu: str = "cortex-m4", weights: str = "per-channel",
             name: str | None = None) -> Compiled:
    """compile_model() of a real KWS model with its calibration split, cached for the session."""
    options = CompileOptions(calib=calib_spec(model), name=name, rounding=rounding, cpu=cpu, weights=weights)
    return compile_model(model_path(model), options)


@functools.lru_cache(maxsize=None)
def legacy_compiled(model: str, softmax: str = "kwscc") -> Compiled:
    """compile_model() of a real KWS model for --backend cmsis-nn-legacy, cached for the session."""
    options = CompileOptions(calib=calib_spec(model), backend="cmsis-nn-legacy", legacy_softmax=softmax)
    return compile_model(model_path(model), options)


def compile_argv(model: str, out: Path | str, *extra: str) -> list[str]:
    return [str(model_path(model)), "-o", str(out), "--calib", calib_spec(model), *extra]


@contextmanager
def chdir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def tree(path: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file under path (directories as b'<dir>')."""
    path = Path(path)
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (b"<dir>" if p.is_dir() else p.read_bytes()) for p in sorted(path.rglob("*"))}


def strip_c_comments(text: str) -> str:
    """C text with /* */ and // comments removed (string and char literals kept)."""
    pattern = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)
    return pattern.sub(lambda m: " " if m.group(0).startswith("/") else m.group(0), text)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
