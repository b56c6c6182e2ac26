"""Static memory plan: execution order, liveness and arena offsets for activations and scratch.

* Aliases: reshape-like ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity) emit nothing; their
  output is their input's bytes. So does the model input's Transpose, which quantize_input applies
  (kwscc.ir.layout).
* Caller's buffers: graph inputs are read from the caller's input buffer and the (first) graph
  output is written straight into the caller's output buffer, so neither takes arena space.
  Further graph outputs stay in the arena, alive until the end.
* In place: an elementwise op (INPLACE_OPS) writes its output over an input of the same size when
  that input dies at it (no later reader), so the two never cost bytes at the same time.
* Overlap: a node whose kernel writes its output in raster order only after reading what it needs
  (the backend lists them, with the bytes `delta` it must stay ahead: see `overlaps`) may write its
  output starting delta bytes before its dying input, so the two share all but delta bytes. The
  tensors of one such chain live in one buffer at their own offsets inside it. Plans are made with
  and without overlaps; the smaller arena wins.
* Execution order: for graphs with branches the order changes the peak. An exact search over the
  downward-closed node sets (dynamic programming on "which nodes have run") finds an order of
  minimum peak live bytes while the number of such sets stays below MAX_SCHEDULE_STATES; a greedy
  order (run the ready node that raises the live bytes least) is always tried too, and so is the
  graph's own topological order.
* Offsets: every candidate order is placed by every allocator in ALLOCATORS; the smallest arena
  wins (ties keep the earlier order and allocator). The lower bound of an order is the largest
  total of aligned bytes alive at one step: no placement of that order's buffers can do better.
* verify() re-checks the winner: alignment, bounds, no two buffers alive at one step share a byte,
  the order is topological, and every tensor is inside its buffer's lifetime whenever it is
  written or read.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from kwscc.errors import UnsupportedError
from kwscc.ir import Graph, Node
from kwscc.ir.layout import input_transpose

ALIGN = 4
INPUT, OUTPUT = "input", "output"
ALIAS_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})
# ops whose every output element depends only on the input elements at the same index
INPLACE_OPS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
                         "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Max", "Min"})
MAX_SCHEDULE_STATES = 20_000


def is_alias(graph: Graph, node: Node) -> bool:
    """True for a node that emits nothing: its output is its input's bytes."""
    return node.op in ALIAS_OPS or node is input_transpose(graph)


def align_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass(slots=True)
class Buffer:
    name: str  # the tensor owning the bytes, or "scratch:<node>"
    size: int
    start: int  # first step at which it is written
    end: int  # last step at which it is read (inclusive)
    offset: int = -1
    tensors: list[str] = field(default_factory=list)  # every tensor stored in it (aliases, in-place outputs)

    @property
    def is_scratch(self) -> bool:
        return self.name.startswith("scratch:")

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.start <= other.end and other.start <= self.end

    def overlaps_in_space(self, other: Buffer) -> bool:
        return self.offset < other.offset + other.size and other.offset < self.offset + self.size


@dataclass(slots=True)
class Candidate:
    """One (execution order, allocator) pair that was tried."""

    schedule: str  # "topological" | "min-peak search" | "greedy"
    allocator: str
    arena_size: int
    lower_bound: int


