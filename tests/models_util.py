"""Helpers for tests that build small ONNX models in code and compare kwscc with onnxruntime."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from kwscc.frontends import read_model
from kwscc.ir import Graph
from kwscc.ir.execute import run_float

ROOT = Path(__file__).resolve().parent.parent
KWS = ROOT / "examples" / "kws"

Shape = Sequence[int | str | None]


def make_model(
    nodes: Iterable[onnx.NodeProto],
    inputs: Mapping[str, Shape],
    outputs: Sequence[str] | Mapping[str, Shape | None],
    initializers: Mapping[str, np.ndarray] | None = None,
    opset: int = 13,
    infer: bool = True,
    check: bool = True,
) -> onnx.ModelProto:
    """A float32 ONNX model; output types are filled in by ONNX shape inference unless given."""
    inits = []
    for name, value in (initializers or {}).items():
        value = np.asarray(value)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        inits.append(numpy_helper.from_array(value, name))
    in_vis = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()]
    if isinstance(outputs, Mapping):
        out_vis = [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) if s is not None else onnx.ValueInfoProto(name=n)
            for n, s in outputs.items()
        ]
    else:
        out_vis = [onnx.ValueInfoProto(name=n) for n in outputs]
    graph = helper.make_graph(list(nodes), "test_graph", in_vis, out_vis, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)  # readable by the installed onnxruntime
    if infer:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    if check:
        onnx.checker.check_model(model, full_check=True)
    return model


def save(model: onnx.ModelProto, directory: Path, name: str = "model.onnx") -> Path:
    path = Path(directory) / name
    onnx.save(model, str(path))
    return path


def ort_run(model: onnx.ModelProto | Path, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(feeds))


def kwscc_outputs(graph: Graph, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    values = run_float(graph, dict(feeds))
    return [values[name] for name in graph.outputs]


def random_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard-normal float32 data for each graph input that is not an initializer (batch 1 for symbolic dims)."""
    rng = np.random.default_rng(seed)
    init_names = {i.name for i in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def read_and_compare(
    model: onnx.ModelProto,
    tmp_path: Path,
    feeds: Mapping[str, np.ndarray] | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    name: str = "model.onnx",
) -> Graph:
    """Save `model`, read it with kwscc, verify the graph and check run_float against onnxruntime."""
    path = save(model, tmp_path, name)
    graph = read_model(path)
    graph.verify()
    feeds = dict(feeds) if feeds is not None else random_feeds(model)
    expected = ort_run(model, feeds)
    got = kwscc_outputs(graph, feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape, f"shape {g.shape} != onnxruntime {e.shape}"
        np.testing.assert_allclose(g, e, atol=atol, rtol=rtol)
    return graph
