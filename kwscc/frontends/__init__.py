"""Model readers: each turns a model file into a kwscc Graph; chosen by file suffix."""
from __future__ import annotations

from pathlib import Path

from kwscc.errors import ModelError
from kwscc.ir import Graph


def read_model(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from kwscc.frontends import onnx_reader

        return onnx_reader.read(path, input_shapes)
    raise ModelError(f"{path.name}: unknown model format '{suffix}' (supported: .onnx)")
