"""Lowering of IR nodes to CMSIS_5 5.9.0 q7 calls (and kwscc's own kernels): choice, arguments, scratch.

Each lowering returns a LegacyCall, a plain-data view model that one template under
templates/cmsis_nn_legacy/ops/ turns into C. Function choice follows constraints.py (the first candidate
whose preconditions hold). Scratch (bufferA / vec_buffer) is what the library's DSP path uses, allocated
for every core (the pure-C path ignores it):
  conv _basic / _fast / _RGB:  2 * ch_in * kx * ky q15     1x1 fast: 2 * ch_in q15
  depthwise:                   ch * kx * ky q7 (its DSP im2col; measured, the CMSIS doc over-asks)
  fully connected (and _opt):  dim_vec q15                  max pool, relu, softmax, kwscc kernels: none
A fused ReLU becomes arm_relu_q7 on the layer's output (in place, in chunks below 65536); any other
fused clamp (ReLU6, Clip) becomes kwscc_clamp_q7.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kwscc.backends.cmsis_nn.kernels import ConstArray
from kwscc.backends.cmsis_nn_legacy import constraints as cons
from kwscc.backends.cmsis_nn_legacy.quantize import pool_out_hw
from kwscc.backends.cmsis_nn_legacy.simulate import block_diagonal, fc_opt_interleave, is_depthwise_q7
from kwscc.errors import UnsupportedError
from kwscc.ir import Graph, Node
from kwscc.ir.layout import input_transpose
from kwscc.quant.quantize import QuantModel

RELU_CHUNK = 65532  # arm_relu_q7 takes a uint16_t size; chunks stay multiples of 4


@dataclass(slots=True)
class LegacyCall:
    node: Node
    function: str  # what the report shows: the main function, "+ arm_relu_q7" / "+ kwscc_clamp_q7" if any
    template: str
    params: dict
    scratch: dict[str, int]  # bytes, the same for every build (c, dsp, mve)
    macs: int = 0
    arrays: list[ConstArray] = field(default_factory=list)
    kernels: tuple[str, ...] = ()  # kwscc kernel templates the call needs (templates/cmsis_nn_legacy/kernels)


def _scratch(nbytes: int) -> dict[str, int]:
    return {"c": nbytes, "dsp": nbytes, "mve": nbytes}


def _is_alias(graph: Graph, node: Node) -> bool:
    """Emits nothing: a reshape, or the model input's transpose (quantize_input applies it)."""
    return node.op == "Reshape" or node is input_transpose(graph)


def _roots(graph: Graph) -> dict[str, str]:
    """Each activation tensor -> the tensor owning its bytes (aliases share their input's)."""
    roots = {name: name for name in graph.inputs}
    for node in graph.nodes():
        roots[node.outputs[0]] = roots[node.inputs[0]] if _is_alias(graph, node) else node.outputs[0]
    return roots


def _placement(graph: Graph, node: Node) -> tuple[bool, bool]:
    """(input lives in the arena, nothing but `node` reads the input's bytes)."""
    roots = _roots(graph)
    root = roots[node.inputs[0]]
    aliases = {t for t, r in roots.items() if r == root}
    in_arena = root not in graph.inputs and not aliases & set(graph.outputs)
    readers = {n.name for n in graph.nodes() if not _is_alias(graph, n) and aliases & set(n.inputs)}
    return in_arena, readers == {node.name}


def _post(layer_act: tuple[int, int], size: int) -> tuple[list[dict], tuple[str, ...], str]:
    """In-place activation after a call: (post-op views, kwscc kernels, report suffix)."""
    lo, hi = layer_act
    if (lo, hi) == (-128, 127):
        return [], (), ""
    if (lo, hi) == (0, 127):
        chunks = [(start, min(RELU_CHUNK, size - start)) for start in range(0, size, RELU_CHUNK)]
        return [{"function": "arm_relu_q7", "chunks": chunks}], (), " + arm_relu_q7"
    return [{"function": "kwscc_clamp_q7", "size": size, "lo": lo, "hi": hi}], ("kwscc_clamp_q7",), " + kwscc_clamp_q7"


def _geometry(graph: Graph, node: Node, kernel, ch_out: int) -> cons.Geometry:
    x, y = graph.tensors[node.inputs[0]].shape, graph.tensors[node.outputs[0]].shape
    a = node.attrs
    in_arena, dead_after = _placement(graph, node)
    return cons.Geometry(in_y=x[1], in_x=x[2], ch_in=x[3], ch_out=ch_out, k_y=kernel[0], k_x=kernel[1],
                         pad_y=a["pads"][0], pad_x=a["pads"][1], stride_y=a["strides"][0], stride_x=a["strides"][1],
                         out_y=y[1], out_x=y[2], input_in_arena=in_arena, input_dead_after=dead_after)


def _q_arrays(prefix: str, weights: np.ndarray, layer) -> list[ConstArray]:
    return [ConstArray(f"{prefix}_w", "q7_t", weights.reshape(-1), "weights"),
            ConstArray(f"{prefix}_b", "q7_t", layer.bias_q7, "bias")]


