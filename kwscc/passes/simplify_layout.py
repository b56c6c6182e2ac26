"""Remove the data movement the layout change left behind.

- Transpose of a Transpose composes into one (or nothing, when the composition is the identity).
- Two Transposes of one tensor by one permutation are one.
- A Transpose that only moves size-1 axes is a Reshape (same bytes, no copy).
- Reshape of a Reshape is one Reshape; a Reshape to the same shape disappears; a model output whose
  first axis is not the batch (a time-major sequence) gets a leading batch axis.
- Transpose -> flattening Reshape -> Dense: the permutation moves into the Dense weight columns,
  so a fully-connected layer after Flatten reads the NHWC tensor directly.
- An elementwise binary op or a Concat whose activation inputs all come through Transposes of one
  permutation runs before it instead: op(T(a), T(b)) = T(op(a, b)) (constants are permuted back,
  Concat's axis follows the permutation). The Transpose after it then cancels against the next op's.
- A Transpose after a layout-free op (elementwise activations, Pad, Crop) moves above it, permuting the
  op's per-axis attributes: it then meets the Transpose before the op and cancels, or reaches the
  model input, where quantize_input applies it for free (kwscc.ir.layout).
"""
from __future__ import annotations

import numpy as np

from kwscc.ir import Graph, Node, Tensor
from kwscc.ops.activation import TABLE_OPS
from kwscc.passes.rewrite import bypass, remove_dead_nodes, sole_consumer

LAYOUT_FREE = TABLE_OPS | {"Pad", "Crop"}


def _moves_data(shape: tuple[int, ...], perm: tuple[int, ...]) -> bool:
    kept = [p for p in perm if shape[p] != 1]
    return kept != sorted(kept)


def _compose_transposes(graph: Graph, node: Node) -> bool:
    first = graph.producer(node.inputs[0])
    if first is None or first.op != "Transpose":
        return False
    perm = tuple(first.attrs["perm"][p] for p in node.attrs["perm"])
    node.inputs[0] = first.inputs[0]
    node.attrs["perm"] = perm
    graph.edges_changed()
    if perm == tuple(range(len(perm))):
        bypass(graph, node)
    return True


def _merge_twin_transposes(graph: Graph, node: Node) -> bool:
    """Transposes of one tensor by one permutation (one per reader of an NCHW tensor) become one."""
    twins = [n for n in graph.consumers(node.inputs[0]) if n is not node and n.op == "Transpose"
             and tuple(n.attrs["perm"]) == tuple(node.attrs["perm"]) and n.outputs[0] not in graph.outputs]
    for twin in twins:
        graph.remove_node(twin.name)
        graph.replace_uses(twin.outputs[0], node.outputs[0])
    return bool(twins)


def _transpose_to_reshape(graph: Graph, node: Node) -> bool:
    shape = graph.tensors[node.inputs[0]].shape
    if _moves_data(shape, node.attrs["perm"]):
        return False
    node.op = "Reshape"
    node.attrs = {"shape": graph.tensors[node.outputs[0]].shape}
    return True


def _merge_reshapes(graph: Graph, node: Node) -> bool:
    first = graph.producer(node.inputs[0])
    if graph.tensors[node.inputs[0]].shape == graph.tensors[node.outputs[0]].shape and node.outputs[0] not in graph.outputs:
        bypass(graph, node)
        return True
    if first is None or first.op != "Reshape":
        return False
    node.inputs[0] = first.inputs[0]
    graph.edges_changed()
    return True


def _batch_axis_first(graph: Graph, node: Node) -> bool:
    """A model output reshaped so that its first axis is not the batch (a time-major sequence [T, 1, H],
    an ONNX LSTM's Y) gets a leading batch axis ([1, T, 1, H]: the same values in the same order), as
    batched float runs and the simulator read a tensor's first axis as the batch."""
    out = graph.tensors[node.outputs[0]]
    if node.outputs[0] not in graph.outputs or out.shape[:1] == (1,):
        return False
    if graph.tensors[node.inputs[0]].shape[:1] != (1,):
        return False
    node.attrs = {**node.attrs, "shape": (1, *out.shape)}
    out.shape = (1, *out.shape)
    return True


