"""Raise unrolled recurrent cells into one LSTM / GRU node (kwscc.ops.recurrent).

Converters that unroll a recurrent layer (TensorFlow's unrolled graphs, kwscc's own unrolling of
ONNX Scan and TFLite WHILE) leave T copies of the cell: frame t of the sequence is a Crop of one
sequence tensor, and each step computes its state from that frame and the previous step's state
through FullyConnected (Dense), Split (Crop), Sigmoid, Tanh, Mul, Add and Sub. This pass finds those
chains and replaces them by one node in the canonical form, so calibration, the simulator and the
backends see a cell and run one kernel.

How a chain is found:
  1. every full step is matched structurally: each gate's pre-activation is reduced to a linear form
     (rows of the weights applied to each operand, a bias, and the terms that are not linear: the
     peepholes, GRU's reset-after product); which activation and which product a gate block feeds
     names it (LSTM: i, f, g, o; GRU: z, r, n, with r * h before or after the recurrent matmul);
  2. steps are chained through their state (step t's h and c are step t+1's inputs) and their frames
     must be Crops t = k..T-1 of one sequence tensor. A chain starting at frame 1 follows a step 0 the
     converter folded with the zero initial state; a chain starting at frame 0 reads its initial state
     from constants;
  3. the region (every node between the frames and the steps' outputs) may read nothing else and may
     leave only hidden states to the rest of the graph: the last one (output "last") or several
     (output "sequence"; each then comes from a Crop of the node's sequence output);
  4. before the rewrite, the region (run by kwscc's IR executor) and the new node's float reference
     must agree on random inputs. A chain that fails any check stays as it was.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from kwscc.ir import Graph, Node, Tensor
from kwscc.ir.execute import run_float
from kwscc.ops import REGISTRY
from kwscc.passes.rewrite import remove_dead_nodes

log = logging.getLogger(__name__)

TOLERANCE = 1e-5  # relative: float32 IR arithmetic against the float64 reference, over every step
TRIALS = 3  # random input sequences each candidate is checked on


@dataclass
class Linear:
    """A tensor as sum_k operand_k @ weights[operand_k].T + bias + sum(others) (rows: its columns)."""

    weights: dict[str, np.ndarray]
    bias: np.ndarray
    others: list[str] = field(default_factory=list)

    def add(self, other: Linear) -> None:
        for name, w in other.weights.items():
            self.weights[name] = self.weights[name] + w if name in self.weights else w
        self.bias = self.bias + other.bias
        self.others += other.others


@dataclass
class Step:
    """One matched step: its frame, state in and out, and its cell's parameters (canonical form)."""

    op: str
    x: str
    h_prev: str
    h: str
    params: dict[str, np.ndarray]
    attrs: dict
    c_prev: str | None = None
    c: str | None = None
    unprojected: str | None = None  # an LSTM with a projection: h before it (o * tanh(c))


