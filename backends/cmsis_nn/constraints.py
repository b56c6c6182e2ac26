"""What the cmsis-nn backend can emit. Each constraint's docstring is the message a user sees."""
from __future__ import annotations

from kwscc.backends.base import check_constraints
from kwscc.ir import Graph, Node

LOWERABLE = ("Conv", "Dense", "MaxPool", "AveragePool", "Softmax", "Reshape")


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


CONSTRAINTS = {
    "Conv": (constraint_batch_one, constraint_nhwc, constraint_conv_groups),
    "Dense": (constraint_batch_one,),
    "MaxPool": (constraint_batch_one, constraint_nhwc),
    "AveragePool": (constraint_batch_one, constraint_nhwc),
    "Softmax": (constraint_softmax_last_axis,),
    "Reshape": (),
}

def check(graph: Graph) -> None:
    """Raise UnsupportedError naming the first node the backend cannot emit."""
    check_constraints(graph, CONSTRAINTS)


def describe() -> list[tuple[str, str]]:
    """(op, constraint text) rows for `kwscc supported-ops`."""
    return [(op, c.__doc__) for op, cs in CONSTRAINTS.items() for c in cs]
