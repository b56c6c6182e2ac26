"""Pad with a constant: attrs pads ((before, after) per axis, batch axis included) and value."""
from __future__ import annotations

import numpy as np

from kwscc.ops import register


def _infer(node, inputs):
    shape = tuple(d + b + a for d, (b, a) in zip(inputs[0].shape, node.attrs["pads"]))
    return [(shape, inputs[0].dtype)]


def _run(node, xs):
    return [np.pad(xs[0], node.attrs["pads"], constant_values=node.attrs.get("value", 0.0))]


register("Pad", _infer, _run)
