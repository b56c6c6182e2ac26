"""The model input's layout change (NCHW to NHWC), applied by the generated quantize_input."""
from __future__ import annotations

import numpy as np

from kwscc.ir.graph import Graph, Node


def input_transpose(graph: Graph) -> Node | None:
    """The Transpose reading the model input, when it is the input's only reader.

    The generated <name>_quantize_input takes the float input in the model's own layout (NCHW, as
    PyTorch users hold it) and writes the int8 values already transposed, so this Transpose costs
    nothing at run time: <name>_run reads its output as the input buffer.
    """
    if len(graph.inputs) != 1 or graph.inputs[0] in graph.outputs:
        return None
    readers = graph.consumers(graph.inputs[0])
    if len(readers) == 1 and readers[0].op == "Transpose" and readers[0].inputs == [graph.inputs[0]]:
        return readers[0]
    return None


def transpose_walk(in_shape: tuple[int, ...], perm: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """(dims, stride) of the 4 nested loops that read a batch-1 tensor of `in_shape` in the order of its
    transpose by `perm` (perm[0] == 0): output axis k has extent dims[k] and moves stride[k] input elements."""
    strides = [int(np.prod(in_shape[j + 1:], dtype=np.int64)) for j in range(len(in_shape))]
    pad = 4 - (len(perm) - 1)
    return [1] * pad + [in_shape[p] for p in perm[1:]], [0] * pad + [strides[p] for p in perm[1:]]


def input_walk(graph: Graph) -> dict | None:
    """For the templates: how quantize_input reads the model input in its own layout (NCHW) to write the
    layout <name>_run reads; None when the input needs no transpose."""
    node = input_transpose(graph)
    if node is None:
        return None
    shape = graph.tensors[graph.inputs[0]].shape
    dims, stride = transpose_walk(shape, node.attrs["perm"])
    return {"dims": dims, "stride": stride, "layout": list(shape), "run_layout": list(graph.tensors[node.outputs[0]].shape)}
