"""Calibration: run the float model (onnxruntime) with every intermediate tensor as an output and
collect each tensor's range. Streams over the samples in batches, keeping only running min/max."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kwscc.frontends import reference_runner
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


def activation_names(graph: Graph) -> list[str]:
    names = list(graph.inputs)
    for node in graph.nodes():
        names.extend(node.outputs)
    return names


def collect_ranges(graph: Graph, feeds: dict[str, np.ndarray], model_path: Path | None = None) -> Ranges:
    """min/max of every activation tensor of `graph` over the samples in `feeds`.

    Tensors are matched by name with the original model run by its framework's runtime
    (onnxruntime for ONNX; the passes keep the names of surviving tensors); any tensor the
    original model does not have is measured on kwscc's own float execution of the graph.
    """
    wanted = activation_names(graph)
    ranges: Ranges = {}
    ort_run = reference_runner(model_path, wanted) if model_path is not None else None
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
