"""Model readers: each turns a model file into a kwscc Graph; chosen by file suffix."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import numpy as np

from kwscc.check.graph import check_graph
from kwscc.errors import ModelError
from kwscc.ir import Graph


# suffix -> (reader module with read(path, input_shapes), module with reference_runner(path, tensors))
READERS = {
    ".onnx": ("kwscc.frontends.onnx_reader", "kwscc.frontends.onnx_runtime"),
    ".tflite": ("kwscc.frontends.tflite_reader", "kwscc.frontends.litert_runtime"),
}
RUNTIMES = {".onnx": "onnxruntime", ".tflite": "LiteRT"}


def _modules(path: Path) -> tuple[str, str]:
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise ModelError(f"{path.name}: unknown model format '{suffix}' (supported: {', '.join(READERS)})")
    return READERS[suffix]


def read_model(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    reader = importlib.import_module(_modules(path)[0])
    with np.errstate(all="ignore"):  # values folded while reading are checked by check_graph
        graph = reader.read(path, input_shapes)
    check_graph(graph, "in the model as read")
    graph.record_sources()
    return graph


def reference_label(path: str | Path, quantized: bool) -> str:
    """What the model's own runtime computes, named honestly: "LiteRT int8" for a quantized model,
    "the float model (onnxruntime)" for a float one."""
    path = Path(path)
    _modules(path)  # a known format
    runtime = RUNTIMES[path.suffix.lower()]
    return f"{runtime} int8" if quantized else f"the float model ({runtime})"


def reference_runner(path: str | Path, tensors: list[str]) -> Callable[[dict], dict]:
    """feeds -> {tensor name: batch of float values} from the model's own runtime, for every
    tensor of `tensors` that the original model has (and its outputs)."""
    path = Path(path)
    return importlib.import_module(_modules(path)[1]).reference_runner(path, tensors)
