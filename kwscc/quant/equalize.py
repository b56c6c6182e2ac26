"""Cross-layer equalization with power-of-two scales (offline, exact in float).

For a tensor T = act(conv_a(x)) whose only reader is a depthwise convolution b (one input channel per
output channel) or a Conv/Dense that is not grouped, channel c of T is multiplied by 2^e[c]:
conv_a's output channel c (weights and bias) by 2^e[c] and the reader's weights that read channel c
by 2^-e[c]. ReLU (and any activation whose interval is [0, inf) or unbounded) commutes with a positive
scale, and zero padding stays zero, so the float model computes the same function. The exponents
bring every channel's range to within a factor 2 of the tensor's largest, so the per-tensor
activation format spends its levels on all channels.

With per-channel weight formats the producer's scaled rows quantize to the same int8 values (a
power-of-two scale only moves their format), and so do a depthwise reader's channels: equalizing
a tensor read by a depthwise convolution costs no weight precision at all. A dense reader's
columns are not separately formatted, so scaling them down loses weight bits: `dense_readers`
enables that case (off by default, measured in docs/quantization.md).
"""
from __future__ import annotations

import math

import numpy as np

from kwscc.ir import Graph, Node

MAX_EXP = 4  # at most x16 per channel


def _is_depthwise(node: Node, graph: Graph) -> bool:
    if node.op != "Conv":
        return False
    cin = graph.tensors[node.inputs[0]].shape[3]
    w = graph.tensors[node.inputs[1]].data
    return node.attrs["group"] == cin and w.shape[0] == cin and w.shape[3] == 1


def candidates(graph: Graph, dense_readers: bool = False) -> list[tuple[Node, Node]]:
    """(producer, reader) pairs whose connecting tensor can be equalized."""
    out = []
    for node in graph.nodes():
        if node.op != "Conv" or node.attrs.get("layout", "NHWC") != "NHWC" or node.attrs["group"] != 1:
            continue
        act = node.attrs.get("act")
        if act is not None and (act[0] not in (0.0, -math.inf) or act[1] != math.inf):
            continue
        t = node.outputs[0]
        readers = graph.consumers(t)
        if t in graph.outputs or len(readers) != 1 or readers[0].inputs[0] != t:
            continue
        r = readers[0]
        if _is_depthwise(r, graph) or (dense_readers and r.op == "Conv" and r.attrs["group"] == 1):
            out.append((node, r))
    return out


def equalize(graph: Graph, channel_absmax: dict[str, np.ndarray], dense_readers: bool = False) -> dict[str, np.ndarray]:
    """Scale `graph`'s weights in place; channel_absmax[tensor] = max |value| per channel on the
    calibration data. Returns {tensor: exponents e[c]} of the tensors it changed."""
    changed = {}
    for prod, reader in candidates(graph, dense_readers):
        t = prod.outputs[0]
        m = np.asarray(channel_absmax.get(t), np.float64)
        if m is None or m.ndim != 1 or m.max() <= 0:
            continue
        safe = np.where(m > 0, m, m.max())
        e = np.clip(np.floor(np.log2(m.max() / safe)), 0, MAX_EXP).astype(np.int64)
        if not e.any():
            continue
        s = np.exp2(e.astype(np.float64))
        w = graph.tensors[prod.inputs[1]]
        w.data = (w.data.astype(np.float64) * s.reshape(-1, 1, 1, 1)).astype(np.float32)
        if len(prod.inputs) > 2:
            b = graph.tensors[prod.inputs[2]]
            b.data = (b.data.astype(np.float64) * s).astype(np.float32)
        rw = graph.tensors[reader.inputs[1]]
        if _is_depthwise(reader, graph):  # OHWI with I = 1: output channel c reads channel c
            rw.data = (rw.data.astype(np.float64) / s.reshape(-1, 1, 1, 1)).astype(np.float32)
        else:  # OHWI: input channel is the last axis
            rw.data = (rw.data.astype(np.float64) / s.reshape(1, 1, 1, -1)).astype(np.float32)
        changed[t] = e
    return changed