def _permute_dense_columns(graph: Graph, node: Node) -> bool:
    """Transpose(x) -> Reshape [N, K] -> Dense(s): feed Dense from Reshape(x) with permuted weights."""
    flatten = sole_consumer(graph, node.outputs[0])
    if flatten is None or flatten.op != "Reshape" or node.attrs["perm"][0] != 0:
        return False
    in_shape = graph.tensors[node.inputs[0]].shape
    flat_shape = graph.tensors[flatten.outputs[0]].shape
    denses = graph.consumers(flatten.outputs[0])
    if len(flat_shape) != 2 or flat_shape[0] != in_shape[0] or not denses or any(
        d.op != "Dense" or d.inputs[0] != flatten.outputs[0] for d in denses
    ) or flatten.outputs[0] in graph.outputs:
        return False
    # position j of the transposed flattening holds element order[j] of x's flattening
    order = np.arange(int(np.prod(in_shape[1:]))).reshape(in_shape[1:])
    order = order.transpose([p - 1 for p in node.attrs["perm"][1:]]).reshape(-1)
    for dense in denses:
        w = graph.tensors[dense.inputs[1]].data
        permuted = np.empty_like(w)
        permuted[:, order] = w
        dense.inputs[1] = graph.add_const(dense.inputs[1] + "_nhwc", permuted).name
    flatten.inputs[0] = node.inputs[0]
    # its values are now in another order: a new name, never taken for the model's tensor by its name
    reordered = graph.unique_tensor_name(flatten.outputs[0] + "_nhwc")
    graph.add_tensor(Tensor(reordered, flat_shape, graph.tensors[flatten.outputs[0]].dtype))
    # its provenance says which order: the transposed tensor's elements in x's order
    inverse = tuple(int(i) for i in np.argsort(node.attrs["perm"]))
    graph.permute_origin(reordered, flatten.outputs[0], graph.tensors[node.outputs[0]].shape, inverse)
    flatten.outputs = [reordered]
    for dense in denses:
        dense.inputs[0] = reordered
    graph.edges_changed()
    return True


def _permuted_for(graph: Graph, node: Node, perm: tuple[int, ...]) -> None:
    """Rewrite `node`'s per-axis attributes for an input transposed by `perm` (new axis a = old perm[a])."""
    if node.op == "Pad":
        node.attrs["pads"] = tuple(node.attrs["pads"][p] for p in perm)
    elif node.op == "Crop":
        node.attrs["axis"] = perm.index(node.attrs["axis"])
    elif node.op == "PRelu":
        slope = graph.tensors[node.inputs[1]].data
        slope = slope.reshape((1,) * (len(perm) - slope.ndim) + slope.shape)
        node.inputs[1] = graph.add_const(node.inputs[1] + "_t", np.ascontiguousarray(slope.transpose(perm))).name


def _hoist_transpose(graph: Graph, node: Node) -> bool:
    """op -> Transpose becomes Transpose -> op (with its attributes permuted)."""
    below = sole_consumer(graph, node.outputs[0])
    if below is None or below.op != "Transpose":
        return False
    perm = below.attrs["perm"]
    moved = graph.unique_tensor_name(node.inputs[0] + "_t")
    below.inputs, below.outputs, node.inputs[0], node.outputs = [node.inputs[0]], [moved], moved, below.outputs
    _permuted_for(graph, node, perm)
    graph.infer_node(below)
    graph.infer_node(node)
    graph.edges_changed()
    graph.permute_origin(moved, below.inputs[0], graph.tensors[below.inputs[0]].shape, tuple(perm))
    return True


def _sink_transposes(graph: Graph, node: Node) -> bool:
    """op(T(a), T(b)) -> T(op(a, b)) for a binary op or Concat whose activations all arrive transposed."""
    producers = [graph.producer(t) for t in node.inputs if not graph.tensors[t].is_const]
    if not producers or any(p is None or p.op != "Transpose" for p in producers):
        return False
    perm = tuple(producers[0].attrs["perm"])
    if any(tuple(p.attrs["perm"]) != perm for p in producers):
        return False
    rank, inverse = len(perm), np.argsort(perm)
    inputs = []
    for name in node.inputs:
        tensor = graph.tensors[name]
        if not tensor.is_const:
            inputs.append(graph.producer(name).inputs[0])
            continue
        if node.op == "Concat" or tensor.data.ndim > rank:
            return False
        value = tensor.data.reshape((1,) * (rank - tensor.data.ndim) + tensor.data.shape)
        inputs.append(graph.add_const(name + "_permuted", np.ascontiguousarray(value.transpose(inverse))).name)
    out = node.outputs[0]
    node.inputs = inputs
    node.outputs = [graph.unique_tensor_name(out + "_untransposed")]
    if node.op == "Concat":
        node.attrs["axis"] = perm[node.attrs["axis"] % rank]
    graph.infer_node(node)
    graph.add_node(Node(graph.unique_node_name(node.name + "_transpose"), "Transpose", list(node.outputs), [out],
                        {"perm": perm}))
    graph.permute_origin(node.outputs[0], out, graph.tensors[out].shape, tuple(int(p) for p in inverse))
    return True


SINKS_TRANSPOSES = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Concat")
RULES = {
    "Transpose": (_compose_transposes, _merge_twin_transposes, _transpose_to_reshape, _permute_dense_columns),
    "Reshape": (_merge_reshapes, _batch_axis_first),
    **{op: (_sink_transposes,) for op in SINKS_TRANSPOSES},
    **{op: (_hoist_transpose,) for op in LAYOUT_FREE},
}


def run(graph: Graph) -> bool:
    changed, progress = False, True
    while progress:
        progress = False
        for node in graph.nodes():
            if not graph.has_node(node.name):
                continue
            for rule in RULES.get(node.op, ()):
                if rule(graph, node):
                    progress = changed = True
                    remove_dead_nodes(graph)
                    break
            if progress:
                break
    return changed