@dataclass(slots=True)
class MemoryPlan:
    schedule: list[str]  # node names in execution order; the C runs its calls in this order
    buffers: list[Buffer]
    arena_size: int
    lower_bound: int  # of this schedule: max aligned bytes alive at one step
    allocator: str
    roots: dict[str, str] = field(default_factory=dict)  # tensor -> buffer name (INPUT / OUTPUT for the caller's)
    schedule_method: str = "topological"
    schedule_optimal: bool = False  # True when the search proved no order has a smaller peak of live bytes
    in_place: list[str] = field(default_factory=list)  # nodes that write over their dying input
    candidates: list[Candidate] = field(default_factory=list)
    tensor_offsets: dict[str, int] = field(default_factory=dict)  # a tensor's bytes from its buffer's start
    overlapped: dict[str, int] = field(default_factory=dict)  # node -> bytes its output starts before its input

    @property
    def efficiency(self) -> float:
        return self.lower_bound / self.arena_size if self.arena_size else 1.0

    def step(self, node: str) -> int:
        return self.schedule.index(node)

    def location(self, tensor: str) -> tuple[str, int]:
        """Where a tensor lives: (INPUT | OUTPUT | "arena", byte offset)."""
        root = self.roots.get(tensor, tensor)
        if root in (INPUT, OUTPUT):
            return root, 0
        return "arena", self.buffer(root).offset + self.tensor_offsets.get(tensor, 0)

    def buffer(self, name: str) -> Buffer:
        return next(b for b in self.buffers if b.name == name)

    def buffer_of(self, tensor: str) -> Buffer | None:
        root = self.roots.get(tensor, tensor)
        return None if root in (INPUT, OUTPUT) else self.buffer(root)

    def scratch(self, node: str) -> Buffer | None:
        return next((b for b in self.buffers if b.name == f"scratch:{node}"), None)


# ---- the problem: static facts of the graph ----------------------------------------------------------

@dataclass(slots=True)
class _Problem:
    graph: Graph
    nodes: list[Node]  # the graph's own topological order
    index: dict[str, int]
    roots: dict[str, str]  # tensor -> owning tensor through aliases (INPUT / OUTPUT for the caller's)
    readers: dict[str, set[str]]  # owning tensor -> nodes reading any tensor it owns
    pinned: set[str]  # owning tensors that stay alive to the end (extra graph outputs)
    scratch: dict[str, int]
    inplace_ops: frozenset[str]
    overlaps: dict[str, int]  # node -> delta (see the module docstring)

    def out_root(self, node: Node) -> str | None:
        """The tensor whose bytes `node` writes in the arena, or None (alias, caller's output)."""
        if is_alias(self.graph, node):
            return None
        root = self.roots[node.outputs[0]]
        return None if root in (INPUT, OUTPUT) else root

    def size(self, root: str) -> int:
        return self.graph.tensors[root].size


def _problem(graph: Graph, scratch: dict[str, int], inplace_ops, overlaps: dict[str, int]) -> _Problem:
    nodes = graph.nodes()
    roots = {name: INPUT for name in graph.inputs}
    for node in nodes:
        for out in node.outputs:
            roots[out] = out
        if is_alias(graph, node) and node.inputs:
            roots[node.outputs[0]] = roots[node.inputs[0]]
    pinned: set[str] = set()
    for i, name in enumerate(graph.outputs):
        root = roots[name]
        if root == INPUT:
            raise UnsupportedError(f"model output '{name}' is the model input itself: nothing to compute")
        if i == 0:
            roots = {t: OUTPUT if r == root else r for t, r in roots.items()}
        elif root != OUTPUT:
            pinned.add(root)
    readers: dict[str, set[str]] = {}
    for node in nodes:
        for name in node.inputs:
            if name in roots:
                readers.setdefault(roots[name], set()).add(node.name)
    return _Problem(graph, nodes, {n.name: i for i, n in enumerate(nodes)}, roots, readers, pinned,
                    dict(scratch), frozenset(inplace_ops), dict(overlaps))


# ---- execution order ------------------------------------------------------------------------------