class _View:
    """Read-only lookups on the graph, built once per scan (graph.producer is linear per call)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producers = {out: node for node in graph.nodes() for out in node.outputs}

    def node(self, tensor: str, op: str | tuple[str, ...]) -> Node | None:
        node = self.producers.get(tensor)
        ops = (op,) if isinstance(op, str) else op
        if node is None or node.op not in ops or node.attrs.get("act") is not None:
            return None
        return node

    def const(self, tensor: str) -> np.ndarray | None:
        t = self.graph.tensors[tensor]
        return np.asarray(t.data, np.float64) if t.is_const else None

    def width(self, tensor: str) -> int:
        shape = self.graph.tensors[tensor].shape
        return shape[-1] if shape and int(np.prod(shape[:-1])) == 1 else -1

    def last_axis(self, node: Node, tensor: str) -> bool:
        return node.attrs["axis"] % len(self.graph.tensors[tensor].shape) == len(self.graph.tensors[tensor].shape) - 1

    # ---- gates ------------------------------------------------------------------------------
    def activated(self, tensor: str, op: str) -> tuple[str, int, int] | None:
        """(pre-activation, columns lo, hi) when `tensor` is op(pre)[lo:hi] or op(pre[lo:hi])."""
        node = self.node(tensor, op)
        if node is not None:
            return node.inputs[0], 0, self.width(node.inputs[0])
        crop = self.node(tensor, "Crop")
        if crop is not None and self.last_axis(crop, crop.inputs[0]):
            inner = self.node(crop.inputs[0], op)
            if inner is not None:
                return inner.inputs[0], crop.attrs["start"], crop.attrs["end"]
        return None

    def linear(self, tensor: str, lo: int, hi: int, width: int) -> Linear | None:
        """Columns [lo, hi) of `tensor` (broadcast to `width` columns) as a Linear, or None."""
        rows = hi - lo
        value = self.const(tensor)
        if value is not None:
            flat = value.reshape(-1)
            if flat.size == 1:
                return Linear({}, np.full(rows, flat[0]))
            if flat.size == width and value.shape[-1] == width:
                return Linear({}, flat[lo:hi].copy())
            return None
        if self.width(tensor) != width:
            return None
        node = self.producers.get(tensor)
        if node is None or node.attrs.get("act") is not None:
            return Linear({}, np.zeros(rows), [tensor]) if (lo, hi) == (0, width) else None
        if node.op == "Crop" and self.last_axis(node, node.inputs[0]):
            start = node.attrs["start"]
            return self.linear(node.inputs[0], start + lo, start + hi, self.width(node.inputs[0]))
        if node.op == "Add":
            parts = [self.linear(name, lo, hi, width) for name in node.inputs]
            if None in parts:
                return None
            parts[0].add(parts[1])
            return parts[0]
        if node.op == "Dense" and self.const(node.inputs[1]) is not None:
            return self._dense(node, lo, hi)
        return Linear({}, np.zeros(rows), [tensor]) if (lo, hi) == (0, width) else None

    def _dense(self, node: Node, lo: int, hi: int) -> Linear | None:
        w = self.const(node.inputs[1])[lo:hi]
        bias = np.zeros(hi - lo)
        if len(node.inputs) > 2:
            b = self.const(node.inputs[2])
            if b is None:
                return None
            bias = b.reshape(-1)[lo:hi].copy()
        operands = [node.inputs[0]]
        concat = self.node(node.inputs[0], "Concat")
        if concat is not None and self.last_axis(concat, node.inputs[0]):
            operands = list(concat.inputs)
        widths = [self.width(name) for name in operands]
        if min(widths) < 1 or sum(widths) != w.shape[1] or len(set(operands)) != len(operands):
            return None
        offsets = np.cumsum([0] + widths)
        return Linear({name: w[:, a:b] for name, a, b in zip(operands, offsets, offsets[1:])}, bias)

    def gate(self, tensor: str, op: str) -> Linear | None:
        """The Linear pre-activation of a gate op(...) (Sigmoid, Tanh)."""
        found = self.activated(tensor, op)
        if found is None:
            return None
        pre, lo, hi = found
        return self.linear(pre, lo, hi, self.width(pre))

    def products(self, tensor: str) -> list[tuple[str, str]]:
        """Both orders of a Mul's inputs (no fused clamp), or none."""
        node = self.node(tensor, "Mul")
        return [] if node is None else [tuple(node.inputs), tuple(reversed(node.inputs))]

    def frame(self, tensor: str) -> tuple[str, int, int] | None:
        """(sequence, axis, t) when `tensor` is the Crop [t, t+1) of one axis (through Reshapes)."""
        size = self.graph.tensors[tensor].size
        while (node := self.node(tensor, "Reshape")) is not None:
            tensor = node.inputs[0]
        crop = self.node(tensor, "Crop")
        if crop is None or crop.attrs["end"] - crop.attrs["start"] != 1:
            return None
        seq = self.graph.tensors[crop.inputs[0]]
        axis = crop.attrs["axis"] % len(seq.shape)
        if seq.is_const or int(np.prod(seq.shape[:axis])) != 1 or int(np.prod(seq.shape[axis + 1:])) != size:
            return None
        return seq.name, axis, crop.attrs["start"]


def _split_operands(view: _View, lins: list[Linear]) -> tuple[str, str] | None:
    """(frame, previous state): the two operands every gate reads, told apart by which is a frame."""
    names = set(lins[0].weights)
    if len(names) != 2 or any(set(lin.weights) != names for lin in lins):
        return None
    frames = [name for name in names if view.frame(name) is not None]
    if len(frames) != 1:
        return None
    return frames[0], next(iter(names - set(frames)))


def _peephole(view: _View, lin: Linear, cell: str, hidden: int) -> np.ndarray | None:
    """The diagonal weights of `lin`'s only non-linear term Mul(cell, P); zeros without one."""
    if not lin.others:
        return np.zeros(hidden)
    if len(lin.others) != 1:
        return None
    for a, b in view.products(lin.others[0]):
        p = view.const(b)
        if a == cell and p is not None and p.size in (1, hidden):
            return np.broadcast_to(p.reshape(-1), (hidden,)).copy()
    return None


