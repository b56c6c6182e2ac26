"""Frontend helpers for recurrent layers: the IR node, and the last step of its output sequence.

Exporters hand the classifier the last hidden state in two ways: the layer's own final-state
output (ONNX Y_h), or a slice of the last time step of its output sequence (Keras through tf2onnx:
Squeeze, Slice, Squeeze; TFLite: STRIDED_SLICE). The second is recognised here, so the compiled
model runs the layer in its "last" mode and never stores the whole sequence.
"""
from __future__ import annotations

import numpy as np

from kwscc.errors import UnsupportedError
from kwscc.ir import Graph, Node
from kwscc.ops.recurrent import RECURRENT_OPS


def time_major_input(where: str, x: str, steps: int | None, features: int) -> UnsupportedError:
    """The refusal of a recurrent layer reading a time-major model input ([T, 1, F]): kwscc reads the
    first axis of a model input as the batch. steps None: T is unknown at compile time."""
    length = "unknown at compile time" if steps is None else str(steps)
    return UnsupportedError(f"{where}: model input '{x}' is time-major [T, batch, {features}] (T {length}), but kwscc "
                            "reads the first axis of a model input as the batch: export the input batch-first "
                            f"([1, T, {features}] or [1, T*{features}]) with a fixed T")


def add_recurrent(graph: Graph, name: str, op: str, inputs: list[str], attrs: dict, output: str) -> str:
    """Add a recurrent node writing `output` (mode attrs["output"]); returns the tensor name."""
    graph.add_node(Node(name, op, inputs, [output], attrs))
    return output


def _sequence_source(graph: Graph, tensor: str) -> Node | None:
    """The recurrent node (mode "sequence") whose output `tensor` is, through reshapes only."""
    node = graph.producer(tensor)
    while node is not None and node.op == "Reshape":
        node = graph.producer(node.inputs[0])
    if node is not None and node.op in RECURRENT_OPS and node.attrs["output"] == "sequence":
        return node
    return None


def last_step(graph: Graph, tensor: str, axis: int, start: int, end: int, step: int, out: str,
              out_shape: tuple[int, ...]) -> str | None:
    """If slicing `tensor` along `axis` as [start:end:step] keeps only the last time step of a
    recurrent output sequence, write that step to `out` (shape `out_shape`) through a recurrent node
    in mode "last", and return that node's output; None if the slice is anything else."""
    source = _sequence_source(graph, tensor)
    if source is None:
        return None
    shape = graph.tensors[tensor].shape
    steps, hidden = graph.tensors[source.outputs[0]].shape[1:]
    if [d for d in shape if d != 1] != [steps, hidden] and steps > 1:
        return None
    if shape[axis] != steps or step != 1 or start not in (-1, steps - 1) or end < steps:
        return None
    if steps > 1 and [i for i, d in enumerate(shape) if d != 1].index(axis) != 0:
        return None  # the time axis comes before the hidden axis
    last = graph.unique_tensor_name(f"{source.outputs[0]}_last")
    add_recurrent(graph, f"{source.name}_last", source.op, list(source.inputs),
                  {**source.attrs, "output": "last"}, last)
    if int(np.prod(out_shape)) != hidden:
        raise UnsupportedError(f"slice '{out}' of a recurrent output: shape {list(out_shape)} is not one step")
    graph.add_node(Node(f"{out}_reshape", "Reshape", [last], [out], {"shape": tuple(out_shape)}))
    return last
