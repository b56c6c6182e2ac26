"""Relu, Clip (ReLU6 and friends) and Identity: elementwise, shape-preserving."""
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


register("Relu", same_as_input, lambda node, xs: [np.maximum(xs[0], 0).astype(xs[0].dtype)])
register("Clip", same_as_input, lambda node, xs: [apply_act(xs[0], clip_bounds(node))])
register("Identity", same_as_input, lambda node, xs: [xs[0]])
