"""A hard sigmoid written out as arithmetic becomes one HardSigmoid (an int8 lookup table):
  Clip(a * x + b, 0, 1)              (TF / Keras 2: MUL, ADD, MAXIMUM 0, MINIMUM 1)
  Clip(x + c, 0, k) * s  with k s = 1   (Keras 3 / PyTorch: relu6(x + 3) / 6)
both are HardSigmoid(x) with alpha = a, beta = b (alpha = s, beta = c s). Old Keras LSTM and GRU cells
default to hard-sigmoid gates; as plain ops each gate would be three rounded int8 ops, as a table it
is one exact lookup. Runs after clip_bounds (MAXIMUM / MINIMUM are then Clips) and before
fuse_activation (which would fold the Clip into the Add). Exact in float.
"""
from __future__ import annotations

import math

import numpy as np

from kwscc.ir import Graph, Node
from kwscc.ops.activation import clip_bounds
from kwscc.passes.rewrite import sole_consumer


def _scalar_op(graph: Graph, tensor: str, op: str) -> tuple[Node, str, float] | None:
    """(node, its activation input, the constant) when `tensor` is op(x, c) or op(c, x) with one scalar
    constant c, no fused clamp, and x of the output's shape."""
    node = graph.producer(tensor)
    if node is None or node.op != op or node.attrs.get("act") is not None or len(node.inputs) != 2:
        return None
    out = graph.tensors[tensor].shape
    for i in (0, 1):
        c, x = graph.tensors[node.inputs[i]], graph.tensors[node.inputs[1 - i]]
        if c.is_const and c.data.size == 1 and not x.is_const and x.shape == out:
            value = float(np.asarray(c.data, np.float64).reshape(-1)[0])
            return (node, x.name, value) if math.isfinite(value) else None
    return None


def _only_reader(graph: Graph, tensor: str, node: Node) -> bool:
    return sole_consumer(graph, tensor) is node


def _replace(graph: Graph, chain: list[Node], x: str, alpha: float, beta: float) -> None:
    """The chain's last node (its name and output kept) becomes HardSigmoid(x); the others go."""
    for node in chain:
        graph.remove_node(node.name)
    last = chain[-1]
    graph.add_node(Node(last.name, "HardSigmoid", [x], list(last.outputs), {"alpha": alpha, "beta": beta}),
                   infer=False)


def _affine_then_clip(graph: Graph, clip: Node) -> bool:
    """Clip(a * x + b, 0, 1)."""
    if clip_bounds(clip) != (0.0, 1.0):
        return False
    add = _scalar_op(graph, clip.inputs[0], "Add")
    if add is None or not _only_reader(graph, clip.inputs[0], clip):
        return False
    mul = _scalar_op(graph, add[1], "Mul")
    if mul is None or not _only_reader(graph, add[1], add[0]) or mul[2] <= 0:
        return False
    _replace(graph, [mul[0], add[0], clip], mul[1], mul[2], add[2])
    return True


def _clip_then_scale(graph: Graph, mul_node: Node) -> bool:
    """Clip(x + c, 0, k) * s with k * s == 1."""
    mul = _scalar_op(graph, mul_node.outputs[0], "Mul")
    if mul is None or mul[2] <= 0:
        return False
    clip = graph.producer(mul[1])
    if clip is None or clip.op != "Clip" or len(clip.inputs) != 1 or not _only_reader(graph, mul[1], mul_node):
        return False
    lo, hi = clip_bounds(clip)
    if lo != 0.0 or not math.isclose(hi * mul[2], 1.0, rel_tol=1e-6):
        return False
    add = _scalar_op(graph, clip.inputs[0], "Add")
    if add is None or not _only_reader(graph, clip.inputs[0], clip):
        return False
    _replace(graph, [add[0], clip, mul_node], add[1], mul[2], add[2] * mul[2])
    return True


def run(graph: Graph) -> bool:
    changed = False
    for node in graph.nodes():
        if not graph.has_node(node.name):
            continue  # taken into an earlier match
        if node.op == "Clip" and len(node.inputs) == 1:
            changed |= _affine_then_clip(graph, node)
        elif node.op == "Mul":
            changed |= _clip_then_scale(graph, node)
    return changed
