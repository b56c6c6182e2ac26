"""Ops that only compute shapes or move constants: Shape, Gather, Concat, Cast, Slice.

They must fold to constants before lowering; the float references make that folding possible.
"""
from __future__ import annotations

import numpy as np

from kwscc.ops import register


def _shape_slice(node, shape) -> tuple[int, ...]:
    return tuple(shape)[node.attrs.get("start", 0):node.attrs.get("end")]


def _shape_infer(node, inputs):
    return [((len(_shape_slice(node, inputs[0].shape)),), "int64")]


def _gather_run(node, xs):
    return [np.take(xs[0], xs[1], axis=node.attrs.get("axis", 0))]


def _gather_infer(node, inputs):
    axis = node.attrs.get("axis", 0) % len(inputs[0].shape)
    data, idx = inputs[0].shape, inputs[1].shape
    return [(data[:axis] + idx + data[axis + 1:], inputs[0].dtype)]


def _concat_infer(node, inputs):
    axis = node.attrs["axis"] % len(inputs[0].shape)
    shape = list(inputs[0].shape)
    shape[axis] = sum(t.shape[axis] for t in inputs)
    return [(tuple(shape), inputs[0].dtype)]


def _concat_run(node, xs):
    """Constants (batch 1) are repeated over the batch of the activations they join."""
    batch = max(x.shape[0] for x in xs) if node.attrs["axis"] % xs[0].ndim else 1
    return [np.concatenate([np.broadcast_to(x, (batch,) + x.shape[1:]) if x.shape[0] == 1 else x for x in xs],
                           axis=node.attrs["axis"])]


def _slice_run(node, xs):
    data, starts, ends = xs[0], xs[1], xs[2]
    axes = xs[3] if len(xs) > 3 else np.arange(len(starts))
    steps = xs[4] if len(xs) > 4 else np.ones(len(starts), np.int64)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return [data[tuple(index)]]


def _slice_infer(node, inputs):
    if all(t.is_const for t in inputs):
        return [(_slice_run(node, [t.data for t in inputs])[0].shape, inputs[0].dtype)]
    raise ValueError("Slice needs constant inputs")


register("Shape", _shape_infer, lambda node, xs: [np.array(_shape_slice(node, xs[0].shape), np.int64)])
register("Gather", _gather_infer, _gather_run)
register("Concat", _concat_infer, _concat_run)
register("Cast", lambda node, inputs: [(inputs[0].shape, node.attrs["to"])],
         lambda node, xs: [xs[0].astype(node.attrs["to"])])
register("Slice", _slice_infer, _slice_run)