class _Bits:
    """Bit-mask view of the problem for the order search: node i is bit i."""

    def __init__(self, p: _Problem) -> None:
        self.p = p
        n = len(p.nodes)
        producers = p.graph.producers()
        self.preds = [0] * n
        for i, node in enumerate(p.nodes):
            for name in node.inputs:
                if name in producers:
                    self.preds[i] |= 1 << p.index[producers[name]]
        self.out_root = [p.out_root(node) for node in p.nodes]
        self.out_size = [align_up(p.size(r)) if r else 0 for r in self.out_root]
        self.readers = {r: sum(1 << p.index[v] for v in vs) for r, vs in p.readers.items()}
        self.scratch = [align_up(p.scratch.get(node.name, 0)) for node in p.nodes]
        # per node: (input owning tensor, its reader mask) pairs it could write over in place
        self.inplace = []
        for i, node in enumerate(p.nodes):
            options = []
            if node.op in p.inplace_ops and self.out_root[i]:
                size = p.size(node.outputs[0])
                for name in node.inputs:
                    r = p.roots.get(name)
                    if r and r not in (INPUT, OUTPUT) and r not in p.pinned and p.size(name) == size:
                        options.append(self.readers[r])
            self.inplace.append(options)

    def live(self, done: int) -> int:
        total = 0
        for i, r in enumerate(self.out_root):
            if r and done >> i & 1 and (r in self.p.pinned or self.readers.get(r, 0) & ~done):
                total += self.out_size[i]
        return total

    def step_cost(self, done: int, live: int, i: int) -> int:
        out = self.out_size[i]
        if out and any(mask & ~done == 1 << i for mask in self.inplace[i]):
            out = 0  # written over an input that dies here
        return live + out + self.scratch[i]

    def ready(self, done: int) -> list[int]:
        return [i for i in range(len(self.preds)) if not done >> i & 1 and self.preds[i] & ~done == 0]


def _search_order(bits: _Bits, limit: int = MAX_SCHEDULE_STATES) -> list[int] | None:
    """An order of minimum peak live bytes (exact), or None when there are more than `limit` states."""
    n = len(bits.preds)
    levels: list[dict[int, tuple[int, int, int]]] = [{0: (0, -1, -1)}]  # state -> (peak, previous, node)
    states = 1
    for _ in range(n):
        nxt: dict[int, tuple[int, int, int]] = {}
        for done, (peak, _, _) in levels[-1].items():
            live = bits.live(done)
            for i in bits.ready(done):
                cost = max(peak, bits.step_cost(done, live, i))
                state = done | 1 << i
                if state not in nxt or cost < nxt[state][0]:
                    nxt[state] = (cost, done, i)
        states += len(nxt)
        if states > limit:
            return None
        levels.append(nxt)
    order, state = [], (1 << n) - 1
    for level in reversed(levels[1:]):
        _, state, node = level[state]
        order.append(node)
    return order[::-1]


def _greedy_order(bits: _Bits) -> list[int]:
    """Run the ready node of least step cost; ties: the one freeing most bytes, then graph order."""
    done, order = 0, []
    for _ in range(len(bits.preds)):
        live = bits.live(done)
        i = min(bits.ready(done), key=lambda j: (bits.step_cost(done, live, j),
                                                 bits.live(done | 1 << j) - live, j))
        order.append(i)
        done |= 1 << i
    return order


# ---- buffers of one order -------------------------------------------------------------------------

@dataclass(slots=True)
class _Layout:
    """Buffers of one order: tensor -> buffer name, offsets inside buffers, nodes in place / overlapping."""

    buffers: list[Buffer]
    roots: dict[str, str]
    offsets: dict[str, int]
    in_place: list[str]
    overlapped: dict[str, int]


def _dying_input_host(p: _Problem, buffers, roots, remaining, node: Node, candidates: list[str]) -> str | None:
    """The buffer of the first input in `candidates` that no later node reads, if any."""
    for t in candidates:
        r = roots.get(t)
        if r in buffers and r not in p.pinned and remaining.get(r, set()) <= {node.name}:
            return r
    return None


