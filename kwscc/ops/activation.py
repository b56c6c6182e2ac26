"""Elementwise, shape-preserving activations: Relu, Clip (ReLU6 and friends), Identity, and the
smooth or piecewise ones kwscc runs through int8 lookup tables (TABLE_OPS; kwscc.quant.lut)."""
from __future__ import annotations

import numpy as np

from kwscc.ops import register, same_as_input


def clip_bounds(node) -> tuple[float, float]:
    """The (lo, hi) interval an activation node clamps to."""
    if node.op == "Relu":
        return 0.0, float("inf")
    return float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf))


def apply_act(x: np.ndarray, act: tuple[float, float] | None) -> np.ndarray:
    if act is None:
        return x
    return np.clip(x, act[0], act[1]).astype(x.dtype, copy=False)


def _hard_sigmoid(node, x):
    return np.clip(node.attrs.get("alpha", 0.2) * x + node.attrs.get("beta", 0.5), 0.0, 1.0)


def _leaky_relu(node, x):
    return np.where(x >= 0, x, node.attrs.get("alpha", 0.01) * x)


# op -> f(node, x), each evaluated in float64 (x may be float32 activations or a table's grid)
TABLE_FUNCTIONS = {
    "Sigmoid": lambda node, x: 1.0 / (1.0 + np.exp(-x)),
    "Tanh": lambda node, x: np.tanh(x),
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": lambda node, x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "LeakyRelu": _leaky_relu,
}
# PRelu(x, slope): slope is a constant broadcast against x, one table per channel. Relu and Clip use a
# table only where no producer absorbs them (kwscc.passes.fuse_activation).
TABLE_OPS = frozenset(TABLE_FUNCTIONS) | {"PRelu", "Relu", "Clip"}


def prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, slope * x)


def _table_run(fn):
    def run(node, xs):
        with np.errstate(over="ignore"):
            return [fn(node, xs[0].astype(np.float64)).astype(xs[0].dtype)]
    return run


register("Relu", same_as_input, lambda node, xs: [np.maximum(xs[0], 0).astype(xs[0].dtype)])
register("Clip", same_as_input, lambda node, xs: [apply_act(xs[0], clip_bounds(node))])
register("Identity", same_as_input, lambda node, xs: [xs[0]])
for _name, _fn in TABLE_FUNCTIONS.items():
    register(_name, same_as_input, _table_run(_fn))
register("PRelu", same_as_input, lambda node, xs: [prelu(xs[0], xs[1]).astype(xs[0].dtype)])
