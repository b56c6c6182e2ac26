"""Calibration: run the float model (onnxruntime) with every intermediate tensor as an output and
collect each tensor's range. Streams over the samples in batches, keeping only running min/max."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kwscc.ir import Graph
from kwscc.ir.execute import run_float

log = logging.getLogger(__name__)

Ranges = dict[str, tuple[float, float]]
BATCH = 256


def _merge(ranges: Ranges, name: str, value: np.ndarray) -> None:
    if value.size == 0 or value.dtype.kind != "f":
        return
    lo, hi = float(np.min(value)), float(np.max(value))
    if name in ranges:
        lo, hi = min(lo, ranges[name][0]), max(hi, ranges[name][1])
    ranges[name] = (lo, hi)


def _ort_session(model_path: Path, wanted: list[str]):
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    produced = {out for node in model.graph.node for out in node.output}
    present = {o.name for o in model.graph.output}
    for name in wanted:
        if name in produced and name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def onnx_runner(model_path: Path, wanted: list[str]):
    """A function feeds -> {tensor: batch of values} running onnxruntime one sample at a time
    (exported models often hard-code batch 1 in their reshapes)."""
    session = _ort_session(model_path, wanted)
    names = [o.name for o in session.get_outputs()]

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        count = next(iter(feeds.values())).shape[0]
        rows = [session.run(names, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(count)]
        return {name: np.concatenate([row[j] for row in rows]) for j, name in enumerate(names)}

    return run


def activation_names(graph: Graph) -> list[str]:
    names = list(graph.inputs)
    for node in graph.nodes():
        names.extend(node.outputs)
    return names


def collect_ranges(graph: Graph, feeds: dict[str, np.ndarray], model_path: Path | None = None) -> Ranges:
    """min/max of every activation tensor of `graph` over the samples in `feeds`.

    Tensors are matched by name with the original model run in onnxruntime (the passes keep the
    names of surviving tensors); any tensor the original model does not have is measured on
    kwscc's own float execution of the transformed graph.
    """
    wanted = activation_names(graph)
    ranges: Ranges = {}
    ort_run = onnx_runner(model_path, wanted) if model_path is not None and model_path.suffix == ".onnx" else None
    count = next(iter(feeds.values())).shape[0]
    for start in range(0, count, BATCH):
        batch = {k: v[start:start + BATCH] for k, v in feeds.items()}
        values = ort_run(batch) if ort_run else {}
        missing = [n for n in wanted if n not in values]
        if missing:
            own = run_float(graph, batch)
            values.update({n: own[n] for n in missing})
        for name in wanted:
            _merge(ranges, name, values[name])
    log.info("calibrated %d tensors on %d samples", len(ranges), count)
    return ranges
