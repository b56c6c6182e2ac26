"""One step of an unrolled recurrent layer, matched structurally (for kwscc.passes.raise_recurrent).

Each gate's pre-activation is reduced to a linear form: rows of the weights applied to each operand
(the frame, the previous state), a bias, and the terms that are not linear (peepholes, GRU's
reset-after product). Which activation and which product a gate block feeds names it:
  LSTM  h = o * tanh(c) (optionally projected by a bias-free Dense), c = f * c_prev + i * tanh(g);
  GRU   h = z * h_prev + (1 - z) * n, n = tanh(x W_n + (r * h_prev) R_n + b) (linear_before_reset 0)
        or tanh(x W_n + b + r * (h_prev R_n + b_r)) (1).
The parameters come out in the canonical form of kwscc.ops.recurrent (ONNX gate order).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kwscc.ir import Graph, Node


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


class CellView:
    """Read-only lookups on the graph, built once per scan (graph.producer is linear per call)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producers = {out: node for node in graph.nodes() for out in node.outputs}

    def node(self, tensor: str, op: str) -> Node | None:
        """The node of type `op` (without a fused clamp) that writes `tensor`, if that is its producer."""
        node = self.producers.get(tensor)
        if node is None or node.op != op or node.attrs.get("act") is not None:
            return None
        return node

    def const(self, tensor: str) -> np.ndarray | None:
        t = self.graph.tensors[tensor]
        return np.asarray(t.data, np.float64) if t.is_const else None

    def width(self, tensor: str) -> int:
        shape = self.graph.tensors[tensor].shape
        return shape[-1] if shape and int(np.prod(shape[:-1])) == 1 else -1

    def origin(self, tensor: str) -> str:
        """The tensor `tensor` reshapes (through size-keeping Reshapes): a state read as [1, 1, H]
        by the next step is still that state."""
        size = self.graph.tensors[tensor].size
        while (node := self.node(tensor, "Reshape")) is not None and self.graph.tensors[node.inputs[0]].size == size:
            tensor = node.inputs[0]
        return tensor

    def clipped(self, tensor: str) -> tuple[str, float | None]:
        """(x, bound) when `tensor` is Clip(x, -bound, bound) (a cell or projection clip), else (tensor, None)."""
        node = self.node(tensor, "Clip")
        if node is None or len(node.inputs) != 1:
            return tensor, None
        lo, hi = node.attrs.get("min", -np.inf), node.attrs.get("max", np.inf)
        if not (0 < hi < np.inf and lo == -hi):
            return tensor, None
        return node.inputs[0], float(hi)

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
        if not 0 <= lo < hi <= width:
            return None  # also a tensor that is not one row of features (width -1): not a gate
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


def _split_operands(view: CellView, lins: list[Linear]) -> tuple[str, str] | None:
    """(frame, previous state): the two operands every gate reads, told apart by which is a frame."""
    names = set(lins[0].weights)
    if len(names) != 2 or any(set(lin.weights) != names for lin in lins):
        return None
    frames = [name for name in names if view.frame(name) is not None]
    if len(frames) != 1:
        return None
    return frames[0], next(iter(names - set(frames)))


def _peephole(view: CellView, lin: Linear, cell: str, hidden: int) -> np.ndarray | None:
    """The diagonal weights of `lin`'s only non-linear term Mul(cell, P); zeros without one."""
    if not lin.others:
        return np.zeros(hidden)
    if len(lin.others) != 1:
        return None
    for a, b in view.products(lin.others[0]):
        p = view.const(b)
        if view.origin(a) == cell and p is not None and p.size in (1, hidden):
            return np.broadcast_to(p.reshape(-1), (hidden,)).copy()
    return None


def _match_lstm(view: CellView, h: str) -> Step | None:
    """h = o * tanh(c) (or its projection through a bias-free Dense), c = f * c_prev + i * tanh(g)."""
    m, proj = h, None
    projected, proj_clip = view.clipped(h)
    dense = view.node(projected, "Dense")
    if dense is not None and len(dense.inputs) == 2 and view.const(dense.inputs[1]) is not None:
        m, proj = dense.inputs[0], view.const(dense.inputs[1])
    clips = {"proj_clip": proj_clip} if proj is not None and proj_clip else {}
    for o_out, tanh_c in view.products(m):
        tanh = view.node(tanh_c, "Tanh")
        lin_o = view.gate(o_out, "Sigmoid")
        if tanh is None or lin_o is None:
            continue
        c = tanh.inputs[0]
        summed, cell_clip = view.clipped(c)
        add = view.node(summed, "Add")
        if add is None:
            continue
        for forget, inp in (add.inputs, add.inputs[::-1]):
            for f_out, c_prev in view.products(forget):
                for i_out, g_out in view.products(inp):
                    step = _lstm_step(view, h, c, view.origin(c_prev), [
                        view.gate(i_out, "Sigmoid"), lin_o, view.gate(f_out, "Sigmoid"), view.gate(g_out, "Tanh")],
                        proj, {**clips, **({"cell_clip": cell_clip} if cell_clip else {})})
                    if step is not None:
                        return step
    return None


