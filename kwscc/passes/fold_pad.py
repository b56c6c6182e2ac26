"""Zero Pad of H and W before an NHWC Conv becomes the Conv's own padding (no copy at run time).

CMSIS-NN fills a convolution's padding with -input_offset, a real 0, so this is exact. Pads of
other values or axes, and pads before pools (whose padding is not a value), stay standalone.
"""
from __future__ import annotations

from kwscc.ir import Graph
from kwscc.passes.rewrite import bypass, sole_consumer


def run(graph: Graph) -> bool:
    changed = False
    for node in graph.nodes():
        if node.op != "Pad" or node.attrs.get("value", 0.0) != 0.0 or len(node.attrs["pads"]) != 4:
            continue
        (n0, n1), (top, bottom), (left, right), (c0, c1) = node.attrs["pads"]
        conv = sole_consumer(graph, node.outputs[0])
        if n0 or n1 or c0 or c1 or conv is None or conv.op != "Conv" or conv.attrs.get("layout") != "NHWC":
            continue
        t, l, b, r = conv.attrs["pads"]
        conv.attrs["pads"] = (t + top, l + left, b + bottom, r + right)
        bypass(graph, node)
        changed = True
    return changed
