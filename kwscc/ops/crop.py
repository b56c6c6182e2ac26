"""Crop: the slice [start, end) of one axis of an activation (attrs axis, start, end). A Split becomes
one Crop per output, so every node keeps one output."""
from __future__ import annotations

from kwscc.ops import register


def _infer(node, inputs):
    shape = list(inputs[0].shape)
    shape[node.attrs["axis"]] = node.attrs["end"] - node.attrs["start"]
    return [(tuple(shape), inputs[0].dtype)]


def crop(x, axis: int, start: int, end: int):
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, end)
    return x[tuple(index)]


register("Crop", _infer, lambda node, xs: [crop(xs[0], node.attrs["axis"], node.attrs["start"], node.attrs["end"])])