def _match_lstm(view: _View, h: str) -> Step | None:
    """h = o * tanh(c) (or its projection through a bias-free Dense), c = f * c_prev + i * tanh(g)."""
    m, proj = h, None
    dense = view.node(h, "Dense")
    if dense is not None and len(dense.inputs) == 2 and view.const(dense.inputs[1]) is not None:
        m, proj = dense.inputs[0], view.const(dense.inputs[1])
    for o_out, tanh_c in view.products(m):
        tanh = view.node(tanh_c, "Tanh")
        lin_o = view.gate(o_out, "Sigmoid")
        if tanh is None or lin_o is None:
            continue
        c = tanh.inputs[0]
        add = view.node(c, "Add")
        if add is None:
            continue
        for forget, inp in (add.inputs, add.inputs[::-1]):
            for f_out, c_prev in view.products(forget):
                for i_out, g_out in view.products(inp):
                    step = _lstm_step(view, h, c, c_prev, [view.gate(i_out, "Sigmoid"), lin_o,
                                                         view.gate(f_out, "Sigmoid"), view.gate(g_out, "Tanh")], proj)
                    if step is not None:
                        step.unprojected = m if proj is not None else None
                        return step
    return None


def _lstm_step(view: _View, h: str, c: str, c_prev: str, lins: list[Linear | None],
               proj: np.ndarray | None) -> Step | None:
    """Gate forms in ONNX order i, o, f, g -> the canonical LSTM's parameters."""
    if None in lins:
        return None
    operands = _split_operands(view, lins)
    if operands is None:
        return None
    x, h_prev = operands
    hidden = lins[0].bias.size
    peepholes = [_peephole(view, lins[0], c_prev, hidden), _peephole(view, lins[1], c, hidden),
                 _peephole(view, lins[2], c_prev, hidden)]
    if any(p is None for p in peepholes) or lins[3].others or view.width(c) != hidden:
        return None
    params = {"W": np.concatenate([lin.weights[x] for lin in lins]),
              "R": np.concatenate([lin.weights[h_prev] for lin in lins]),
              "B": np.concatenate([lin.bias for lin in lins]), "P": np.concatenate(peepholes)}
    if proj is not None:
        params["Wp"] = proj
    return Step("LSTM", x, h_prev, h, params, {"hidden_size": hidden}, c_prev, c)


def _match_gru(view: _View, h: str) -> Step | None:
    """h = z * h_prev + (1 - z) * n, n = tanh(x W_n + (r * h_prev) R_n) or tanh(x W_n + r * (h_prev R_n))."""
    add = view.node(h, "Add")
    if add is None:
        return None
    for keep, update in (add.inputs, add.inputs[::-1]):
        for z, h_prev in view.products(keep):
            for one_minus_z, n in view.products(update):
                sub = view.node(one_minus_z, "Sub")
                one = None if sub is None else view.const(sub.inputs[0])
                if one is None or sub.inputs[1] != z or not np.all(one == 1.0):
                    continue
                step = _gru_step(view, h, h_prev, view.gate(z, "Sigmoid"), n)
                if step is not None:
                    return step
    return None


def _gru_step(view: _View, h: str, h_prev: str, lin_z: Linear | None, n: str) -> Step | None:
    lin_n = view.gate(n, "Tanh")
    if lin_z is None or lin_n is None or lin_z.others:
        return None
    hidden = lin_z.bias.size
    reset_after = len(lin_n.others) == 1 and len(lin_n.weights) == 1
    candidates = lin_n.others if reset_after else [name for name in lin_n.weights if view.frame(name) is None]
    if len(candidates) != 1:
        return None
    for r, rest in view.products(candidates[0]):
        lin_r = view.gate(r, "Sigmoid")
        if lin_r is None or lin_r.others:
            continue
        operands = _split_operands(view, [lin_z, lin_r])
        if operands is None or operands[1] != h_prev:
            continue
        x = operands[0]
        if reset_after:
            lin_hr = view.linear(rest, 0, hidden, hidden)
            if lin_hr is None or lin_hr.others or set(lin_hr.weights) != {h_prev} or set(lin_n.weights) != {x}:
                continue
            r_n, rb_n = lin_hr.weights[h_prev], lin_hr.bias
        else:
            if rest != h_prev or set(lin_n.weights) != {x, candidates[0]} or lin_n.others:
                continue
            r_n, rb_n = lin_n.weights[candidates[0]], np.zeros(hidden)
        params = {"W": np.concatenate([lin_z.weights[x], lin_r.weights[x], lin_n.weights[x]]),
                  "R": np.concatenate([lin_z.weights[h_prev], lin_r.weights[h_prev], r_n]),
                  "Wb": np.concatenate([lin_z.bias, lin_r.bias, lin_n.bias]),
                  "Rb": np.concatenate([np.zeros(2 * hidden), rb_n])}
        return Step("GRU", x, h_prev, h, params, {"hidden_size": hidden, "linear_before_reset": reset_after})
    return None


