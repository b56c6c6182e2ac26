"""Identity and Dropout (inference) do nothing: their readers read their input directly."""
from __future__ import annotations

from kwscc.ir import Graph


def run(graph: Graph) -> bool:
    """Bypass every Identity not writing a graph output; all readers are renamed in one sweep (linear)."""
    renames: dict[str, str] = {}
    for node in graph.nodes():  # topological: an Identity's input is already resolved when it is reached
        if node.op == "Identity" and node.outputs[0] not in graph.outputs:
            renames[node.outputs[0]] = renames.get(node.inputs[0], node.inputs[0])
            graph.remove_node(node.name)
    if renames:
        graph.rename_uses(renames)
    return bool(renames)
