"""What the cmsis-nn-legacy backend can emit, and every CMSIS_5 5.9.0 q7 function's preconditions.

check(graph) rejects what no function can compute. For each layer, kernels.py then picks the first
function of its candidate list whose preconditions (FUNCTIONS below) all hold; a predicate's docstring is
the message a user sees. Besides the library's own argument checks (ARM_MATH_SIZE_MISMATCH), the
preconditions exclude every call whose result depends on the library's build (ARM_MATH_DSP or not),
as measured in the CMSIS-NN facts (part 2): _fast with padding beyond pad * stride, pools with padding,
and arm_avepool_q7_HWC, whose DSP path truncates twice (never emitted: kwscc_avepool_q7_HWC instead).
"""
from __future__ import annotations

from dataclasses import dataclass

from kwscc.backends.base import check_constraints
from kwscc.errors import UnsupportedError
from kwscc.ir import Graph, Node
from kwscc.ir.layout import input_transpose
from kwscc.ops.activation import TABLE_OPS
from kwscc.quant.kernels import _pool_counts

U16_MAX = 65535  # the q7 API's dimension arguments and its ch_in * kx * ky column count are uint16_t
I16_MAX = 32767  # its loop indices are int16_t: image, kernel and channel extents must stay below 2^15

LOWERABLE = ("Conv", "Dense", "MaxPool", "AveragePool", "Softmax", "Reshape")


@dataclass(frozen=True, slots=True)
class Geometry:
    """One conv / pool call in the q7 API's terms (x = width, y = height; only the top/left pad is passed)."""

    in_y: int
    in_x: int
    ch_in: int
    ch_out: int
    k_y: int
    k_x: int
    pad_y: int
    pad_x: int
    stride_y: int
    stride_x: int
    out_y: int
    out_x: int
    input_in_arena: bool = True  # False: the caller's const input buffer
    input_dead_after: bool = False  # no later reader of the input's bytes (a DSP max pool overwrites them)

    @property
    def pad_after_y(self) -> int:
        return (self.out_y - 1) * self.stride_y + self.k_y - self.in_y - self.pad_y

    @property
    def pad_after_x(self) -> int:
        return (self.out_x - 1) * self.stride_x + self.k_x - self.in_x - self.pad_x

    def args(self) -> dict:
        return {f: getattr(self, f) for f in ("in_y", "in_x", "ch_in", "ch_out", "k_y", "k_x", "pad_y", "pad_x",
                                              "stride_y", "stride_x", "out_y", "out_x")}


# ----------------------------------------------------------------------------- preconditions


def int16_extents(g: Geometry) -> bool:
    """image, kernel, padding, stride and channel extents must stay below 32768 (the q7 functions loop with int16_t indices)"""
    reach_y = (g.out_y - 1) * g.stride_y + g.k_y
    reach_x = (g.out_x - 1) * g.stride_x + g.k_x
    return max(g.in_y, g.in_x, g.ch_in, g.ch_out, g.k_y, g.k_x, g.pad_y, g.pad_x, g.stride_y, g.stride_x,
               g.out_y, g.out_x, reach_y, reach_x) <= I16_MAX


def uint16_columns(g: Geometry) -> bool:
    """ch_in * kernel_x * kernel_y must stay below 65536 (the q7 im2col counts columns in uint16_t)"""
    return g.ch_in * g.k_x * g.k_y <= U16_MAX


def square(g: Geometry) -> bool:
    """the square function needs equal x and y image, kernel, padding, stride and output sizes"""
    return g.in_y == g.in_x and g.k_y == g.k_x and g.pad_y == g.pad_x and g.stride_y == g.stride_x \
        and g.out_y == g.out_x


def fast_channels(g: Geometry) -> bool:
    """_fast needs ch_im_in % 4 == 0 and ch_im_out % 2 == 0 (else ARM_MATH_SIZE_MISMATCH)"""
    return g.ch_in % 4 == 0 and g.ch_out % 2 == 0


def fast_dsp_geometry(g: Geometry) -> bool:
    """_fast's DSP im2col reads outside the image unless pad_after <= padding * stride and padding <= dim_im_out on both axes"""
    return g.pad_after_y <= g.pad_y * g.stride_y and g.pad_after_x <= g.pad_x * g.stride_x \
        and g.pad_y <= g.out_y and g.pad_x <= g.out_x


def rgb_channels(g: Geometry) -> bool:
    """_RGB needs ch_im_in == 3"""
    return g.ch_in == 3


