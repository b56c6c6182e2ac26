"""Fold batch-norm into the Conv / depthwise Conv / Dense before it.

BatchNormalization computes y = x * a + b with a = scale / sqrt(var + eps) (the model's own eps).
Exporters also spell it as Mul / Add / Sub / Div by per-channel constants; those fold the same way.
For a producer y = W x + c: W' = W * a (per output channel), c' = c * a + b.
"""
from __future__ import annotations

import numpy as np

from kwscc.ir import Graph, Node
from kwscc.ops.batchnorm import bn_scale_shift
from kwscc.passes.rewrite import absorb, sole_consumer

FOLDABLE = ("Conv", "Dense")


def channel_vector(value: np.ndarray, out_shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """`value` as one number per channel of a tensor of out_shape, or None if it varies otherwise."""
    try:
        full = np.broadcast_to(value, out_shape)
    except ValueError:
        return None
    if full.shape != tuple(out_shape):
        return None
    vec = np.moveaxis(full, axis, 0).reshape(out_shape[axis], -1)
    return vec[:, 0].astype(np.float64) if np.all(vec == vec[:, :1]) else None


def _scale_shift(graph: Graph, node: Node, axis: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(a, b) with node(x) = x * a + b per channel, or None if the node is not such an affine map."""
    if node.op == "BatchNormalization":
        scale, bias, mean, var = (graph.tensors[n].data for n in node.inputs[1:5])
        return bn_scale_shift(scale, bias, mean, var, node.attrs["epsilon"])
    if node.op not in ("Mul", "Add", "Sub", "Div"):
        return None
    const_pos = [i for i, n in enumerate(node.inputs) if graph.tensors[n].is_const]
    if len(const_pos) != 1 or (node.op in ("Sub", "Div") and const_pos != [1]):
        return None
    shape = graph.tensors[node.outputs[0]].shape
    vec = channel_vector(graph.tensors[node.inputs[const_pos[0]]].data, shape, axis)
    if vec is None:
        return None
    ones, zeros = np.ones_like(vec), np.zeros_like(vec)
    return {"Mul": (vec, zeros), "Add": (ones, vec), "Sub": (ones, -vec), "Div": (1.0 / vec, zeros)}[node.op]


def _fold_into(graph: Graph, producer: Node, a: np.ndarray, b: np.ndarray) -> None:
    w = graph.tensors[producer.inputs[1]].data.astype(np.float64)
    out_channels = w.shape[0]
    bias = graph.tensors[producer.inputs[2]].data if len(producer.inputs) > 2 else np.zeros(out_channels)
    w_new = w * a.reshape((-1,) + (1,) * (w.ndim - 1))
    b_new = np.asarray(bias, np.float64) * a + b
    producer.inputs[1] = graph.add_const(producer.inputs[1] + "_folded", w_new.astype(np.float32)).name
    bias_name = graph.add_const(producer.name + "_bias_folded", b_new.astype(np.float32)).name
    producer.inputs[2:] = [bias_name]


def run(graph: Graph) -> bool:
    changed = False
    for producer in graph.nodes():
        while producer.op in FOLDABLE and producer.attrs.get("act") is None:  # not across a fused clamp
            follower = sole_consumer(graph, producer.outputs[0])
            if follower is None or follower.inputs[0] != producer.outputs[0] and follower.op == "BatchNormalization":
                break
            nhwc = producer.attrs.get("layout") == "NHWC"
            ab = _scale_shift(graph, follower, axis=3 if nhwc else 1)
            if ab is None:
                break
            _fold_into(graph, producer, *ab)
            absorb(graph, producer, follower)
            changed = True
    return changed
