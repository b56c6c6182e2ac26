"""`kwscc sweep`: float accuracy of a model against weight bit width and additive weight noise.

The study of the ML-KWS seed: weights only are changed, activations stay float.
  bits b >= 2: every Conv/Dense weight tensor in power-of-two formats of b bits, values
               clamp(round(w * 2^dec), -2^(b-1), 2^(b-1) - 1) * 2^-dec, with dec chosen by --rule:
                 mse (default): kwscc's own weight rule, per output channel, the dec among the max
                   rule's and the RULE_CANDIDATES - 1 finer ones (which clip) with the least squared error
                 max: the seed's rule, per tensor, dec_bits = (b - 1) - ceil(log2 max|w|)
  bits b = 1:  sign(w) * 2^round(log2 mean|w|) per tensor with either rule (binary weights with a
               power-of-two scale; per channel it measures far worse: MNIST CNN 24.6 % against 64.6 %)
  noise s:     w + N(0, (s * max|w|)^2) per tensor, averaged over --draws draws (seeded)
Biases are left as they are. The graph is the one kwscc compiles (batch norms folded into weights).
At 2 bits the rules differ most: the max rule's step is as large as max|w| / 2, so most weights of a
layer round to 0 (MNIST CNN: 31 %), while a per-channel choice that clips the largest weights keeps 82 %.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from kwscc.errors import DataError
from kwscc.ir import Graph
from kwscc.ir.execute import run_float

CHUNK = 500
RULES = ("mse", "max")
RULE_CANDIDATES = 6


def _quantize_block(w: np.ndarray, bits: int, rule: str) -> np.ndarray:
    absmax = float(np.abs(w).max()) if w.size else 0.0
    if absmax == 0:
        return w.copy()
    if bits == 1:
        return np.where(w >= 0, 1.0, -1.0) * 2.0 ** round(math.log2(float(np.abs(w).mean())))
    top = 2 ** (bits - 1)
    dec0 = (bits - 1) - math.ceil(math.log2(absmax))
    best = None
    for dec in range(dec0, dec0 + (RULE_CANDIDATES if rule == "mse" else 1)):
        q = np.clip(np.floor(w * 2.0**dec + 0.5), -top, top - 1) / 2.0**dec
        err = float(np.sum((q - w) ** 2))
        if best is None or err < best[0]:
            best = (err, q)
    return best[1]


def quantize_weights_bits(w: np.ndarray, bits: int, rule: str = "mse") -> np.ndarray:
    """Weights w (output channels on axis 0) at `bits` bits by `rule` (see the module docstring)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    w = np.asarray(w, np.float64)
    if rule == "max" or bits == 1:
        return _quantize_block(w, bits, rule)
    return np.stack([_quantize_block(row, bits, rule) for row in w]) if w.ndim > 1 else _quantize_block(w, bits, rule)


def weight_tensors(graph: Graph) -> list[str]:
    return [n.inputs[1] for n in graph.nodes() if n.op in ("Conv", "Dense")]


def accuracy(graph: Graph, feeds: dict[str, np.ndarray], labels: np.ndarray, weights: dict[str, np.ndarray]) -> float:
    saved = {name: graph.tensors[name].data for name in weights}
    try:
        for name, w in weights.items():
            graph.tensors[name].data = w.astype(np.float32)
        count, hits = labels.shape[0], 0
        for start in range(0, count, CHUNK):
            chunk = {k: v[start:start + CHUNK] for k, v in feeds.items()}
            out = run_float(graph, chunk)[graph.outputs[0]]
            hits += int(np.sum(out.reshape(out.shape[0], -1).argmax(axis=1) == labels[start:start + CHUNK]))
        return hits / count
    finally:
        for name, w in saved.items():
            graph.tensors[name].data = w


def sweep(graph: Graph, feeds, labels, bits: list[int], noise: list[float], draws: int = 5, seed: int = 0,
          progress=None, rule: str = "mse") -> list[dict]:
    names = weight_tensors(graph)
    original = {n: graph.tensors[n].data.astype(np.float64) for n in names}
    rows = [{"study": "float", "value": "", "accuracy": accuracy(graph, feeds, labels, original), "std": 0.0}]
    for b in bits:
        acc = accuracy(graph, feeds, labels, {n: quantize_weights_bits(w, b, rule) for n, w in original.items()})
        rows.append({"study": "bits", "value": b, "accuracy": acc, "std": 0.0})
        if progress:
            progress(rows[-1])
    rng = np.random.default_rng(seed)
    for s in noise:
        accs = []
        for _ in range(draws if s > 0 else 1):
            noisy = {n: w + rng.normal(0.0, s * float(np.abs(w).max()), w.shape) for n, w in original.items()}
            accs.append(accuracy(graph, feeds, labels, noisy))
        rows.append({"study": "noise", "value": s, "accuracy": float(np.mean(accs)), "std": float(np.std(accs))})
        if progress:
            progress(rows[-1])
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [f"{'study':8s} {'value':>8s} {'accuracy':>9s} {'std':>7s}"]
    for r in rows:
        lines.append(f"{r['study']:8s} {r['value']!s:>8s} {100 * r['accuracy']:8.2f}% {100 * r['std']:6.2f}")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["study", "value", "accuracy", "std"])
        w.writeheader()
        w.writerows(rows)


def svg_plot(rows: list[dict], title: str) -> str:
    """Two panels: accuracy against weight bits and against weight noise (plain SVG, no dependency)."""
    float_acc = rows[0]["accuracy"]
    panels = [("weight bits", [r for r in rows if r["study"] == "bits"]),
              ("weight noise (std / max|w|)", [r for r in rows if r["study"] == "noise"])]
    width, height, pw, ph, margin = 760, 340, 300, 220, 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{_esc(title)}</text>']
    for i, (label, data) in enumerate(panels):
        x0, y0 = margin + i * (pw + margin + 20), 40
        parts.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
        parts.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 35}" text-anchor="middle">{_esc(label)}</text>')
        for t in range(0, 101, 20):
            y = y0 + ph - ph * t / 100
            parts.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0}" y2="{y:.1f}" stroke="black"/>')
            parts.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{t}</text>')
        y_float = y0 + ph - ph * float_acc
        parts.append(f'<line x1="{x0}" y1="{y_float:.1f}" x2="{x0 + pw}" y2="{y_float:.1f}" stroke="gray" '
                     f'stroke-dasharray="4 3"/>')
        if not data:
            continue
        n = len(data)
        pts = []
        for j, r in enumerate(data):
            x = x0 + pw * (j + 0.5) / n
            y = y0 + ph - ph * r["accuracy"]
            pts.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="steelblue"/>')
            parts.append(f'<text x="{x:.1f}" y="{y0 + ph + 15}" text-anchor="middle">{r["value"]}</text>')
            parts.append(f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle" font-size="10">'
                         f'{100 * r["accuracy"]:.1f}</text>')
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="steelblue"/>')
    parts.append(f'<text x="15" y="{40 + ph / 2}" transform="rotate(-90 15 {40 + ph / 2})" '
                 f'text-anchor="middle">accuracy %</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def parse_numbers(text: str, kind, what: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DataError(f"--{what}: expected comma-separated numbers, got '{text}'") from None
    return values
