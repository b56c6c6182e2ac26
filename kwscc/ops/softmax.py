"""Softmax over one axis (attr axis)."""
from __future__ import annotations

import numpy as np

from kwscc.ops import register, same_as_input


def _run(node, xs):
    x = xs[0].astype(np.float64)
    e = np.exp(x - x.max(axis=node.attrs["axis"], keepdims=True))
    return [(e / e.sum(axis=node.attrs["axis"], keepdims=True)).astype(np.float32)]


register("Softmax", same_as_input, _run)
