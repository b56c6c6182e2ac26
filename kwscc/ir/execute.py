"""Float execution of a Graph with the ops' numpy references (batched: axis 0 is the batch)."""
from __future__ import annotations

import numpy as np

from kwscc.ir.graph import Graph
from kwscc.ops import REGISTRY


def run_float(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tensor's float value for a batch of inputs (constants included)."""
    values: dict[str, np.ndarray] = {name: t.data for name, t in graph.tensors.items() if t.is_const}
    values.update({name: np.asarray(x, np.float32) for name, x in feeds.items()})
    for node in graph.nodes():
        outs = REGISTRY[node.op].run(node, [values[name] for name in node.inputs])
        values.update(zip(node.outputs, outs))
    return values
