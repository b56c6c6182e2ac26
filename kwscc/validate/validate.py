"""Validation: the compiled C (host build) against kwscc's simulator, bit for bit, and against the
float model (onnxruntime) with accuracy metrics, per layer too."""
from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import numpy as np

from kwscc import progress
from kwscc.data import load_array, load_inputs
from kwscc.driver import Compiled
from kwscc.errors import DataError, UnsupportedError
from kwscc.ir.execute import run_float
from kwscc.naming import printable
from kwscc.frontends import read_model, reference_label, reference_runner
from kwscc.quant.formats import dequantize
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.streaming import as_calls, calls_per_clip, simulate_stream
from kwscc.validate.host import build_host_program, run_host_program

log = logging.getLogger(__name__)
CHUNK = 250
MAX_LABEL_NAMES_BYTES = 1 << 20


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
        # an int8 extreme that means zero (an unsigned tensor's -128) is not saturation
        self.saturated += int(np.count_nonzero(((q.ravel() == 127) | (q.ravel() == -128)) & (deq != 0)))
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

    return run_on_target(compiled, x, target, cmsis_nn_dir, sanitize=sanitize)


def _simulate_chunks(compiled: Compiled, feeds: dict[str, np.ndarray]):
    """Final simulated outputs and per-layer statistics, streamed in chunks to bound memory."""
    qm = compiled.qm
    layer_nodes = [call.node for call in compiled.calls]
    stats = {node.name: LayerStats() for node in layer_nodes}
    outputs = []
    count = next(iter(feeds.values())).shape[0]
    with progress.bar(count, "simulating") as shown:
        for start in range(0, count, CHUNK):
            chunk = {k: v[start:start + CHUNK] for k, v in feeds.items()}
            sim = simulate_float_inputs(qm, chunk, compiled.backend.simulate)
            ref = run_float(qm.graph, chunk)
            for node in layer_nodes:
                out = node.outputs[0]
                stats[node.name].add(ref[out], sim[out], dequantize(sim[out], qm.formats[out]))
            outputs.append(sim[qm.graph.outputs[0]])
            shown.update(next(iter(chunk.values())).shape[0])
    return np.concatenate(outputs), stats


def _float_reference(compiled: Compiled, feeds: dict[str, np.ndarray]) -> np.ndarray:
    out = compiled.source.outputs[0]
    return reference_runner(compiled.model_path, [out])(feeds)[out]


def _reference_model(reference: str, x: np.ndarray, c_out: np.ndarray, q_float: np.ndarray,
                     f_out: np.ndarray, labels: np.ndarray | None) -> dict:
    """--reference FLOAT_MODEL: the compiled program (and the model's own runtime, e.g. LiteRT running
    an int8 model) against another model of the same network, typically its float original."""
    ref_graph = read_model(reference)
    if len(ref_graph.inputs) != 1 or len(ref_graph.outputs) != 1:
        raise UnsupportedError(f"reference model {Path(reference).name}: needs one input and one output")
    name, out = ref_graph.inputs[0], ref_graph.outputs[0]
    sample = ref_graph.tensors[name].shape[1:]
    if int(np.prod(sample)) != x[0].size:
        raise DataError(f"reference model {Path(reference).name}: input '{name}' takes {int(np.prod(sample))} "
                        f"values per sample, the compiled model {x[0].size}")
    r_out = reference_runner(reference, [out])({name: x.reshape((x.shape[0],) + tuple(sample))})[out]
    r_out = r_out.reshape(x.shape[0], -1)
    if r_out.shape[1] != c_out.shape[1]:
        raise DataError(f"reference model {Path(reference).name}: {r_out.shape[1]} outputs, the compiled "
                        f"model {c_out.shape[1]}")
    result = {
        "reference_model": Path(reference).name,
        "reference_top1_agreement": float(np.mean(np.argmax(c_out, 1) == np.argmax(r_out, 1))),
        "reference_output_sqnr_db": _sqnr(r_out, q_float),
        "model_vs_reference_top1_agreement": float(np.mean(np.argmax(f_out, 1) == np.argmax(r_out, 1))),
    }
    if labels is not None:
        result["reference_accuracy"] = float(np.mean(np.argmax(r_out, 1) == labels))
    return result


