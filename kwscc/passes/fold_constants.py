"""Constant folding: nodes whose outputs are all known values disappear; their outputs become constants."""
from __future__ import annotations

from kwscc.ir import Graph
from kwscc.passes.rewrite import remove_dead_nodes


def run(graph: Graph) -> bool:
    changed = False
    for node in graph.nodes():
        graph.infer_node(node)  # computes values when every input is constant
        if all(graph.tensors[name].is_const for name in node.outputs) and not any(
            name in graph.outputs for name in node.outputs
        ):
            graph.remove_node(node.name)
            changed = True
    return remove_dead_nodes(graph) or changed
