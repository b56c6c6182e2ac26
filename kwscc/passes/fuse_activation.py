"""Fuse Relu / Clip into the producer's output range (CMSIS-NN clamps its output for free)."""
from __future__ import annotations

from kwscc.ir import Graph
from kwscc.ops.activation import clip_bounds
from kwscc.passes.rewrite import absorb, sole_consumer

PRODUCERS = ("Conv", "Dense", "MaxPool", "AveragePool", "Add", "Sub", "Mul", "Max", "Min")


def run(graph: Graph) -> bool:
    changed = False
    for node in graph.nodes():
        if node.op not in ("Relu", "Clip"):
            continue
        producer = graph.producer(node.inputs[0])
        if producer is None or producer.op not in PRODUCERS or sole_consumer(graph, node.inputs[0]) is not node:
            continue
        lo, hi = clip_bounds(node)
        old = producer.attrs.get("act") or (float("-inf"), float("inf"))
        producer.attrs["act"] = (max(lo, old[0]), min(hi, old[1]))
        absorb(graph, producer, node)
        changed = True
    return changed
