"""Dense (fully connected): y = x @ W.T + b with W [out, in]; attrs act (lo, hi) or None."""
from __future__ import annotations

import numpy as np

from kwscc.ops import register
from kwscc.ops.activation import apply_act


def _infer(node, inputs):
    return [((inputs[0].shape[0], inputs[1].shape[0]), inputs[0].dtype)]


def _run(node, xs):
    y = xs[0].astype(np.float64) @ xs[1].astype(np.float64).T
    if len(xs) > 2:
        y = y + xs[2]
    return [apply_act(y, node.attrs.get("act")).astype(np.float32)]


register("Dense", _infer, _run)
