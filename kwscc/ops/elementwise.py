"""Broadcasting binary arithmetic: Add, Sub, Mul, Div, Max, Min.

attrs: act (lo, hi) or None, a clamp fused into the op (TFLite's fused activation, or a following
Relu/Clip that fuse_activation absorbed).
"""
from __future__ import annotations

import numpy as np

from kwscc.ops import register
from kwscc.ops.activation import apply_act

BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
          "Max": np.maximum, "Min": np.minimum}


def _infer(node, inputs):
    shape = np.broadcast_shapes(inputs[0].shape, inputs[1].shape)
    return [(shape, inputs[0].dtype)]


def _make_run(fn):
    def run(node, xs):
        a, b = xs
        if np.issubdtype(a.dtype, np.integer) and node.op == "Div":  # ONNX truncates toward zero
            return [np.trunc(a / b).astype(a.dtype)]
        return [apply_act(fn(a, b), node.attrs.get("act")).astype(a.dtype)]
    return run


for _name, _fn in BINARY.items():
    register(_name, _infer, _make_run(_fn))
