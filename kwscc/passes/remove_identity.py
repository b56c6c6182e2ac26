"""Identity and Dropout (inference) do nothing: their readers read their input directly."""
from __future__ import annotations

from kwscc.ir import Graph
from kwscc.passes.rewrite import bypass


def run(graph: Graph) -> bool:
    changed = False
    for node in graph.nodes():
        if node.op == "Identity" and node.outputs[0] not in graph.outputs:
            bypass(graph, node)
            changed = True
    return changed
