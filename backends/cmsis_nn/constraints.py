"""What the cmsis-nn backend can emit. Each constraint's docstring is the message a user sees."""
from __future__ import annotations

from kwscc.backends.base import check_constraints
from kwscc.ir import Graph, Node
from kwscc.ops.activation import TABLE_OPS

LOWERABLE = ("Conv", "Dense", "MaxPool", "AveragePool", "Softmax", "Reshape", "Add", "Sub", "Mul", "Max", "Min",
             "Concat", "Pad", "Transpose", "Crop", *sorted(TABLE_OPS))


def constraint_batch_one(graph: Graph, node: Node) -> bool:
    """batch size must be 1 (microcontroller inference runs one sample at a time)"""
    return all(graph.tensors[t].shape[0] == 1 for t in node.outputs if graph.tensors[t].shape)


def constraint_conv_groups(graph: Graph, node: Node) -> bool:
    """a grouped Conv needs group == 1, group == input channels (depthwise), or channels divisible by group"""
    group, cin = node.attrs["group"], graph.tensors[node.inputs[0]].shape[-1]
    cout = graph.tensors[node.outputs[0]].shape[-1]
    return group == 1 or (cin % group == 0 and cout % group == 0)


def constraint_softmax_last_axis(graph: Graph, node: Node) -> bool:
    """Softmax must run over the last axis (or one followed only by size-1 axes)"""
    return all(d == 1 for d in graph.tensors[node.inputs[0]].shape[node.attrs["axis"] + 1:])


def constraint_nhwc(graph: Graph, node: Node) -> bool:
    """spatial ops must take a 4-D NHWC tensor"""
    return node.attrs.get("layout") == "NHWC" and len(graph.tensors[node.inputs[0]].shape) == 4


def constraint_same_shapes(graph: Graph, node: Node) -> bool:
    """an activation input must have the output's shape (a constant operand may broadcast: it is stored expanded to the output's shape, one byte per value)"""
    out = graph.tensors[node.outputs[0]].shape
    return all(graph.tensors[t].is_const or graph.tensors[t].shape == out for t in node.inputs)


def constraint_concat_shapes(graph: Graph, node: Node) -> bool:
    """inputs must have the same rank and agree on every axis but the concatenation axis"""
    shapes = [graph.tensors[t].shape for t in node.inputs]
    axis = node.attrs["axis"] % len(shapes[0])
    return all(len(s) == len(shapes[0]) and s[:axis] + s[axis + 1:] == shapes[0][:axis] + shapes[0][axis + 1:]
               for s in shapes)


BINARY = (constraint_batch_one, constraint_same_shapes)


def constraint_batch_axis_kept(graph: Graph, node: Node) -> bool:
    """the batch axis must stay first and unpadded, with at most 4 axes besides it"""
    if node.op == "Transpose":
        return node.attrs["perm"][0] == 0 and len(node.attrs["perm"]) <= 5
    return node.attrs["pads"][0] == (0, 0) and len(node.attrs["pads"]) <= 4


def constraint_not_the_batch_axis(graph: Graph, node: Node) -> bool:
    """a Split must not split the batch axis"""
    return node.attrs["axis"] != 0


def constraint_slope_per_channel(graph: Graph, node: Node) -> bool:
    """the PRelu slope must be one constant, or one per channel (the last axis once kwscc has made the layout NHWC)"""
    from kwscc.quant.lut import channel_slopes

    return channel_slopes(graph, node) is not None


RNN_DOT_LIMIT = 1 << 17  # int8 x int8 products summed in int32 by kwscc_gru_s8 / kwscc_lstm_s8 stay exact below it


def constraint_recurrent_depth(graph: Graph, node: Node) -> bool:
    """input features, hidden size and projection size below 131072 (kwscc's int32 dot products)"""
    return all(d < RNN_DOT_LIMIT for name in node.inputs[:3] for d in graph.tensors[name].shape)


