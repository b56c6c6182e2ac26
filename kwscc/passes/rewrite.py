"""Small graph-rewriting helpers shared by the passes."""
from __future__ import annotations

from collections import Counter

from kwscc.ir import Graph, Node


def sole_consumer(graph: Graph, tensor: str) -> Node | None:
    """The only node reading `tensor`, if exactly one does and it is not a graph output."""
    readers = graph.consumers(tensor)
    if len(readers) != 1 or tensor in graph.outputs:
        return None
    return readers[0]


def bypass(graph: Graph, node: Node) -> None:
    """Remove a one-in one-out node; its readers read its input instead."""
    graph.remove_node(node.name)
    graph.replace_uses(node.outputs[0], node.inputs[0])


def absorb(graph: Graph, producer: Node, follower: Node) -> None:
    """Remove `follower` and let `producer` write the follower's output tensor (keeping its name)."""
    graph.remove_node(follower.name)
    old = producer.outputs[0]
    producer.outputs[0] = follower.outputs[0]
    graph.tensors[follower.outputs[0]].shape = graph.tensors[old].shape
    graph.infer_node(producer)
    graph.edges_changed()


def remove_dead_nodes(graph: Graph) -> bool:
    """Remove nodes none of whose outputs is read; one sweep from the outputs back (linear)."""
    reads = Counter(name for node in graph.nodes() for name in node.inputs)
    reads.update(graph.outputs)
    changed = False
    for node in reversed(graph.nodes()):
        if not any(reads[t] for t in node.outputs):
            reads.subtract(node.inputs)
            graph.remove_node(node.name)
            changed = True
    return changed
