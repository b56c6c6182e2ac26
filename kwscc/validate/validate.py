"""Validation: the compiled C (host build) against kwscc's simulator, bit for bit, and against the
float model (onnxruntime) with accuracy metrics, per layer too."""
from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import numpy as np

from kwscc.data import load_array, load_inputs
from kwscc.driver import Compiled
from kwscc.errors import DataError, UnsupportedError
from kwscc.ir.execute import run_float
from kwscc.frontends import reference_runner
from kwscc.quant.formats import dequantize
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.validate.host import build_host_program, run_host_program

log = logging.getLogger(__name__)
CHUNK = 250


class LayerStats:
    """Running signal/noise/dot-product sums of a quantized tensor against its float reference."""

    def __init__(self) -> None:
        self.signal = self.noise = self.dot = self.qq = 0.0
        self.saturated = self.count = 0

    def add(self, ref: np.ndarray, q: np.ndarray, deq: np.ndarray) -> None:
        ref, deq = ref.astype(np.float64).ravel(), deq.astype(np.float64).ravel()
        self.signal += float(ref @ ref)
        self.noise += float((ref - deq) @ (ref - deq))
        self.dot += float(ref @ deq)
        self.qq += float(deq @ deq)
        self.saturated += int(np.count_nonzero((q == 127) | (q == -128)))
        self.count += q.size

    @property
    def sqnr_db(self) -> float | None:
        if self.noise == 0:
            return None  # exact
        return 10 * math.log10(self.signal / self.noise) if self.signal > 0 else -math.inf

    @property
    def cosine(self) -> float:
        denom = math.sqrt(self.signal * self.qq)
        return self.dot / denom if denom else 1.0


def _labels(spec: str | None, data_spec: str, samples: int) -> np.ndarray | None:
    if spec is None:
        return None
    path = data_spec.rsplit(":", 1)[0] if ":" in data_spec and not Path(data_spec).exists() else data_spec
    labels = load_array(spec if (":" in spec or spec.endswith((".npy", ".npz"))) else f"{path}:{spec}")
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != samples or labels.dtype.kind not in "iu":
        raise DataError(f"labels '{spec}' must be {samples} integers, got shape {list(labels.shape)} {labels.dtype}")
    return labels


def run_compiled(compiled: Compiled, x: np.ndarray, sanitize: bool, target: str,
                 cmsis_nn_dir: str | None) -> tuple[np.ndarray, dict]:
    """int8 outputs of the compiled C on float samples x [samples, input size], and what the run measured."""
    out_size = compiled.graph.tensors[compiled.graph.outputs[0]].size
    if target == "host" and cmsis_nn_dir is None:
        with tempfile.TemporaryDirectory(prefix="kwscc-validate-") as work:
            prog = build_host_program(compiled, Path(work), sanitize=sanitize)
            return run_host_program(prog, x, out_size), {}
    from kwscc.validate.target import run_on_target

    return run_on_target(compiled, x, target, cmsis_nn_dir)


def _simulate_chunks(compiled: Compiled, feeds: dict[str, np.ndarray]):
    """Final simulated outputs and per-layer statistics, streamed in chunks to bound memory."""
    qm = compiled.qm
    layer_nodes = [call.node for call in compiled.calls]
    stats = {node.name: LayerStats() for node in layer_nodes}
    outputs = []
    count = next(iter(feeds.values())).shape[0]
    for start in range(0, count, CHUNK):
        chunk = {k: v[start:start + CHUNK] for k, v in feeds.items()}
        sim = simulate_float_inputs(qm, chunk, compiled.backend.simulate)
        ref = run_float(qm.graph, chunk)
        for node in layer_nodes:
            out = node.outputs[0]
            stats[node.name].add(ref[out], sim[out], dequantize(sim[out], qm.formats[out]))
        outputs.append(sim[qm.graph.outputs[0]])
    return np.concatenate(outputs), stats


def _float_reference(compiled: Compiled, feeds: dict[str, np.ndarray]) -> np.ndarray:
    out = compiled.source.outputs[0]
    return reference_runner(compiled.model_path, [out])(feeds)[out]


def _sqnr(ref: np.ndarray, approx: np.ndarray) -> float | None:
    noise = float(np.sum((ref.astype(np.float64) - approx) ** 2))
    return None if noise == 0 else 10 * math.log10(float(np.sum(ref.astype(np.float64) ** 2)) / noise)


def validate(compiled: Compiled, data_spec: str, labels_spec: str | None = None, sanitize: bool = False,
             target: str = "host", cmsis_nn_dir: str | None = None, reference: str | None = None) -> dict:
    graph = compiled.graph
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedError("validate supports models with one input and one output")
    feeds = load_inputs(data_spec, graph)
    x = feeds[graph.inputs[0]]
    samples = x.shape[0]
    labels = _labels(labels_spec, data_spec, samples)
    c_out, measured = run_compiled(compiled, x.reshape(samples, -1), sanitize, target, cmsis_nn_dir)
    sim_out, stats = _simulate_chunks(compiled, feeds)
    sim_out = sim_out.reshape(samples, -1)
    f_out = _float_reference(compiled, feeds).reshape(samples, -1)
    q_float = dequantize(c_out, compiled.qm.output_format)
    layers = [{"name": name, "op": compiled.graph.node(name).op, "sqnr_db": s.sqnr_db, "cosine": s.cosine,
               "saturated": s.saturated, "elements": s.count} for name, s in stats.items()]
    finite = [layer for layer in layers if layer["sqnr_db"] is not None]
    result = {
        "model": compiled.model_path.name,
        "samples": samples,
        "c_vs_simulator_mismatches": int(np.count_nonzero(c_out != sim_out)),
        "top1_agreement": float(np.mean(np.argmax(c_out, 1) == np.argmax(f_out, 1))),
        "output_sqnr_db": _sqnr(f_out, q_float),
        "output_max_abs_diff": float(np.max(np.abs(f_out - q_float))),
        "rounding": compiled.qm.rounding,
        "cpu": compiled.options.cpu,
        "arena_bytes": compiled.plan.arena_size,
        "worst_layer": min(finite, key=lambda layer: layer["sqnr_db"])["name"] if finite else None,
        "target": target,
        **measured,
        "layers": layers,
    }
    if labels is not None:
        result["float_accuracy"] = float(np.mean(np.argmax(f_out, 1) == labels))
        result["quantized_accuracy"] = float(np.mean(np.argmax(c_out, 1) == labels))
    return result


def format_summary(result: dict) -> str:
    def db(v):
        return "exact" if v is None else f"{v:.1f} dB"

    lines = [f"{'layer':40s} {'op':12s} {'SQNR':>10s} {'cosine':>8s} {'saturated':>10s}"]
    for layer in result["layers"]:
        lines.append(f"{layer['name'][:40]:40s} {layer['op']:12s} {db(layer['sqnr_db']):>10s} "
                     f"{layer['cosine']:8.5f} {layer['saturated']:>10d}")
    lines += [
        "",
        f"samples                     {result['samples']}",
        f"C vs simulator mismatches   {result['c_vs_simulator_mismatches']}",
        f"top-1 agreement with float  {result['top1_agreement']:.4f}",
        f"output SQNR                 {db(result['output_sqnr_db'])}",
        f"worst layer (SQNR)          {result['worst_layer']}",
    ]
    if "float_accuracy" in result:
        lines += [f"float accuracy              {result['float_accuracy']:.4f}",
                  f"quantized accuracy          {result['quantized_accuracy']:.4f}"]
    return "\n".join(lines)