def _lstm_step(view: CellView, h: str, c: str, c_prev: str, lins: list[Linear | None],
               proj: np.ndarray | None, clips: dict) -> Step | None:
    """Gate forms in ONNX order i, o, f, g -> the canonical LSTM's parameters (clips: cell_clip and
    proj_clip where the cell has them)."""
    if None in lins:
        return None
    operands = _split_operands(view, lins)
    if operands is None:
        return None
    x, h_read = operands  # the state as the gates read it (perhaps a Reshape of it)
    h_prev = view.origin(h_read)
    hidden = lins[0].bias.size
    peepholes = [_peephole(view, lins[0], c_prev, hidden), _peephole(view, lins[1], c, hidden),
                 _peephole(view, lins[2], c_prev, hidden)]
    if any(p is None for p in peepholes) or lins[3].others or view.width(c) != hidden:
        return None
    params = {"W": np.concatenate([lin.weights[x] for lin in lins]),
              "R": np.concatenate([lin.weights[h_read] for lin in lins]),
              "B": np.concatenate([lin.bias for lin in lins]), "P": np.concatenate(peepholes)}
    if proj is not None:
        params["Wp"] = proj
    return Step("LSTM", x, h_prev, h, params, {"hidden_size": hidden, **clips}, c_prev, c)


def _match_gru(view: CellView, h: str) -> Step | None:
    """h = z * h_prev + (1 - z) * n, or n + z * (h_prev - n)."""
    add = view.node(h, "Add")
    if add is None:
        return None
    for first, second in (add.inputs, add.inputs[::-1]):
        for z, h_prev in view.products(first):
            h_prev = view.origin(h_prev)
            for one_minus_z, n in view.products(second):
                sub = view.node(one_minus_z, "Sub")
                one = None if sub is None else view.const(sub.inputs[0])
                if one is None or sub.inputs[1] != z or not np.all(one == 1.0):
                    continue
                step = _gru_step(view, h, h_prev, view.gate(z, "Sigmoid"), n)
                if step is not None:
                    return step
        for z, difference in view.products(second):
            sub = view.node(difference, "Sub")
            if sub is not None and sub.inputs[1] == first:
                step = _gru_step(view, h, view.origin(sub.inputs[0]), view.gate(z, "Sigmoid"), first)
                if step is not None:
                    return step
    return None


def _gru_step(view: CellView, h: str, h_prev: str, lin_z: Linear | None, n: str) -> Step | None:
    lin_n = view.gate(n, "Tanh")
    if lin_z is None or lin_n is None or lin_z.others:
        return None
    hidden = lin_z.bias.size
    reset_after = len(lin_n.others) == 1 and len(lin_n.weights) == 1
    candidates = lin_n.others if reset_after else [name for name in lin_n.weights if view.frame(name) is None]
    if len(candidates) != 1:
        return None
    for r, rest in view.products(view.origin(candidates[0])):
        lin_r = view.gate(r, "Sigmoid")
        if lin_r is None or lin_r.others:
            continue
        operands = _split_operands(view, [lin_z, lin_r])
        if operands is None or view.origin(operands[1]) != h_prev:
            continue
        x, h_read = operands
        if reset_after:
            lin_hr = view.linear(rest, 0, hidden, hidden)
            if lin_hr is None or lin_hr.others or len(lin_hr.weights) != 1 or set(lin_n.weights) != {x}:
                continue
            (read, r_n), rb_n = next(iter(lin_hr.weights.items())), lin_hr.bias
            if view.origin(read) != h_prev:
                continue
        else:
            if view.origin(rest) != h_prev or set(lin_n.weights) != {x, candidates[0]} or lin_n.others:
                continue
            r_n, rb_n = lin_n.weights[candidates[0]], np.zeros(hidden)
        params = {"W": np.concatenate([lin_z.weights[x], lin_r.weights[x], lin_n.weights[x]]),
                  "R": np.concatenate([lin_z.weights[h_read], lin_r.weights[h_read], r_n]),
                  "Wb": np.concatenate([lin_z.bias, lin_r.bias, lin_n.bias]),
                  "Rb": np.concatenate([np.zeros(2 * hidden), rb_n])}
        return Step("GRU", x, h_prev, h, params, {"hidden_size": hidden, "linear_before_reset": reset_after})
    return None


MATCHERS = {"Mul": _match_lstm, "Dense": _match_lstm, "Clip": _match_lstm, "Add": _match_gru}  # Clip: a clipped projection




def match_steps(view: CellView) -> list[Step]:
    """Every full step in the graph. An LSTM step followed by a bias-free Dense matches twice, with
    and without a projection (the Dense may be the next step's recurrent matmul): the chain decides."""
    steps = []
    for node in view.graph.nodes():
        match = MATCHERS.get(node.op)
        step = match(view, node.outputs[0]) if match else None
        if step is not None:
            steps.append(step)
    return steps
