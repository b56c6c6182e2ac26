"""Calibration: run the float model (its framework's runtime, onnxruntime for ONNX) with every
intermediate tensor as an output and summarise each tensor's values. Streams over the samples in
batches; per tensor it keeps running min/max and, for the histogram methods, a fixed-size histogram
(kwscc.quant.methods), so memory does not grow with the number of samples.

The summaries can be saved as JSON and loaded again (`save_ranges` / `load_ranges`): a large
calibration runs once, and any method (max, percentile, kl, mse) can be applied to the saved file.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import MutableMapping
from pathlib import Path

import numpy as np

from kwscc import progress
from kwscc.data import DataSource
from kwscc.errors import DataError
from kwscc.frontends import reference_runner
from kwscc.ir import Graph
from kwscc.ops.recurrent import every_step, states_span_steps
from kwscc.quant.from_int8 import own_recurrence
from kwscc.quant.methods import DEFAULT_METHOD, METHODS, TensorStats, apply_method, summary

log = logging.getLogger(__name__)

Ranges = dict[str, tuple[float, float]]
Summaries = dict[str, dict]
BATCH = 256
RANGES_FORMAT = "kwscc-ranges-1"


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


def _origins(graph: Graph, wanted: list[str]) -> dict[str, tuple[str, np.ndarray | None]]:
    """The model-file tensor (and element order) of every wanted tensor that has one; the others are
    computed by kwscc's float execution, never matched by shape, as are the tensors an int8 file
    computes through its own integer recurrence (kwscc.quant.from_int8.own_recurrence)."""
    plan = {}
    own = own_recurrence(graph) if graph.recorded_ranges else set()  # an int8 file's own recurrence
    for name in wanted:
        if name in graph.origins and name not in own:
            plan[name] = graph.origins[name]
        else:
            log.debug("tensor '%s' has no counterpart in the model file: computed by kwscc", name)
    return plan


class BatchValues(MutableMapping):
    """One batch's float values of the wanted tensors under kwscc's names and in kwscc's layout.

    A tensor the runtime computed is kept as the runtime gave it and brought into kwscc's element
    order (its provenance, kwscc.ir.Graph.origins) only when read: order-free statistics read
    `unordered`, a few kept samples `rows`, so a calibration never permutes whole batches."""

    def __init__(self, graph: Graph, origins: dict, runtime: dict[str, np.ndarray]) -> None:
        self._ready: dict[str, np.ndarray] = {}
        self._raw: dict[str, tuple[np.ndarray, np.ndarray, tuple[int, ...]]] = {}  # name: (flat, index, shape)
        for name, (source, index) in origins.items():
            v = runtime.get(source)
            if v is None:
                continue
            t = graph.tensors[name]
            per_sample = t.size // max(t.shape[0], 1)
            if v.ndim == 0 or v.size != v.shape[0] * per_sample:
                log.debug("tensor '%s': the runtime's '%s' has shape %s: computed by kwscc", name, source, v.shape)
                continue
            shape = (v.shape[0],) + t.shape[1:]
            if index is None:
                self._ready[name] = v.reshape(shape)
            else:
                self._raw[name] = (v.reshape(v.shape[0], per_sample), index, shape)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._ready:
            flat, index, shape = self._raw.pop(name)
            self._ready[name] = np.take(flat, index, axis=1).reshape(shape)
        return self._ready[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._raw.pop(name, None)
        self._ready[name] = value

    def __delitem__(self, name: str) -> None:
        if self._raw.pop(name, None) is None:
            del self._ready[name]

    def __contains__(self, name) -> bool:
        return name in self._ready or name in self._raw

    def __iter__(self):
        return iter([*self._ready, *self._raw])

    def __len__(self) -> int:
        return len(self._ready) + len(self._raw)

    def unordered(self, name: str) -> np.ndarray:
        """The tensor's values, samples first, each sample's elements in any order (for min, max, histograms)."""
        return self._raw[name][0] if name in self._raw else self[name]

    def rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """The values of some samples, in kwscc's layout, without permuting the others."""
        if name in self._raw:
            flat, index, shape = self._raw[name]
            return np.take(flat[rows], index, axis=1).reshape((len(rows),) + shape[1:])
        return self._ready[name][rows]


def _run_missing(graph: Graph, values: dict[str, np.ndarray]) -> None:
    """kwscc's float execution of only the nodes whose outputs `values` lacks (inputs in kwscc layout)."""
    from kwscc.ops import REGISTRY

    for node in graph.nodes():
        if all(out in values for out in node.outputs):
            continue
        args = [values[n] if n in values else graph.tensors[n].data for n in node.inputs]
        values.update(zip(node.outputs, REGISTRY[node.op].run(node, args)))


Feeds = dict[str, np.ndarray] | DataSource  # samples in memory, or streamed from a data file


def sample_count(feeds: Feeds) -> int:
    return feeds.count if isinstance(feeds, DataSource) else next(iter(feeds.values())).shape[0]


def input_batches(feeds: Feeds, size: int):
    """{input: samples} `size` samples at a time."""
    if isinstance(feeds, DataSource):
        yield from feeds.batches(size)
        return
    for start in range(0, sample_count(feeds), size):
        yield {k: np.asarray(v[start:start + size], np.float32) for k, v in feeds.items()}