def rgb_input_in_arena(g: Geometry) -> bool:
    """_RGB's DSP path reads one byte past its input: not on the caller's input buffer"""
    return g.input_in_arena


def one_by_one(g: Geometry) -> bool:
    """the 1x1 function needs a 1x1 kernel, no padding and stride 1 (else ARM_MATH_SIZE_MISMATCH)"""
    return (g.k_y, g.k_x, g.pad_y, g.pad_x, g.stride_y, g.stride_x) == (1, 1, 0, 0, 1, 1) \
        and (g.out_y, g.out_x) == (g.in_y, g.in_x)


def depthwise_channels(g: Geometry) -> bool:
    """the depthwise functions need ch_im_out == ch_im_in (depth multiplier 1)"""
    return g.ch_in == g.ch_out


def pool_no_padding(g: Geometry) -> bool:
    """arm_maxpool_q7_HWC's DSP path is only right with padding 0"""
    return g.pad_y == 0 and g.pad_x == 0


def pool_input_destroyable(g: Geometry) -> bool:
    """arm_maxpool_q7_HWC's DSP path overwrites its input: the input must be an arena tensor nothing reads later"""
    return g.input_in_arena and g.input_dead_after


CONV = (int16_extents, uint16_columns)
FUNCTIONS = {
    "arm_convolve_1x1_HWC_q7_fast_nonsquare": (*CONV, fast_channels, one_by_one),
    "arm_convolve_HWC_q7_RGB": (*CONV, rgb_channels, square, rgb_input_in_arena),
    "arm_convolve_HWC_q7_fast": (*CONV, fast_channels, fast_dsp_geometry, square),
    "arm_convolve_HWC_q7_fast_nonsquare": (*CONV, fast_channels, fast_dsp_geometry),
    "arm_convolve_HWC_q7_basic": (*CONV, square),
    "arm_convolve_HWC_q7_basic_nonsquare": CONV,
    "arm_depthwise_separable_conv_HWC_q7": (*CONV, depthwise_channels, square),
    "arm_depthwise_separable_conv_HWC_q7_nonsquare": (*CONV, depthwise_channels),
    "arm_maxpool_q7_HWC": (int16_extents, square, pool_no_padding, pool_input_destroyable),
    "kwscc_maxpool_q7_HWC": (),
    "kwscc_avepool_q7_HWC": (),
}
CONV_ORDER = ("arm_convolve_1x1_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_fast",
              "arm_convolve_HWC_q7_fast_nonsquare", "arm_convolve_HWC_q7_basic", "arm_convolve_HWC_q7_basic_nonsquare")
DEPTHWISE_ORDER = ("arm_depthwise_separable_conv_HWC_q7", "arm_depthwise_separable_conv_HWC_q7_nonsquare")
MAXPOOL_ORDER = ("arm_maxpool_q7_HWC", "kwscc_maxpool_q7_HWC")


def failed(function: str, g: Geometry) -> list[str]:
    """Docstrings of the preconditions of `function` that `g` violates."""
    return [p.__doc__ for p in FUNCTIONS[function] if not p(g)]


def select(order: tuple[str, ...], g: Geometry, node: Node) -> str:
    """The first function of `order` whose preconditions hold; UnsupportedError naming what failed otherwise."""
    for function in order:
        if not failed(function, g):
            return function
    last = order[-1]
    raise UnsupportedError(f"node '{node.name}' ({node.op}): {last}: " + "; ".join(failed(last, g)))


def fc_limits(dim_vec: int, rows: int) -> bool:
    """a fully connected layer needs at most 32767 inputs and outputs (uint16_t arguments, int16_t loops)"""
    return dim_vec <= I16_MAX and rows <= I16_MAX


def softmax_limits(dim_vec: int) -> bool:
    """softmax rows must have at most 32767 elements (uint16_t dim_vec)"""
    return dim_vec <= I16_MAX


# ----------------------------------------------------------------------------- graph-level checks


def constraint_batch_one(graph: Graph, node: Node) -> bool:
    """batch size must be 1 (microcontroller inference runs one sample at a time)"""
    return all(graph.tensors[t].shape[0] == 1 for t in node.outputs if graph.tensors[t].shape)


def constraint_nhwc(graph: Graph, node: Node) -> bool:
    """spatial ops must take a 4-D NHWC tensor"""
    return node.attrs.get("layout") == "NHWC" and len(graph.tensors[node.inputs[0]].shape) == 4