def _sqnr(ref: np.ndarray, approx: np.ndarray) -> float | None:
    noise = float(np.sum((ref.astype(np.float64) - approx) ** 2))
    return None if noise == 0 else 10 * math.log10(float(np.sum(ref.astype(np.float64) ** 2)) / noise)


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> list[list[int]]:
    """Confusion matrix: rows are the true labels, columns the predictions."""
    m = np.zeros((classes, classes), np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m.tolist()


def _split_results(split: np.ndarray, labels: np.ndarray, f_top: np.ndarray, q_top: np.ndarray,
                   classes: int) -> list[dict]:
    out = []
    for value in np.unique(split):
        sel = split == value
        out.append({
            "split": value.item(), "samples": int(sel.sum()),
            "float_accuracy": float(np.mean(f_top[sel] == labels[sel])),
            "quantized_accuracy": float(np.mean(q_top[sel] == labels[sel])),
            "top1_agreement": float(np.mean(f_top[sel] == q_top[sel])),
            "confusion_float": confusion(labels[sel], f_top[sel], classes),
            "confusion_quantized": confusion(labels[sel], q_top[sel], classes),
        })
    return out


def _split_ids(spec: str, data_spec: str, samples: int) -> np.ndarray:
    path = data_spec.rsplit(":", 1)[0] if ":" in data_spec and not Path(data_spec).exists() else data_spec
    ids = np.asarray(load_array(spec if (":" in spec or spec.endswith((".npy", ".npz"))) else f"{path}:{spec}"))
    ids = ids.reshape(-1)
    if ids.shape[0] != samples or ids.dtype.kind not in "iuUSb":
        raise DataError(f"split '{spec}' must be {samples} ids (integers or strings), got shape "
                        f"{list(ids.shape)} {ids.dtype}")
    return ids


def read_label_names(path: str) -> list[str]:
    """Class names, one per line (blank lines and surrounding spaces ignored)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_LABEL_NAMES_BYTES + 1)
    except OSError as exc:
        raise DataError(f"cannot read --label-names {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_LABEL_NAMES_BYTES:
        raise DataError(f"--label-names {path}: larger than {MAX_LABEL_NAMES_BYTES:,} bytes; expected one class name a line")
    try:
        names = [line.strip() for line in raw.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise DataError(f"--label-names {path}: not UTF-8 text") from None
    if not names:
        raise DataError(f"--label-names {path}: no names in it")
    return names


def validate(compiled: Compiled, data_spec: str, labels_spec: str | None = None, sanitize: bool = False,
             target: str = "host", cmsis_nn_dir: str | None = None, reference: str | None = None,
             split_spec: str | None = None, label_names: list[str] | None = None) -> dict:
    graph = compiled.graph
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedError("validate supports models with one input and one output")
    streaming = compiled.qm.streaming is not None
    feeds = load_inputs(data_spec, compiled.source if streaming else graph)  # streaming: whole clips
    x = next(iter(feeds.values()))
    samples = x.shape[0]
    labels = _labels(labels_spec, data_spec, samples)
    split = _split_ids(split_spec, data_spec, samples) if split_spec is not None else None
    if split is not None and labels is None:
        raise DataError("--split needs --labels")
    outputs = compiled.graph.tensors[graph.outputs[0]].size
    if label_names is not None and labels is not None and len(label_names) != max(int(labels.max()) + 1, outputs):
        raise DataError(f"--label-names: {len(label_names)} names for {max(int(labels.max()) + 1, outputs)} classes "
                        f"(the model's {outputs} outputs, labels up to {int(labels.max())})")
    with progress.step(f"building and running the C ({target})"):
        c_out, measured = run_compiled(compiled, as_calls(compiled.qm, x), sanitize, target, cmsis_nn_dir)
    if streaming:  # every call's output against the simulator; each clip's last call against the float model
        sim_out, stats = simulate_stream(compiled.qm, x), {}
    else:
        sim_out, stats = _simulate_chunks(compiled, feeds)
    mismatches = int(np.count_nonzero(c_out != sim_out.reshape(c_out.shape)))
    c_out = c_out.reshape(samples, calls_per_clip(compiled.qm), -1)[:, -1]
    with progress.step("running the float model"):
        f_out = _float_reference(compiled, feeds).reshape(samples, -1)
    q_float = dequantize(c_out, compiled.qm.output_format)
    layers = [{"index": i, "name": name, "op": compiled.graph.node(name).op, "sqnr_db": s.sqnr_db, "cosine": s.cosine,
               "saturated": s.saturated, "elements": s.count} for i, (name, s) in enumerate(stats.items())]
    finite = [layer for layer in layers if layer["sqnr_db"] is not None]
    result = {
        "model": compiled.model_path.name,
        "samples": samples,
        # what top1_agreement / float_accuracy compare with: the model's own runtime on the model as given
        "compared_with": reference_label(compiled.model_path, bool(compiled.source.recorded_ranges)),
        "c_vs_simulator_mismatches": mismatches,
        "calls_per_clip": calls_per_clip(compiled.qm),
        "streaming_frames": compiled.qm.streaming.frames if streaming else None,
        "top1_agreement": float(np.mean(np.argmax(c_out, 1) == np.argmax(f_out, 1))),
        "output_sqnr_db": _sqnr(f_out, q_float),
        "output_max_abs_diff": float(np.max(np.abs(f_out - q_float))),
        "rounding": compiled.qm.rounding,
        "quantization_steps": list(compiled.qm.steps),
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
        classes = max(int(labels.max()) + 1, c_out.shape[1])
        result["confusion_float"] = confusion(labels, np.argmax(f_out, 1), classes)
        result["confusion_quantized"] = confusion(labels, np.argmax(c_out, 1), classes)
        if label_names is not None:
            result["label_names"] = list(label_names)
        if split is not None:
            result["splits"] = _split_results(split, labels, np.argmax(f_out, 1), np.argmax(c_out, 1), classes)
    if reference is not None:
        result.update(_reference_model(reference, x.reshape(samples, -1), c_out, q_float, f_out, labels))
    return result


def format_summary(result: dict) -> str:
    def db(v):
        return "exact" if v is None else f"{v:.1f} dB"

    lines = [f"{'#':>3s} {'layer':40s} {'op':12s} {'SQNR':>10s} {'cosine':>8s} {'saturated':>10s}"]
    for layer in result["layers"]:
        lines.append(f"{layer['index']:3d} {layer['name'][:40]:40s} {layer['op']:12s} {db(layer['sqnr_db']):>10s} "
                     f"{layer['cosine']:8.5f} {layer['saturated']:>10d}")
    if result.get("streaming_frames"):  # no per-layer statistics
        lines = [f"streaming: {result['calls_per_clip']} calls per clip, the state reset between clips; every call "
                 "compared with the simulator, each clip's last call with the model"]
    lines += [
        "",
        f"samples                     {result['samples']}",
        f"C vs simulator mismatches   {result['c_vs_simulator_mismatches']}",
        f"compared with               {result['compared_with']}",
        f"top-1 agreement with it     {result['top1_agreement']:.4f}",
        f"output SQNR                 {db(result['output_sqnr_db'])}",
        f"worst layer (SQNR)          {result['worst_layer']}",
        f"quantization steps          {', '.join(result['quantization_steps']) or 'none (no calibration data)'}",
    ]
    if "instructions_per_inference" in result:  # --target cortex-m*: what the emulated core measured
        from kwscc.validate.target import format_measurements

        lines += format_measurements(result)
    if "float_accuracy" in result:
        lines += [f"{'its accuracy':28s}{result['float_accuracy']:.4f}",
                  f"quantized accuracy          {result['quantized_accuracy']:.4f}"]
    for part in result.get("splits", []):
        lines += ["", f"split {part['split']!s:10s} {part['samples']:6d} samples   float accuracy "
                      f"{part['float_accuracy']:.4f}   quantized accuracy {part['quantized_accuracy']:.4f}   "
                      f"agreement {part['top1_agreement']:.4f}",
                  "confusion (quantized program; rows = labels, columns = predictions):"]
        lines += format_confusion(part["confusion_quantized"], result.get("label_names"))
    if "splits" not in result and "confusion_quantized" in result:
        lines += ["", "confusion (quantized program; rows = labels, columns = predictions):"]
        lines += format_confusion(result["confusion_quantized"], result.get("label_names"))
    if "reference_model" in result:
        lines += [f"reference model             {result['reference_model']}",
                  f"top-1 agreement with it     {result['reference_top1_agreement']:.4f}",
                  f"output SQNR against it      {db(result['reference_output_sqnr_db'])}",
                  f"model's runtime vs it       {result['model_vs_reference_top1_agreement']:.4f}"]
        if "reference_accuracy" in result:
            lines.append(f"reference accuracy          {result['reference_accuracy']:.4f}")
    return "\n".join(lines)


def format_confusion(matrix: list[list[int]], names: list[str] | None = None) -> list[str]:
    """Rows = labels, columns = predictions, headed by class numbers or by `names` (shown safely)."""
    heads = [printable(n) for n in names] if names else [str(j) for j in range(len(matrix))]
    width = max(4, len(str(max((max(row) for row in matrix), default=0))) + 1, *(len(h) + 1 for h in heads))
    first = max(5, *(len(h) for h in heads))
    head = " " * (first + 1) + "".join(f"{h:>{width}s}" for h in heads)
    return [head] + [f"{heads[i]:>{first}s} " + "".join(f"{v:>{width}d}" for v in row) for i, row in enumerate(matrix)]
