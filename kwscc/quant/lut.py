"""Elementwise activations as int8 lookup tables, computed offline from the power-of-two formats.

For input format (n_in, z_in), output format (n_out, z_out) and the op's real function f:
  table[c][q + 128] = clamp(floor(f((q - z_in) * 2^-n_in) * 2^n_out + 0.5) + z_out, -128, 127)
for every int8 q, with f in float64 (c: the channel, for a per-channel PRelu slope; else one row).
The generated C and the simulator index the same table, so they agree bit for bit, and each output
is its exact input's result rounded once: no error beyond the two formats themselves. A table costs
256 bytes of flash per row.
"""
from __future__ import annotations

import numpy as np

from kwscc.ir import Graph, Node
from kwscc.ops import REGISTRY
from kwscc.quant.formats import Format, frac_bits_for, round_half_up

GRID = np.arange(-128, 128, dtype=np.int64)  # every int8 input, in table order


def output_format(lo: float, hi: float) -> Format:
    """Symmetric Qm.n for the calibrated range; [0, hi] ranges get zero point -128 (one more bit)."""
    if lo >= 0:
        return Format(frac_bits_for(hi) + 1, -128)
    return Format(frac_bits_for(max(abs(lo), abs(hi))))


def channel_slopes(graph: Graph, node: Node) -> np.ndarray | None:
    """PRelu's slope as one value per channel (last axis), or one value: None if it varies otherwise."""
    x = graph.tensors[node.inputs[0]].shape
    slope = np.broadcast_to(graph.tensors[node.inputs[1]].data, (1,) + tuple(x[1:]))
    rows = slope.reshape(-1, x[-1]) if len(x) > 1 else slope.reshape(1, -1)
    if not np.all(rows == rows[:1]):
        return None
    per_channel = rows[0].astype(np.float64)
    return per_channel[:1] if np.all(per_channel == per_channel[0]) else per_channel


def table(graph: Graph, node: Node, in_fmt: Format, out_fmt: Format) -> np.ndarray:
    """int8 [rows, 256]: row c maps channel c's int8 inputs to int8 outputs (one row unless PRelu varies)."""
    x = (GRID - in_fmt.zero_point) * 2.0 ** -in_fmt.frac
    if node.op == "PRelu":
        slopes = channel_slopes(graph, node)
        y = np.where(x[None, :] >= 0, x[None, :], slopes[:, None] * x[None, :])
    else:
        y = REGISTRY[node.op].run(node, [x])[0][None, :]
    with np.errstate(invalid="ignore"):
        q = round_half_up(np.nan_to_num(y * 2.0**out_fmt.frac, posinf=1e9, neginf=-1e9)) + out_fmt.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def lookup(rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """What the C computes: out[i] = rows[i % rows.shape[0]][x[i] + 128] over the channels-last x."""
    index = x.astype(np.int16) + 128
    if rows.shape[0] == 1:
        return rows[0][index]
    return rows[np.arange(rows.shape[0]), index]