def constraint_no_dilation(graph: Graph, node: Node) -> bool:
    """the q7 API has no dilated convolution"""
    return tuple(node.attrs["dilations"]) == (1, 1)


def constraint_conv_groups(graph: Graph, node: Node) -> bool:
    """a grouped Conv needs channels divisible by group (it is emitted as depthwise or as a dense conv)"""
    group, cin = node.attrs["group"], graph.tensors[node.inputs[0]].shape[-1]
    cout = graph.tensors[node.outputs[0]].shape[-1]
    return group == 1 or (cin % group == 0 and cout % group == 0)


def constraint_pool_windows(graph: Graph, node: Node) -> bool:
    """every pooling window must cover at least one input pixel (the q7 API has no value for an all-padding window)"""
    a = node.attrs
    x, y = graph.tensors[node.inputs[0]].shape, graph.tensors[node.outputs[0]].shape
    try:
        _pool_counts(x[1:3], y[1:3], a["kernel"], a["strides"], a["pads"][:2])
    except ValueError:
        return False
    return True


def constraint_pool_extents(graph: Graph, node: Node) -> bool:
    """pool extents must stay below 32768 (int16_t loops)"""
    x, y = graph.tensors[node.inputs[0]].shape, graph.tensors[node.outputs[0]].shape
    return max(*x[1:], *y[1:], *node.attrs["kernel"], *node.attrs["strides"], *node.attrs["pads"]) <= I16_MAX


def constraint_softmax_last_axis(graph: Graph, node: Node) -> bool:
    """Softmax must run over the last axis"""
    return node.attrs["axis"] == len(graph.tensors[node.inputs[0]].shape) - 1


def constraint_dense_limits(graph: Graph, node: Node) -> bool:
    return fc_limits(graph.tensors[node.inputs[0]].shape[-1], graph.tensors[node.outputs[0]].shape[-1])


constraint_dense_limits.__doc__ = fc_limits.__doc__


def constraint_softmax_limits(graph: Graph, node: Node) -> bool:
    return softmax_limits(graph.tensors[node.inputs[0]].shape[-1])


constraint_softmax_limits.__doc__ = softmax_limits.__doc__

def refused(graph: Graph, node: Node) -> bool:
    """not supported by the cmsis-nn-legacy backend (the q7 API has no such function and kwscc has no q7 kernel for it yet): use --backend cmsis-nn"""
    return False


def constraint_input_layout_only(graph: Graph, node: Node) -> bool:
    """a Transpose that moves data is not supported by the cmsis-nn-legacy backend (only the model input's NCHW to NHWC, which quantize_input applies): use --backend cmsis-nn"""
    return node is input_transpose(graph)


def constraint_fused_only(graph: Graph, node: Node) -> bool:
    """must directly follow a Conv, Gemm/MatMul or pool whose output nothing else reads: the cmsis-nn-legacy backend has no standalone activation (--backend cmsis-nn has)"""
    return False


CONSTRAINTS = {
    "Conv": (constraint_batch_one, constraint_nhwc, constraint_no_dilation, constraint_conv_groups),
    "Dense": (constraint_batch_one, constraint_dense_limits),
    "MaxPool": (constraint_batch_one, constraint_nhwc, constraint_pool_extents, constraint_pool_windows),
    "AveragePool": (constraint_batch_one, constraint_nhwc, constraint_pool_extents, constraint_pool_windows),
    "Softmax": (constraint_softmax_last_axis, constraint_softmax_limits),
    "Reshape": (),
    **{op: (refused,) for op in ("Add", "Sub", "Mul", "Max", "Min", "Concat", "Pad", "Crop", "LSTM", "GRU",
                                 *sorted(TABLE_OPS - {"Relu", "Clip"}))},
    "Transpose": (constraint_input_layout_only,),
    "Relu": (constraint_fused_only,),
    "Clip": (constraint_fused_only,),
}

def check(graph: Graph) -> None:
    """Raise UnsupportedError naming the first node the backend cannot emit."""
    check_constraints(graph, CONSTRAINTS)


def describe() -> list[tuple[str, str]]:
    """(op or function, constraint text) rows."""
    rows = [(op, c.__doc__) for op, cs in CONSTRAINTS.items() for c in cs]
    return rows + [(fn, p.__doc__) for fn, ps in FUNCTIONS.items() for p in ps]
