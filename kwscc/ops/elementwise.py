"""Broadcasting binary arithmetic: Add, Sub, Mul, Div."""
from __future__ import annotations

import numpy as np

from kwscc.ops import register

BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


def _infer(node, inputs):
    shape = np.broadcast_shapes(inputs[0].shape, inputs[1].shape)
    return [(shape, inputs[0].dtype)]


def _make_run(fn):
    def run(node, xs):
        a, b = xs
        if np.issubdtype(a.dtype, np.integer) and node.op == "Div":  # ONNX truncates toward zero
            return [np.trunc(a / b).astype(a.dtype)]
        return [fn(a, b).astype(a.dtype)]
    return run


for _name, _fn in BINARY.items():
    register(_name, _infer, _make_run(_fn))
