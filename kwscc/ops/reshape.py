"""Reshape (static target shape, attr `shape`) and Transpose (attr `perm`)."""
from __future__ import annotations

import numpy as np

from kwscc.ops import register


def _reshape_run(node, xs):
    x, shape = xs[0], tuple(node.attrs["shape"])
    if x.size == int(np.prod(shape)):
        return [x.reshape(shape)]
    return [x.reshape((x.shape[0],) + shape[1:])]  # batched activation: keep the batch axis


register("Reshape", lambda node, inputs: [(tuple(node.attrs["shape"]), inputs[0].dtype)], _reshape_run)
register(
    "Transpose",
    lambda node, inputs: [(tuple(inputs[0].shape[p] for p in node.attrs["perm"]), inputs[0].dtype)],
    lambda node, xs: [np.transpose(xs[0], node.attrs["perm"])],
)
