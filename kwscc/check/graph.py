"""Checks of an IR graph: run once the reader has built it and again after every pass.

Every tensor must lie within kwscc's size limits, and every float constant must be finite:
constant folding (batch-norm folding, Div by zero, a huge Mul or Gemm alpha) can create NaN or
Inf that no initializer held, and quantizing those would emit garbage weights silently. Weights and
biases must also stay within MAX_WEIGHT_MAGNITUDE: a folded Mul by 1e38 gives finite weights that
overflow every activation.
"""
from __future__ import annotations

import numpy as np

from kwscc.check.limits import MAX_WEIGHT_MAGNITUDE, LimitError, check_shape
from kwscc.errors import ModelError
from kwscc.ir import Graph

WEIGHTED = ("Conv", "Dense")


def check_graph(graph: Graph, stage: str) -> None:
    """Raise a KwsccError naming the node whose output is too large or whose constant input is not finite, or
    when no graph output depends on a graph input."""
    for name in graph.inputs:
        check_shape(graph.tensors[name].shape, f"input '{name}'")
    fed = set(graph.inputs)  # tensors whose values depend on a graph input
    for node in graph.nodes():
        if any(name in fed for name in node.inputs):
            fed.update(node.outputs)
    if graph.outputs and not any(name in fed for name in graph.outputs):
        raise ModelError(f"no graph output ({', '.join(graph.outputs)}) depends on a graph input: the model "
                         "computes a constant")
    for node in graph.nodes():
        where = f"node '{node.name}' ({node.op})"
        for name in node.outputs:
            check_shape(graph.tensors[name].shape, f"{where}: output '{name}'")
        for name in node.inputs:
            t = graph.tensors[name]
            if t.is_const and t.data.dtype.kind == "f" and not np.all(np.isfinite(t.data)):
                raise ModelError(f"{where}: constant input '{name}' holds NaN or Inf {stage} "
                                 "(a division by zero, a negative variance or a value beyond float32's range)")
            if node.op in WEIGHTED and t.is_const and t.data.size and np.max(np.abs(t.data)) > MAX_WEIGHT_MAGNITUDE:
                raise LimitError(f"{where}: constant input '{name}' holds {float(np.max(np.abs(t.data))):.3g} "
                                 f"{stage}, beyond kwscc's limit of {MAX_WEIGHT_MAGNITUDE:.3g} for weights and "
                                 "biases (docs/limits.md)")

