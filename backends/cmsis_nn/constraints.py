"""What the cmsis-nn backend can emit. Each constraint's docstring is the message a user sees."""
from __future__ import annotations

from kwscc.errors import UnsupportedError
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

LEFTOVER_MESSAGES = {
    "Transpose": "a Transpose that moves data is not supported (only transposes that cancel out or move size-1 axes)",
    "Relu": "Relu/Clip must directly follow a Conv, Gemm/MatMul or pool whose output nothing else reads",
    "Clip": "Relu/Clip must directly follow a Conv, Gemm/MatMul or pool whose output nothing else reads",
    "BatchNormalization": "BatchNormalization must directly follow a Conv or Gemm (it is folded into its weights)",
    "Identity": "Identity as a model output is not supported",
}


def check(graph: Graph) -> None:
    """Raise UnsupportedError naming the first node the backend cannot emit."""
    for node in graph.nodes():
        if node.op not in CONSTRAINTS:
            reason = LEFTOVER_MESSAGES.get(
                node.op, f"{node.op} of non-constant tensors is not supported (only Mul/Add/Sub/Div by "
                         "per-channel constants after a Conv or Gemm, which fold into it)")
            raise UnsupportedError(f"node '{node.name}' ({node.op}): {reason}")
        for constraint in CONSTRAINTS[node.op]:
            if not constraint(graph, node):
                raise UnsupportedError(f"node '{node.name}' ({node.op}): {constraint.__doc__}")


def describe() -> list[tuple[str, str]]:
    """(op, constraint text) rows for `kwscc supported-ops`."""
    return [(op, c.__doc__) for op, cs in CONSTRAINTS.items() for c in cs]