def float_batches(graph: Graph, feeds: Feeds, model_path: Path | None, wanted: list[str],
                  batch: int = BATCH, label: str = "calibrating"):
    """Yield (start, inputs, BatchValues: tensor -> float values in kwscc's layout) for each batch of
    samples: the model's own runtime for the tensors the file has (matched by provenance), kwscc's
    float execution of the graph for the others (tensors the passes created)."""
    origins = _origins(graph, wanted) if model_path is not None else {}
    run = reference_runner(model_path, sorted({s for s, _ in origins.values()})) if model_path is not None else None
    start = 0
    with progress.bar(sample_count(feeds), label) as shown:
        for chunk in input_batches(feeds, batch):
            values = BatchValues(graph, origins, run(chunk) if run else {})
            if any(n not in values for n in wanted):
                values.update(chunk)
                _run_missing(graph, values)
            yield start, chunk, values
            n = next(iter(chunk.values())).shape[0]
            start += n
            shown.update(n)


def collect_stats(graph: Graph, feeds: Feeds, model_path: Path | None = None,
                  histogram: bool = True, observe=None) -> dict[str, TensorStats]:
    """Streamed TensorStats of every activation tensor of `graph` over the samples in `feeds`;
    observe(start, inputs, values), when given, sees every batch (to keep some samples' values)."""
    wanted = activation_names(graph)
    stats = {name: TensorStats(histogram) for name in wanted}
    stepped = [node for node in graph.nodes() if states_span_steps(node)]
    for start, chunk, values in float_batches(graph, feeds, model_path, wanted):
        for name in wanted:
            stats[name].add(values.unordered(name))
        for node in stepped:  # the state's format holds every step's state, not only the last one
            stats[node.outputs[0]].add(every_step(node, [values[n] if n in values else graph.tensors[n].data
                                                         for n in node.inputs]))
        if observe is not None:
            observe(start, chunk, values)
    log.info("calibrated %d tensors on %d samples", len(stats), sample_count(feeds))
    return stats


def calibrate(graph: Graph, feeds: Feeds, model_path: Path | None = None,
              observe=None) -> Summaries:
    """Per-tensor summaries (min, max and every method's scores) on the calibration samples."""
    return {name: summary(s) for name, s in collect_stats(graph, feeds, model_path, observe=observe).items()}


def ranges_for(summaries: Summaries, method: str = DEFAULT_METHOD) -> Ranges:
    """The range of every tensor that `method` chooses (see kwscc.quant.methods)."""
    if method not in METHODS:
        raise DataError(f"unknown calibration method '{method}' (available: {', '.join(METHODS)})")
    return {name: apply_method(method, s) for name, s in summaries.items()}


def collect_ranges(graph: Graph, feeds: Feeds, model_path: Path | None = None,
                   method: str = "max") -> Ranges:
    """Range of every activation tensor of `graph` over the samples in `feeds`, as `method` chooses it
    ("max": the exact min/max).

    Tensors are matched by name with the original model run by its framework's runtime
    (onnxruntime for ONNX; the passes keep the names of surviving tensors); any tensor the
    original model does not have is measured on kwscc's own float execution of the graph.
    """
    if method == "max":
        stats = collect_stats(graph, feeds, model_path, histogram=False)
        return {name: (s.lo, s.hi) if s.count else (0.0, 0.0) for name, s in stats.items()}
    return ranges_for(calibrate(graph, feeds, model_path), method)


# ------------------------------------------------------------------------------------ ranges JSON


def save_ranges(path: str | Path, summaries: Summaries, meta: dict | None = None) -> None:
    doc = {"format": RANGES_FORMAT, **(meta or {}), "tensors": summaries}
    try:
        Path(path).write_text(json.dumps(doc, indent=1, allow_nan=False, default=float) + "\n")
    except OSError as exc:
        raise DataError(f"cannot write ranges file {path}: {exc}") from None


def load_ranges(path: str | Path, graph: Graph | None = None) -> Summaries:
    """Summaries from a ranges JSON (this module's format, or a plain {tensor: [min, max]} map)."""
    try:
        doc = json.loads(Path(path).read_text())
    except RecursionError:
        raise DataError(f"cannot read ranges file {path}: JSON nested too deeply") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read ranges file {path}: {exc}") from None
    tensors = doc.get("tensors", doc) if isinstance(doc, dict) else None
    if not isinstance(tensors, dict):
        raise DataError(f"{path}: expected a JSON object of tensors")
    out: Summaries = {}
    for name, entry in tensors.items():
        if isinstance(entry, (list, tuple)) and len(entry) == 2:
            entry = {"min": entry[0], "max": entry[1]}
        if not (isinstance(entry, dict) and "min" in entry and "max" in entry):
            raise DataError(f"{path}: tensor '{name}' needs a min and a max")
        lo, hi = entry["min"], entry["max"]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (lo, hi)) or lo > hi:
            raise DataError(f"{path}: tensor '{name}' has an invalid range [{lo}, {hi}]")
        out[name] = entry
    if graph is not None:
        missing = [n for n in activation_names(graph) if n not in out]
        if missing:
            raise DataError(f"{path} has no range for {len(missing)} tensor(s) of this model, e.g. "
                            f"'{missing[0]}': recalibrate (delete the file) or check the model")
    return out