MATCHERS = {"Mul": _match_lstm, "Dense": _match_lstm, "Add": _match_gru}


@dataclass
class Chain:
    steps: list[Step]
    seq: str
    axis: int
    first: int  # frame index of the first matched step (0, or 1 after a folded step 0)

    @property
    def states(self) -> list[str]:
        """Every step's hidden state, step 0's included (the first matched step's input)."""
        return ([self.steps[0].h_prev] if self.first else []) + [s.h for s in self.steps]


def _chains(view: _View) -> list[Chain]:
    steps = []
    for node in view.graph.nodes():
        match = MATCHERS.get(node.op)
        step = match(view, node.outputs[0]) if match else None
        if step is not None:
            steps.append(step)
    inner = {step.unprojected for step in steps}
    steps = [step for step in steps if step.h not in inner]  # o * tanh(c) is a step only without a projection
    by_input: dict[str, list[Step]] = {}
    for step in steps:
        by_input.setdefault(step.h_prev, []).append(step)
    outputs = {step.h for step in steps}
    chains = []
    for start in steps:
        if start.h_prev in outputs:
            continue
        chain = [start]
        while len(following := by_input.get(chain[-1].h, [])) == 1 and following[0].c_prev == chain[-1].c:
            chain.append(following[0])
        found = _frames(view, chain)
        if found is not None:
            chains.append(found)
    return chains


def _frames(view: _View, steps: list[Step]) -> Chain | None:
    frames = [view.frame(step.x) for step in steps]
    if None in frames:
        return None
    seq, axis, first = frames[0]
    total = view.graph.tensors[seq].shape[axis]
    if frames != [(seq, axis, first + t) for t in range(len(steps))] or first + len(steps) != total:
        return None
    # a step reading a constant state had its state terms folded (e.g. peepholes on a zero cell): the
    # cell's parameters come from the last step, and the numeric check covers the first
    compared = steps[1:] if first == 0 else steps
    if first > 1 or total < 2 or any(not _same(steps[-1].params, s.params) or s.attrs != steps[-1].attrs
                                     for s in compared):
        return None
    initial = [steps[0].h_prev, steps[0].c_prev] if steps[0].op == "LSTM" else [steps[0].h_prev]
    if (first == 0) != all(view.const(name) is not None for name in initial):
        return None
    return Chain(steps, seq, axis, first)


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and np.allclose(a[k], b[k], rtol=1e-6, atol=0)
                                        for k in a)


def _region(view: _View, chain: Chain) -> tuple[list[Node], list[str]] | None:
    """The nodes the chain replaces and the hidden states the rest of the graph reads, or None."""
    graph = view.graph
    g = graph.nx
    crops = [n for n in graph.consumers(chain.seq) if n.op == "Crop" and n.attrs["axis"] % len(
        graph.tensors[chain.seq].shape) == chain.axis and n.attrs["end"] - n.attrs["start"] == 1]
    ends = {view.producers[name].name for name in chain.states}
    below = {n.name for n in crops}.union(*(nx.descendants(g, n.name) for n in crops))
    above = set(ends).union(*(nx.ancestors(g, name) for name in ends))
    names = below & above
    nodes = [n for n in graph.nodes() if n.name in names]
    produced = {out for n in nodes for out in n.outputs}
    if any(not (name in produced or name == chain.seq or graph.tensors[name].is_const)
           for n in nodes for name in n.inputs):
        return None  # the region reads another activation
    used_outside = {name for n in graph.nodes() if n.name not in names for name in n.inputs} | set(graph.outputs)
    leaving = [name for name in chain.states if name in used_outside]
    if (produced & used_outside) - set(leaving) or not leaving:
        return None
    return nodes, leaving


def _initial(view: _View, chain: Chain, name: str | None, size: int) -> np.ndarray:
    if chain.first:
        return np.zeros(size, np.float32)
    return np.broadcast_to(view.const(name).reshape(-1), (size,)).astype(np.float32)


def _inputs(view: _View, chain: Chain) -> dict[str, np.ndarray]:
    """The new node's constant inputs, float32, in the op's order."""
    step = chain.steps[0]
    p = {k: v.astype(np.float32) for k, v in chain.steps[-1].params.items()}
    hidden = step.attrs["hidden_size"]
    state = p["Wp"].shape[0] if "Wp" in p else hidden
    if step.op == "GRU":
        return {"W": p["W"], "R": p["R"], "Wb": p["Wb"], "Rb": p["Rb"],
                "h0": _initial(view, chain, step.h_prev, hidden)}
    inputs = {"W": p["W"], "R": p["R"], "B": p["B"], "P": p["P"], "h0": _initial(view, chain, step.h_prev, state),
              "c0": _initial(view, chain, step.c_prev, hidden)}
    if "Wp" in p:
        inputs["Wp"] = p["Wp"]
    return inputs


