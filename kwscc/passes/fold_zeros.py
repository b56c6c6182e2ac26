"""Products and sums with a constant zero: x * 0 becomes the constant 0, x + 0 and x - 0 become x.

A loop unrolled at import (kwscc.frontends.tflite_loops, onnx_loops) starts from a zero state, so
its first step multiplies and adds zeros (an LSTM's f * c0, its peephole c0 * w); TensorFlow's
converters fold those in the loops they unroll themselves. Folding them here gives that same first
step whatever form the model came in, for the raise_recurrent pass and for backends that cannot run
ops on constants. Exact for finite activations, the only ones a compiled model holds.
"""
from __future__ import annotations

import numpy as np

from kwscc.ir import Graph, Tensor


def _zero(graph: Graph, name: str) -> bool:
    t = graph.tensors[name]
    return t.is_const and t.data.dtype.kind == "f" and not np.any(t.data)


def run(graph: Graph) -> bool:
    changed = False
    for node in graph.nodes():
        if node.op not in ("Mul", "Add", "Sub") or node.attrs.get("act") is not None:
            continue
        out = graph.tensors[node.outputs[0]]
        zeros = [i for i, name in enumerate(node.inputs) if _zero(graph, name)]
        if not zeros or node.outputs[0] in graph.outputs or out.is_const:
            continue
        if node.op == "Mul":
            graph.remove_node(node.name)
            graph.tensors[out.name] = Tensor(out.name, out.shape, out.dtype, np.zeros(out.shape, out.dtype))
            changed = True
            continue
        if node.op == "Sub" and zeros != [1]:
            continue  # 0 - x is not x
        kept = node.inputs[1 - zeros[0]] if len(zeros) == 1 else None
        if kept is None or graph.tensors[kept].shape != out.shape:
            continue  # a zero that broadcasts the other operand to a larger shape
        graph.remove_node(node.name)
        graph.replace_uses(out.name, kept)
        changed = True
    return changed
