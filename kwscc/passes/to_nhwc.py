"""NCHW to NHWC: spatial ops switch layout; explicit Transposes keep the graph equivalent.

Each NCHW op gets Transpose(0,2,3,1) before it and Transpose(0,3,1,2) after it, and Conv weights
go from OIHW to OHWI. The op's output keeps its tensor name (now NHWC). simplify_layout then
cancels the transposes between neighbouring NHWC ops and removes those that move no data.
"""
from __future__ import annotations

import numpy as np

from kwscc.ir import Graph, Node

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def _convert(graph: Graph, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    x_nhwc = graph.unique_tensor_name(x + "_nhwc")
    origin = (node.name, node.op)  # errors about the transposes name the user's node
    graph.add_node(Node(graph.unique_node_name(node.name + "_to_nhwc"), "Transpose", [x], [x_nhwc],
                        {"perm": TO_NHWC, "layout_for": origin}))
    graph.permute_origin(x_nhwc, x, graph.tensors[x].shape, TO_NHWC)
    node.inputs[0] = x_nhwc
    node.attrs["layout"] = "NHWC"
    if node.op == "Conv":
        w = graph.tensors[node.inputs[1]].data
        node.inputs[1] = graph.add_const(node.inputs[1] + "_ohwi", np.ascontiguousarray(w.transpose(0, 2, 3, 1))).name
    y_nchw = graph.unique_tensor_name(y + "_nchw")
    graph.replace_uses(y, y_nchw)
    nchw_shape = graph.tensors[y].shape
    graph.infer_node(node)
    graph.add_node(Node(graph.unique_node_name(node.name + "_to_nchw"), "Transpose", [y], [y_nchw],
                        {"perm": TO_NCHW, "layout_for": origin}))
    # y keeps its name but now holds the file's values transposed; y_nchw holds them as they were
    if y in graph.origins:
        graph.origins[y_nchw] = graph.origins[y]
    graph.permute_origin(y, y_nchw, nchw_shape, TO_NHWC)


def run(graph: Graph) -> bool:
    nodes = [n for n in graph.nodes()
             if n.attrs.get("layout") == "NCHW" and len(graph.tensors[n.inputs[0]].shape) == 4]
    for node in nodes:
        _convert(graph, node)
    return bool(nodes)
