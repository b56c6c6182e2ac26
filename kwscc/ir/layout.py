"""The model input's layout change (NCHW to NHWC), applied by the generated quantize_input."""
from __future__ import annotations

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