def _buffers(p: _Problem, schedule: list[str], use_overlaps: bool = False) -> _Layout:
    """Buffers with lifetimes for `schedule` (overlapping outputs over dying inputs when asked)."""
    roots = dict(p.roots)
    buffers: dict[str, Buffer] = {}
    offsets: dict[str, int] = {}  # owning tensor -> its offset inside its buffer
    remaining = {r: set(vs) for r, vs in p.readers.items()}  # buffer -> readers still to run
    in_place: list[str] = []
    overlapped: dict[str, int] = {}
    last = len(schedule) - 1
    by_name = {n.name: n for n in p.nodes}
    for step, name in enumerate(schedule):
        node = by_name[name]
        for t in node.inputs:
            b = buffers.get(roots.get(t, ""))
            if b is not None:
                b.end = max(b.end, step)
        out_root = p.out_root(node)
        if out_root is not None:
            size = p.size(node.outputs[0])
            host = None
            if node.op in p.inplace_ops:
                same_size = [t for t in node.inputs if p.size(t) == size]
                host = _dying_input_host(p, buffers, roots, remaining, node, same_size)
                if host is not None:
                    in_place.append(name)
                    t = next(t for t in same_size if roots.get(t) == host)
                    offsets[out_root] = offsets.get(p.roots[t], 0)
            elif use_overlaps and name in p.overlaps:
                host = _dying_input_host(p, buffers, roots, remaining, node, node.inputs[:1])
                if host is not None:
                    delta = p.overlaps[name]
                    start = offsets.get(p.roots[node.inputs[0]], 0) - delta
                    if start < 0:  # the buffer grows at its front: every tensor in it moves up
                        for owner in [o for o, r in roots.items() if r == host and o in offsets]:
                            offsets[owner] -= start
                        buffers[host].size -= start
                        start = 0
                    offsets[out_root] = start
                    buffers[host].size = max(buffers[host].size, start + size)
                    overlapped[name] = delta
            if host is not None:
                buffer = buffers[host]
                remaining[host] = set(p.readers.get(out_root, set()))
                for t, r in list(roots.items()):
                    if r == out_root:
                        roots[t] = host
                buffers[out_root] = buffer  # lookups through the old name reach the host
            else:
                buffer = Buffer(out_root, p.size(out_root), step, step)
                buffers[out_root] = buffer
                offsets[out_root] = 0
                remaining.setdefault(out_root, set())
            buffer.tensors += [t for t, r in roots.items() if r == buffer.name and t not in buffer.tensors]
            if out_root in p.pinned:
                buffer.end = last
        for t in node.inputs:
            r = roots.get(t)
            if r in remaining:
                remaining[r].discard(name)
        if p.scratch.get(name, 0) > 0:
            key = f"scratch:{name}"
            buffers[key] = Buffer(key, p.scratch[name], step, step)
    unique = list({id(b): b for b in buffers.values()}.values())
    tensor_offsets = {t: offsets.get(owner, 0) for t, owner in p.roots.items() if owner not in (INPUT, OUTPUT)}
    return _Layout(unique, roots, tensor_offsets, in_place, overlapped)


def lower_bound(buffers: list[Buffer], steps: int) -> int:
    """No placement can beat the largest total of (aligned) buffers alive at one step."""
    return max((sum(align_up(b.size) for b in buffers if b.start <= s <= b.end) for s in range(steps)), default=0)


# ---- allocators -----------------------------------------------------------------------------------

def _gaps(buf: Buffer, placed: list[Buffer]):
    """(offset, gap size) of every free aligned gap for `buf` among the placed buffers alive with it."""
    offset = 0
    for other in sorted((p for p in placed if p.overlaps_in_time(buf)), key=lambda p: p.offset):
        if other.offset >= offset + buf.size:
            yield offset, other.offset - offset
        offset = max(offset, align_up(other.offset + other.size))
    yield offset, None  # open-ended space above everything


def _first_fit(order: list[Buffer]) -> int:
    placed: list[Buffer] = []
    for buf in order:
        buf.offset = next(_gaps(buf, placed))[0]
        placed.append(buf)
    return max((b.offset + b.size for b in placed), default=0)


def _best_fit(order: list[Buffer]) -> int:
    """Each buffer in the smallest gap that holds it (the top of the arena if none does)."""
    placed: list[Buffer] = []
    for buf in order:
        gaps = list(_gaps(buf, placed))
        closed = [g for g in gaps if g[1] is not None]
        buf.offset = min(closed, key=lambda g: (g[1], g[0]))[0] if closed else gaps[-1][0]
        placed.append(buf)
    return max((b.offset + b.size for b in placed), default=0)


def _by_size(bufs):
    return sorted(bufs, key=lambda b: (-b.size, b.start, b.name))