CONSTRAINTS = {
    "LSTM": (constraint_batch_one, constraint_recurrent_depth),
    "GRU": (constraint_batch_one, constraint_recurrent_depth),
    "Conv": (constraint_batch_one, constraint_nhwc, constraint_conv_groups),
    "Dense": (constraint_batch_one,),
    "MaxPool": (constraint_batch_one, constraint_nhwc),
    "AveragePool": (constraint_batch_one, constraint_nhwc),
    "Softmax": (constraint_softmax_last_axis,),
    "Reshape": (),
    "Add": BINARY, "Sub": BINARY, "Mul": BINARY, "Max": BINARY, "Min": BINARY,
    "Concat": (constraint_batch_one, constraint_concat_shapes),
    "Pad": (constraint_batch_one, constraint_batch_axis_kept),
    "Transpose": (constraint_batch_one, constraint_batch_axis_kept),
    "Crop": (constraint_batch_one, constraint_not_the_batch_axis),
    **{op: (constraint_batch_one,) for op in sorted(TABLE_OPS - {"PRelu"})},
    "PRelu": (constraint_batch_one, constraint_slope_per_channel),
}

def check(graph: Graph) -> None:
    """Raise UnsupportedError naming the first node the backend cannot emit."""
    check_constraints(graph, CONSTRAINTS)


TABLE_COST = {op: "256 B of flash" for op in TABLE_OPS} | {
    "PRelu": "256 B of flash per distinct slope (1 or one per channel)",
    "Relu": "256 B of flash, where no Conv, Gemm or pool absorbs it (else free)",
    "Clip": "256 B of flash, where no Conv, Gemm or pool absorbs it (else free)",
}
# how each op is computed, for `kwscc supported-ops`
KERNELS = {
    "Conv": "arm_convolve_wrapper_s8 / arm_depthwise_conv_wrapper_s8",
    "Dense": "arm_fully_connected_s8 (per-tensor) or a 1x1 arm_convolve_wrapper_s8 (per-channel)",
    "MaxPool": "arm_max_pool_s8", "AveragePool": "arm_avgpool_s8 (also ReduceMean / MEAN over H, W or both)",
    "Softmax": "arm_softmax_s8", "Reshape": "nothing (an alias of its input's bytes)",
    "Add": "arm_elementwise_add_s8 (a constant operand: an int8 array in flash)",
    "Sub": "arm_elementwise_add_s8 (the second input negated; a constant operand: an int8 array in flash)",
    "Mul": "arm_elementwise_mul_s8 (a constant operand: an int8 array in flash)",
    "Max": "kwscc_max_min_s8 (with one constant value: a Clip, fused into the op before it or a table)",
    "Min": "kwscc_max_min_s8 (with one constant value: a Clip, fused into the op before it or a table)",
    "Concat": "kwscc_concat_s8 (constant inputs copied from int8 arrays in flash)",
    "Pad": "kwscc_pad_s8 (a zero pad before a Conv folds into its padding instead)",
    "Transpose": "kwscc_transpose_s8; nothing at the model input (quantize_input writes NHWC from NCHW)",
    "Crop": "kwscc_crop_s8 (each output of a Split / SPLIT / SPLIT_V: a copy of its slice)",
    **{op: f"kwscc_table_s8: an exact 256-entry int8 lookup table, {TABLE_COST[op]}" for op in TABLE_OPS},
    "LSTM": "arm_lstm_unidirectional_s8 (int16 gates and cell state; scratch: 3 x 2H bytes, + T x H for the "
            "last step); with peepholes, a projection (O values) or a nonzero initial state kwscc_lstm_s8 with "
            "arm_nn_activation_s16 (scratch: about 11H + O bytes)",
    "GRU": "kwscc_gru_s8 with arm_nn_activation_s16 (int16 gates and state; scratch: 12H bytes)",
}


def describe() -> list[tuple[str, str]]:
    """(op, text) rows for `kwscc supported-ops`: how each op is computed, then its constraints."""
    return [row for op, cs in CONSTRAINTS.items() for row in [(op, "-> " + KERNELS[op])] + [(op, c.__doc__) for c in cs]]
