"""Liveness over the schedule and arena offsets for every activation and scratch buffer.

Reshapes are aliases (their output is their input's bytes). The graph input is read from the
caller's buffer and the graph output is written straight into the caller's buffer, so neither
takes arena space. Two allocators place the buffers; the smaller arena wins, and the result is
checked: buffers alive at the same step never share a byte.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kwscc.errors import UnsupportedError
from kwscc.ir import Graph

ALIGN = 4
INPUT, OUTPUT = "input", "output"


def align_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass(slots=True)
class Buffer:
    name: str  # tensor name, or "scratch:<node>"
    size: int
    start: int  # first step at which it is written
    end: int  # last step at which it is read (inclusive)
    offset: int = -1

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.start <= other.end and other.start <= self.end

    def overlaps_in_space(self, other: Buffer) -> bool:
        return self.offset < other.offset + other.size and other.offset < self.offset + self.size


@dataclass(slots=True)
class MemoryPlan:
    schedule: list[str]
    buffers: list[Buffer]
    arena_size: int
    lower_bound: int
    allocator: str
    roots: dict[str, str] = field(default_factory=dict)  # tensor -> tensor owning its bytes

    def location(self, tensor: str) -> tuple[str, int]:
        """Where a tensor lives: (INPUT | OUTPUT | "arena", byte offset)."""
        root = self.roots.get(tensor, tensor)
        if root in (INPUT, OUTPUT):
            return root, 0
        return "arena", self.buffer(root).offset

    def buffer(self, name: str) -> Buffer:
        return next(b for b in self.buffers if b.name == name)

    def scratch(self, node: str) -> Buffer | None:
        return next((b for b in self.buffers if b.name == f"scratch:{node}"), None)


def _roots(graph: Graph) -> dict[str, str]:
    """Each activation tensor -> the tensor that owns its bytes (INPUT / OUTPUT for the caller's)."""
    roots = {name: INPUT for name in graph.inputs}
    for node in graph.nodes():
        out = node.outputs[0]
        roots[out] = roots[node.inputs[0]] if node.op == "Reshape" else out
    for name in graph.outputs:
        root = roots[name]
        if root == INPUT:
            raise UnsupportedError(f"model output '{name}' is the model input itself: nothing to compute")
        roots = {t: OUTPUT if r == root else r for t, r in roots.items()}
    return roots


def _buffers(graph: Graph, roots: dict[str, str], scratch: dict[str, int]) -> list[Buffer]:
    buffers: dict[str, Buffer] = {}
    for step, node in enumerate(graph.nodes()):
        root = roots[node.outputs[0]]
        if node.op != "Reshape" and root not in (INPUT, OUTPUT):
            buffers[root] = Buffer(root, graph.tensors[root].size, step, step)
        for name in node.inputs:
            if roots.get(name) in buffers:
                buffers[roots[name]].end = step
        if scratch.get(node.name, 0) > 0:
            buffers[f"scratch:{node.name}"] = Buffer(f"scratch:{node.name}", scratch[node.name], step, step)
    return list(buffers.values())


def _place(order: list[Buffer]) -> int:
    """First fit: each buffer at the lowest aligned offset clear of the live buffers already placed."""
    placed: list[Buffer] = []
    for buf in order:
        offset = 0
        for other in sorted((p for p in placed if p.overlaps_in_time(buf)), key=lambda p: p.offset):
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, align_up(other.offset + other.size))
        buf.offset = offset
        placed.append(buf)
    return max((b.offset + b.size for b in placed), default=0)


ALLOCATORS = {
    "greedy-by-size": lambda bufs: sorted(bufs, key=lambda b: (-b.size, b.start, b.name)),
    "greedy-by-schedule": lambda bufs: sorted(bufs, key=lambda b: (b.start, -b.size, b.name)),
}


def lower_bound(buffers: list[Buffer], steps: int) -> int:
    """No placement can beat the largest total of (aligned) buffers alive at one step."""
    return max((sum(align_up(b.size) for b in buffers if b.start <= s <= b.end) for s in range(steps)), default=0)


def verify(plan: MemoryPlan) -> None:
    for i, a in enumerate(plan.buffers):
        assert a.offset >= 0 and a.offset % ALIGN == 0 and a.offset + a.size <= plan.arena_size, a
        for b in plan.buffers[i + 1:]:
            assert not (a.overlaps_in_time(b) and a.overlaps_in_space(b)), f"{a.name} overlaps {b.name}"


def plan_memory(graph: Graph, scratch: dict[str, int]) -> MemoryPlan:
    """Arena plan for `graph` with `scratch` bytes per node name."""
    roots = _roots(graph)
    schedule = [node.name for node in graph.nodes()]
    best: MemoryPlan | None = None
    for name, order in ALLOCATORS.items():
        buffers = _buffers(graph, roots, scratch)
        size = align_up(_place(order(buffers)))
        if best is None or size < best.arena_size:
            best = MemoryPlan(schedule, buffers, size, lower_bound(buffers, len(schedule)), name, roots)
    verify(best)
    return best
