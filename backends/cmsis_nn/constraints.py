"""What the cmsis-nn backend can emit. Each constraint's docstring is the message a user sees."""
from __future__ import annotations

from kwscc.backends.base import check_constraints
from kwscc.ir import Graph, Node

LOWERABLE = ("Conv", "Dense", "MaxPool", "AveragePool", "Softmax", "Reshape", "Add", "Sub", "Mul", "Max", "Min",
             "Concat")


def constraint_batch_one(graph: Graph, node: Node) -> bool:
    """batch size must be 1 (microcontroller inference runs one sample at a time)"""
    return all(graph.tensors[t].shape[0] == 1 for t in node.outputs if graph.tensors[t].shape)


def constraint_conv_groups(graph: Graph, node: Node) -> bool:
    """a grouped Conv needs group == 1, group == input channels (depthwise), or channels divisible by group"""
    group, cin = node.attrs["group"], graph.tensors[node.inputs[0]].shape[-1]
    cout = graph.tensors[node.outputs[0]].shape[-1]
    return group == 1 or (cin % group == 0 and cout % group == 0)


def constraint_softmax_last_axis(graph: Graph, node: Node) -> bool:
    """Softmax must run over the last axis (or one followed only by size-1 axes)"""
    return all(d == 1 for d in graph.tensors[node.inputs[0]].shape[node.attrs["axis"] + 1:])


def constraint_nhwc(graph: Graph, node: Node) -> bool:
    """spatial ops must take a 4-D NHWC tensor"""
    return node.attrs.get("layout") == "NHWC" and len(graph.tensors[node.inputs[0]].shape) == 4


def constraint_same_shapes(graph: Graph, node: Node) -> bool:
    """both inputs must be activations of the output's shape (only per-channel or scalar constants that fold into the producing Conv/Gemm can broadcast)"""
    out = graph.tensors[node.outputs[0]].shape
    return all(not graph.tensors[t].is_const and graph.tensors[t].shape == out for t in node.inputs)


def constraint_activation_inputs(graph: Graph, node: Node) -> bool:
    """every input must be an activation (a constant input is not supported)"""
    return not any(graph.tensors[t].is_const for t in node.inputs)


def constraint_concat_shapes(graph: Graph, node: Node) -> bool:
    """inputs must have the same rank and agree on every axis but the concatenation axis"""
    shapes = [graph.tensors[t].shape for t in node.inputs]
    axis = node.attrs["axis"] % len(shapes[0])
    return all(len(s) == len(shapes[0]) and s[:axis] + s[axis + 1:] == shapes[0][:axis] + shapes[0][axis + 1:]
               for s in shapes)


BINARY = (constraint_batch_one, constraint_same_shapes)
CONSTRAINTS = {
    "Conv": (constraint_batch_one, constraint_nhwc, constraint_conv_groups),
    "Dense": (constraint_batch_one,),
    "MaxPool": (constraint_batch_one, constraint_nhwc),
    "AveragePool": (constraint_batch_one, constraint_nhwc),
    "Softmax": (constraint_softmax_last_axis,),
    "Reshape": (),
    "Add": BINARY, "Sub": BINARY, "Mul": BINARY, "Max": BINARY, "Min": BINARY,
    "Concat": (constraint_batch_one, constraint_activation_inputs, constraint_concat_shapes),
}

def check(graph: Graph) -> None:
    """Raise UnsupportedError naming the first node the backend cannot emit."""
    check_constraints(graph, CONSTRAINTS)


def describe() -> list[tuple[str, str]]:
    """(op, constraint text) rows for `kwscc supported-ops`."""
    return [(op, c.__doc__) for op, cs in CONSTRAINTS.items() for c in cs]
