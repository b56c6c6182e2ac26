"""A constant operand of Add, Sub, Mul, Max or Min that broadcasts (a scalar, one value per channel)
becomes a constant of the op's output shape.

Integer elementwise kernels (CMSIS-NN's arm_elementwise_add_s8 / _mul_s8, kwscc_max_min_s8) read
both operands element by element; an unrolled recurrent cell that the raise_recurrent pass does not
recognise adds scalar forget biases, subtracts from 1 and multiplies by peephole vectors. Expanding
the constant costs flash (one byte per output value once quantized) instead of a broadcasting kernel;
every op reading the same constant at the same shape shares one expanded copy. Run last: earlier
passes fold per-channel constants into the Conv / Dense before them, which is free.
"""
from __future__ import annotations

import numpy as np

from kwscc.ir import Graph

BROADCAST_OPS = ("Add", "Sub", "Mul", "Max", "Min")


def run(graph: Graph) -> bool:
    expanded: dict[tuple[str, tuple[int, ...]], str] = {}
    changed = False
    for node in graph.nodes():
        if node.op not in BROADCAST_OPS:
            continue
        out = graph.tensors[node.outputs[0]].shape
        for i, name in enumerate(node.inputs):
            t = graph.tensors[name]
            if not t.is_const or t.shape == out or any(graph.tensors[n].is_const for n in node.inputs if n != name):
                continue
            key = (name, out)
            if key not in expanded:
                data = np.ascontiguousarray(np.broadcast_to(t.data, out))
                expanded[key] = graph.add_const(f"{name}_expanded", data).name
            node.inputs[i] = expanded[key]
            changed = True
    if changed:
        graph.edges_changed()
    return changed