def _verify(graph: Graph, chain: Chain, nodes: list[Node], node: Node, consts: dict[str, np.ndarray]) -> bool:
    """The region run by the IR executor and the new node's reference agree on random sequences."""
    seq = graph.tensors[chain.seq]
    sub = Graph("cell")
    sub.add_tensor(Tensor(seq.name, seq.shape))
    sub.inputs = [seq.name]
    for n in nodes:
        for name in n.inputs + n.outputs:
            if name != seq.name:
                sub.add_tensor(graph.tensors[name])
        sub.add_node(Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs)), infer=False)
    steps, features = seq.shape[chain.axis], seq.size // seq.shape[chain.axis]
    rng = np.random.default_rng(0)
    for _ in range(TRIALS):
        x = rng.standard_normal(seq.shape).astype(np.float32)
        values = run_float(sub, {seq.name: x})
        got = np.stack([values[name].reshape(-1) for name in chain.states])
        ref = REGISTRY[node.op].run(node, [x.reshape(1, steps, features), *consts.values()])[0].reshape(steps, -1)
        if got.shape != ref.shape or np.max(np.abs(got - ref)) > TOLERANCE * max(1.0, float(np.max(np.abs(ref)))):
            log.debug("%s chain at %s: the raised node differs by %.3g", node.op, chain.seq,
                      float(np.max(np.abs(got - ref))) if got.shape == ref.shape else np.inf)
            return False
    return True


def _raise(view: _View, chain: Chain) -> bool:
    graph = view.graph
    region = _region(view, chain)
    if region is None:
        return False
    nodes, leaving = region
    step = chain.steps[-1]
    consts = _inputs(view, chain)
    last = leaving == [chain.states[-1]]
    probe = Node("probe", step.op, [], [], {**step.attrs, "output": "sequence"})
    try:
        if not _verify(graph, chain, nodes, probe, consts):
            return False
    except (ValueError, IndexError, KeyError) as exc:  # an op's reference refused the shapes: not this cell
        log.debug("%s chain at %s not verified: %s", step.op, chain.seq, exc)
        return False
    for n in nodes:
        graph.remove_node(n.name)
    seq = graph.tensors[chain.seq]
    steps = seq.shape[chain.axis]
    x = chain.seq
    if seq.shape != (1, steps, seq.size // steps):
        x = graph.unique_tensor_name(f"{chain.seq}_batch_first")
        graph.add_node(Node(f"{x}_reshape", "Reshape", [chain.seq], [x], {"shape": (1, steps, seq.size // steps)}))
    names = [graph.add_const(f"{step.op.lower()}_{what}", value).name for what, value in consts.items()]
    name = graph.unique_node_name(f"raised_{step.op.lower()}")
    out = graph.unique_tensor_name(f"{name}_{'last' if last else 'sequence'}")
    if last and graph.tensors[leaving[0]].shape == (1, consts["h0"].size):
        out = leaving[0]  # the final state keeps its name: its readers need no change
    graph.add_node(Node(name, step.op, [x, *names], [out], {**step.attrs, "output": "last" if last else "sequence"}))
    graph.node_sources[name] = f"{len(chain.steps) + chain.first} unrolled {step.op} steps"
    for state in leaving if out not in leaving else []:
        t = chain.states.index(state)
        src = out
        if not last:
            src = graph.unique_tensor_name(f"{out}_{t}")
            graph.add_node(Node(f"{name}_step{t}", "Crop", [out], [src], {"axis": 1, "start": t, "end": t + 1}))
        graph.add_node(Node(f"{name}_h{t}", "Reshape", [src], [state], {"shape": graph.tensors[state].shape}))
    log.info("raised %d unrolled %s steps into one node (output %s)", steps, step.op, "last" if last else "sequence")
    return True


def run(graph: Graph) -> bool:
    """Raise every verified chain; a raised layer's frames may start the next layer's chain."""
    changed = remove_dead_nodes(graph)
    rejected: set[str] = set()
    while True:
        view = _View(graph)
        chains = [c for c in _chains(view) if c.steps[-1].h not in rejected]
        for chain in chains:
            if _raise(view, chain):
                changed = True
                break
            rejected.add(chain.steps[-1].h)
        else:
            return changed
