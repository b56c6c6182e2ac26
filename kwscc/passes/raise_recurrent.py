"""Raise unrolled recurrent cells into one LSTM / GRU node (kwscc.ops.recurrent).

Converters that unroll a recurrent layer (TensorFlow's unrolled graphs, kwscc's own unrolling of
ONNX Scan and TFLite WHILE) leave T copies of the cell: frame t of the sequence is a Crop of one
sequence tensor, and each step computes its state from that frame and the previous step's state
through FullyConnected (Dense), Split (Crop), Sigmoid, Tanh, Mul, Add and Sub; an LSTM's cell and
projection clips are Clips (kwscc.passes.clip_bounds makes them from MINIMUM / MAXIMUM), and a state
may be reshaped on its way to the next step. This pass finds those
chains and replaces them by one node in the canonical form, so calibration, the simulator and the
backends see a cell and run one kernel.

How a chain is found:
  1. every full step is matched structurally (kwscc.passes.recurrent_steps: gate blocks named by the
     activation and the product they feed, their weights, biases and peepholes in canonical form);
  2. steps are chained through their state (step t's h and c are step t+1's inputs) and their frames
     must be Crops t = k..T-1 of one sequence tensor. A chain starting at frame 1 follows a step 0 the
     converter folded with the zero initial state; a chain starting at frame 0 reads its initial state
     from constants;
  3. the region (every node between the frames and the steps' outputs) may read nothing else and may
     leave only hidden states to the rest of the graph: the last one (output "last") or several
     (output "sequence"; each then comes from a Crop of the node's sequence output, and a stack of
     them all in step order, TF's PACK of the step outputs, is a Reshape of it);
  4. before the rewrite, the region (run by kwscc's IR executor) and the new node's float reference
     must agree on random inputs. A chain that fails any check stays as it was.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from kwscc.ir import Graph, Node, Tensor
from kwscc.ir.execute import run_float
from kwscc.ops import REGISTRY
from kwscc.passes.recurrent_steps import CellView, Step, match_steps
from kwscc.passes.rewrite import remove_dead_nodes

log = logging.getLogger(__name__)

TOLERANCE = 1e-5  # relative: float32 IR arithmetic against the float64 reference, over every step
TRIALS = 3  # random input sequences each candidate is checked on


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


def _chains(view: CellView) -> list[Chain]:
    steps = match_steps(view)
    by_input: dict[str, list[Step]] = {}
    for step in steps:
        by_input.setdefault(step.h_prev, []).append(step)
    outputs = {step.h for step in steps}
    chains = []
    for start in steps:
        if start.h_prev in outputs:
            continue
        chain = [start]
        while len(following := [s for s in by_input.get(chain[-1].h, []) if s.c_prev == chain[-1].c
                                and s.params.keys() == chain[-1].params.keys() and s.attrs == chain[-1].attrs]) == 1:
            chain.append(following[0])
        found = _frames(view, chain)
        if found is not None:
            chains.append(found)
    return chains


def _frames(view: CellView, steps: list[Step]) -> Chain | None:
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


def _region(view: CellView, chain: Chain) -> tuple[list[Node], list[str]] | None:
    """The nodes the chain replaces and the hidden states the rest of the graph reads, or None."""
    import networkx as nx  # here, not at the top: only a recurrent chain needs it (its import takes 0.1 s)

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


def _initial(view: CellView, chain: Chain, name: str | None, size: int) -> np.ndarray:
    if chain.first:
        return np.zeros(size, np.float32)
    return np.broadcast_to(view.const(name).reshape(-1), (size,)).astype(np.float32)


def _inputs(view: CellView, chain: Chain) -> dict[str, np.ndarray]:
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


def _raise(view: CellView, chain: Chain) -> bool:
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
    if not last and leaving == chain.states:
        _stacks_as_reshapes(graph, out, leaving)
    log.info("raised %d unrolled %s steps into node '%s' (output %s)", steps, step.op, name,
             "last" if last else "sequence")
    return True


def _stacks_as_reshapes(graph: Graph, sequence: str, states: list[str]) -> None:
    """A Concat of every step's state in step order (TF's stack of the step outputs: PACK, or
    Unsqueeze + Concat), laid out one state after the other, is the raised node's sequence output
    reshaped: no copy, and the per-step Crops it read go."""
    def state_of(tensor: str) -> str | None:
        while tensor not in states:
            node = graph.producer(tensor)
            if node is None or node.op != "Reshape":
                return None
            tensor = node.inputs[0]
        return tensor

    for node in graph.nodes():
        if node.op != "Concat" or [state_of(t) for t in node.inputs] != states:
            continue
        shape = graph.tensors[node.outputs[0]].shape
        if int(np.prod(shape[:node.attrs["axis"] % len(shape)])) != 1:
            continue  # the states interleave in the result
        graph.remove_node(node.name)
        graph.add_node(Node(node.name, "Reshape", [sequence], list(node.outputs), {"shape": shape}))
        log.debug("the stack of %d steps '%s' reads the sequence output", len(states), node.outputs[0])
    remove_dead_nodes(graph)


def run(graph: Graph) -> bool:
    """Raise every verified chain; a raised layer's frames may start the next layer's chain."""
    changed = remove_dead_nodes(graph)
    rejected: set[str] = set()
    while True:
        view = CellView(graph)
        chains = [c for c in _chains(view) if c.steps[-1].h not in rejected]
        for chain in chains:
            if _raise(view, chain):
                changed = True
                break
            rejected.add(chain.steps[-1].h)
        else:
            return changed