ALLOCATORS = {
    "greedy-by-size": lambda bufs: _first_fit(_by_size(bufs)),
    "greedy-by-schedule": lambda bufs: _first_fit(sorted(bufs, key=lambda b: (b.start, -b.size, b.name))),
    "best-fit-by-size": lambda bufs: _best_fit(_by_size(bufs)),
}
SEARCH_ALLOCATOR = "first-fit-order-search"
SEARCH_EVALUATIONS = 400
SEARCH_WORK = 2_000_000  # cap on evaluations x buffers^2, about a second


def _order_search(bufs: list[Buffer], bound: int, evaluations: int = SEARCH_EVALUATIONS) -> int:
    """First fit over placement orders found by local search (swap two buffers, keep if no worse).

    Complete in principle: first fit in the order of any optimal placement's offsets reproduces it.
    Deterministic (fixed seed); stops at `bound`. Leaves the best offsets in `bufs`.
    """
    rng = random.Random(0)
    evaluations = min(evaluations, SEARCH_WORK // max(len(bufs), 1) ** 2)  # first fit is quadratic
    order = _by_size(bufs)
    best = _first_fit(order)
    best_offsets = [b.offset for b in bufs]
    for _ in range(evaluations):
        if best <= bound or len(order) < 2:
            break
        i, j = rng.sample(range(len(order)), 2)
        trial = list(order)
        trial[i], trial[j] = trial[j], trial[i]
        size = _first_fit(trial)
        if size <= best:  # equal moves too: they walk across plateaus
            best, order = size, trial
            best_offsets = [b.offset for b in bufs]
    for b, offset in zip(bufs, best_offsets):
        b.offset = offset
    return best


# ---- checks ---------------------------------------------------------------------------------------

def verify(plan: MemoryPlan, graph: Graph | None = None) -> None:
    """AssertionError (a kwscc bug) if the plan could corrupt a tensor."""
    for i, a in enumerate(plan.buffers):
        assert a.offset >= 0 and a.offset % ALIGN == 0 and a.offset + a.size <= plan.arena_size, a
        for b in plan.buffers[i + 1:]:
            assert not (a.overlaps_in_time(b) and a.overlaps_in_space(b)), f"{a.name} overlaps {b.name}"
    if graph is None:
        return
    step = {name: s for s, name in enumerate(plan.schedule)}
    assert sorted(step) == sorted(n.name for n in graph.nodes()), "schedule is not a permutation of the nodes"
    producers = graph.producers()
    for node in graph.nodes():
        for t in node.inputs:
            if t in producers:
                assert step[producers[t]] < step[node.name], f"{node.name} runs before the producer of {t}"
            b = plan.buffer_of(t) if t in plan.roots else None
            if b is not None:
                assert b.start <= step[node.name] <= b.end, f"{t} read by {node.name} outside its buffer's lifetime"
        b = plan.buffer_of(node.outputs[0]) if not is_alias(graph, node) else None
        if b is not None:
            assert b.start <= step[node.name] <= b.end, f"{node.name} writes outside its buffer's lifetime"
    # two values sharing one buffer may overlap only at the step where one is written over the other
    values: dict[str, list[tuple[int, int, str]]] = {}
    consumers = _consumers(graph)
    for t, root in plan.roots.items():
        producer = graph.node(producers[t]) if t in producers else None
        if root in (INPUT, OUTPUT) or producer is None or is_alias(graph, producer):
            continue
        start = step[producer.name]
        end = len(plan.schedule) - 1 if t in graph.outputs else max([start, *reader_steps(graph, t, step, consumers)])
        values.setdefault(root, []).append((start, end, producer.name))
    for root, spans in values.items():
        spans.sort()
        for (s0, e0, _), (s1, e1, writer) in zip(spans, spans[1:]):
            assert e0 <= s1, f"{root}: a value is overwritten at step {s1} while still needed until {e0}"
            if e0 == s1:
                assert writer in plan.in_place or writer in plan.overlapped, f"{root}: {writer} overwrites a live value"
    for name, delta in plan.overlapped.items():  # the output starts at least delta bytes before the input
        node = graph.node(name)
        out_at, in_at = plan.location(node.outputs[0])[1], plan.location(node.inputs[0])[1]
        assert in_at - out_at >= delta, f"{name}: output at {out_at} is less than {delta} bytes before input at {in_at}"
    for b in plan.buffers:  # every tensor inside its buffer
        for t in b.tensors:
            assert 0 <= plan.tensor_offsets.get(t, 0) <= b.size - graph.tensors[t].size, f"{t} outside {b.name}"


def _consumers(graph: Graph) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for node in graph.nodes():
        for t in dict.fromkeys(node.inputs):
            out.setdefault(t, []).append(node)
    return out


def reader_steps(graph: Graph, tensor: str, step: dict[str, int],
                 consumers: dict[str, list[Node]] | None = None) -> list[int]:
    """Steps of the nodes that read `tensor`, directly or through a chain of aliases."""
    consumers = consumers if consumers is not None else _consumers(graph)
    found, frontier = [], [tensor]
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            found.append(step[node.name])
            if is_alias(graph, node):
                frontier.append(node.outputs[0])
    return found


# ---- entry point ----------------------------------------------------------------------------------

def plan_memory(graph: Graph, scratch: dict[str, int], inplace_ops=INPLACE_OPS,
                search_limit: int = MAX_SCHEDULE_STATES, overlaps: dict[str, int] | None = None) -> MemoryPlan:
    """Arena plan for `graph` with `scratch` bytes per node name; `overlaps`: node -> delta bytes its
    output may start before its dying input (from the backend, which knows its kernels' access order)."""
    p = _problem(graph, scratch, inplace_ops, overlaps or {})
    bits = _Bits(p)
    orders: dict[str, list[int]] = {"topological": list(range(len(p.nodes)))}
    searched = _search_order(bits, search_limit)
    if searched is not None:
        orders["min-peak search"] = searched
    orders["greedy"] = _greedy_order(bits)
    best: MemoryPlan | None = None
    candidates: list[Candidate] = []
    seen: dict[tuple, str] = {}
    variants = [(m, m, o, False) for m, o in orders.items()]
    variants += [(f"{m}, overlapping", m, o, True) for m, o in orders.items()] if p.overlaps else []
    for method, order_method, order, use_overlaps in variants:
        key = (tuple(order), use_overlaps)
        if key in seen:
            continue
        seen[key] = method
        schedule = [p.nodes[i].name for i in order]
        layout = _buffers(p, schedule, use_overlaps)
        if use_overlaps and not layout.overlapped:
            continue
        template = layout.buffers
        bound = lower_bound(template, len(schedule))
        allocators = dict(ALLOCATORS)
        for name in [*ALLOCATORS, SEARCH_ALLOCATOR]:
            if name == SEARCH_ALLOCATOR:  # only when no greedy allocator reached the bound of this order
                if min(c.arena_size for c in candidates if c.schedule == method) <= bound:
                    break
                allocators[name] = lambda bufs: _order_search(bufs, bound)
            buffers = [replace(b, tensors=list(b.tensors)) for b in template]
            size = align_up(allocators[name](buffers))
            candidates.append(Candidate(method, name, size, bound))
            if best is None or (size, bound) < (best.arena_size, best.lower_bound):
                best = MemoryPlan(schedule, buffers, size, bound, name, layout.roots, order_method, False,
                                  layout.in_place, tensor_offsets=layout.offsets, overlapped=layout.overlapped)
    assert best is not None
    if searched is not None and not best.overlapped:  # the search's peak is the least any order can have
        best.schedule_optimal = best.lower_bound <= _peak(bits, searched)
    best.candidates = candidates
    verify(best, graph)
    return best


def _peak(bits: _Bits, order: list[int]) -> int:
    done, peak = 0, 0
    for i in order:
        peak = max(peak, bits.step_cost(done, bits.live(done), i))
        done |= 1 << i
    return peak
