"""Max / Min with one constant bound become Clip: Max(x, a) = Clip(x, min=a), Min(x, b) = Clip(x, max=b).

Converters write a clamp (an LSTM's cell clip, a hard sigmoid, ReLU6) as MAXIMUM / MINIMUM ops with a
scalar constant, ONNX as Clip. One form lets fuse_activation fold the clamp into the op before it
(CMSIS-NN clamps its output for free) and lets raise_recurrent read a cell clip. A Clip whose input
is a Clip read by nobody else merges with it into one interval. Exact: the same float values.
"""
from __future__ import annotations

import math

import numpy as np

from kwscc.ir import Graph, Node
from kwscc.ops.activation import clip_bounds
from kwscc.passes.rewrite import sole_consumer


def _scalar_bound(graph: Graph, node: Node) -> tuple[str, float] | None:
    """(the activation operand, the constant's value) when one input is a one-value constant that
    does not broadcast the other."""
    out = graph.tensors[node.outputs[0]].shape
    for i, name in enumerate(node.inputs):
        t, other = graph.tensors[name], graph.tensors[node.inputs[1 - i]]
        if t.is_const and not other.is_const and t.data.size == 1 and other.shape == out:
            value = float(np.asarray(t.data, np.float64).reshape(-1)[0])
            return (other.name, value) if math.isfinite(value) else None
    return None


def _to_clip(graph: Graph, node: Node) -> bool:
    found = _scalar_bound(graph, node)
    if found is None or node.attrs.get("act") is not None:
        return False
    x, value = found
    attrs = {"min": value} if node.op == "Max" else {"max": value}
    graph.remove_node(node.name)
    graph.add_node(Node(node.name, "Clip", [x], list(node.outputs), attrs), infer=False)
    return True


def _merge(graph: Graph, node: Node) -> bool:
    inner = graph.producer(node.inputs[0])
    if inner is None or inner.op != "Clip" or sole_consumer(graph, node.inputs[0]) is not node:
        return False
    (lo_a, hi_a), (lo_b, hi_b) = clip_bounds(inner), clip_bounds(node)
    lo, hi = max(lo_a, lo_b), min(hi_a, hi_b)
    if lo > hi:
        return False  # an empty interval: leave the model's own ops
    graph.remove_node(inner.name)
    node.inputs = list(inner.inputs)
    node.attrs = {k: v for k, v in (("min", lo), ("max", hi)) if math.isfinite(v)}
    graph.edges_changed()
    return True


def run(graph: Graph) -> bool:
    changed = False
    for node in graph.nodes():
        if node.op in ("Max", "Min"):
            changed |= _to_clip(graph, node)
    for node in graph.nodes():
        if node.op == "Clip" and len(node.inputs) == 1:
            changed |= _merge(graph, node)
    return changed