def lower_conv(qm: QuantModel, node: Node, prefix: str) -> LegacyCall:
    graph, layer = qm.graph, qm.layers[node.name]
    w = layer.weights
    cout = w.shape[0]
    g = _geometry(graph, node, w.shape[1:3], cout)
    if is_depthwise_q7(node, g.ch_in, cout):
        function = cons.select(cons.DEPTHWISE_ORDER, g, node)
        weights = w[:, :, :, 0].transpose(1, 2, 0)  # [KH][KW][C]
        scratch = (g.ch_in * g.k_x * g.k_y + 3) // 4 * 4
        macs = g.out_y * g.out_x * cout * g.k_y * g.k_x
    else:
        function = cons.select(cons.CONV_ORDER, g, node)
        weights = block_diagonal(w, node.attrs["group"])  # a grouped conv as a dense one (zeros elsewhere)
        scratch = 4 * g.ch_in * (1 if function.startswith("arm_convolve_1x1") else g.k_x * g.k_y)
        macs = g.out_y * g.out_x * cout * g.k_y * g.k_x * g.ch_in
    post, kernels, suffix = _post(layer.act, int(np.prod(graph.tensors[node.outputs[0]].shape)))
    params = {"fn": function, "square": not function.endswith("nonsquare"), **g.args(),
              "bias_shift": layer.bias_shift, "out_shift": layer.out_shift, "post": post, "status": True}
    return LegacyCall(node, function + suffix, "ops/conv.c.j2", params, _scratch(scratch), macs,
                      _q_arrays(prefix, weights, layer), kernels)


def lower_dense(qm: QuantModel, node: Node, prefix: str) -> LegacyCall:
    layer = qm.layers[node.name]
    rows, dim_vec = layer.weights.shape
    opt = rows >= 4
    function = "arm_fully_connected_q7_opt" if opt else "arm_fully_connected_q7"
    weights = fc_opt_interleave(layer.weights) if opt else layer.weights
    post, kernels, suffix = _post(layer.act, rows)
    params = {"fn": function, "dim_vec": dim_vec, "rows": rows, "bias_shift": layer.bias_shift,
              "out_shift": layer.out_shift, "post": post, "status": True}
    return LegacyCall(node, function + suffix, "ops/fully_connected.c.j2", params, _scratch(2 * dim_vec),
                      rows * dim_vec, _q_arrays(prefix, weights, layer), kernels)


def lower_pool(qm: QuantModel, node: Node, prefix: str) -> LegacyCall:
    graph, layer, a = qm.graph, qm.layers[node.name], node.attrs
    x = graph.tensors[node.inputs[0]].shape
    g = _geometry(graph, node, a["kernel"], x[3])
    assert (g.out_y, g.out_x) == tuple(pool_out_hw(graph, node))
    if node.op == "AveragePool":
        function = "kwscc_avepool_q7_HWC"
    else:
        function = cons.select(cons.MAXPOOL_ORDER, g, node)
    kernels = (function,) if function.startswith("kwscc_") else ()
    post, post_kernels, suffix = ([], (), "")
    if function == "arm_maxpool_q7_HWC":  # the kwscc pools clamp themselves
        post, post_kernels, suffix = _post(layer.act, int(np.prod(graph.tensors[node.outputs[0]].shape)))
    params = {"fn": function, **g.args(), "lshift": layer.lshift, "act": layer.act, "post": post,
              "status": False}
    return LegacyCall(node, function + suffix, "ops/pool.c.j2", params, _scratch(0), 0, [],
                      kernels + post_kernels)


def lower_softmax(qm: QuantModel, node: Node, prefix: str) -> LegacyCall:
    layer = qm.layers[node.name]
    shape = qm.graph.tensors[node.inputs[0]].shape
    params = {"rows": int(np.prod(shape[:-1])), "row_size": shape[-1], "input_frac": qm.formats[node.inputs[0]].frac,
              "post": [], "status": False}
    if layer.softmax == "cmsis":
        params["fn"] = "arm_softmax_q7"
        return LegacyCall(node, "arm_softmax_q7", "ops/softmax.c.j2", params, _scratch(0))
    params["fn"] = "kwscc_softmax_q7"
    table = ConstArray(f"{prefix}_exp", "uint16_t", layer.table, "shift")
    return LegacyCall(node, "kwscc_softmax_q7", "ops/softmax.c.j2", params, _scratch(0), 0, [table],
                      ("kwscc_softmax_q7",))


def lower(qm: QuantModel, node: Node, prefix: str) -> LegacyCall | None:
    """The call for one node; None for aliases, which emit nothing."""
    if _is_alias(qm.graph, node):
        return None
    if node.op == "Conv":
        return lower_conv(qm, node, prefix)
    if node.op == "Dense":
        return lower_dense(qm, node, prefix)
    if node.op in ("MaxPool", "AveragePool"):
        return lower_pool(qm, node, prefix)
    if node.op == "Softmax":
        return lower_softmax(qm, node, prefix)
    raise UnsupportedError(f"node '{node.name}' ({node.op}) has no cmsis-nn-legacy lowering")
