"""Lowering of IR nodes to CMSIS-NN v4-v7 s8 calls: kernel choice, arguments, scratch sizes.

Each lowering returns a KernelCall, a plain-data view model that one template under
templates/cmsis_nn/ops/ turns into C. Scratch sizes follow what v7.0.0's *_get_buffer_size()
answers for each build: "c" (pure C), "dsp" (Cortex-M4/M7/M33 with GCC) and "mve" (Cortex-M55).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kwscc.ir import Node
from kwscc.ir.layout import input_transpose, transpose_walk
from kwscc.ops.activation import TABLE_OPS
from kwscc.quant.kernels import POW2_MULTIPLIER
from kwscc.quant.lstm import GATES as LSTM_IR_GATES  # the order of kwscc_lstm_s8's gates
from kwscc.quant.lstm import KWSCC_KERNEL as KWSCC_LSTM
from kwscc.quant.quantize import QuantModel
from kwscc.quant.simulate import depthwise_weights, is_depthwise
from kwscc.quant.split_input import split_shape

MULTI_INPUT_OPS = ("Add", "Sub", "Mul", "Max", "Min", "Concat")
# kwscc's C kernels in the order model.c defines them (a kernel after the ones it calls)
KWSCC_KERNELS = ("kwscc_divide_by_pow2", "kwscc_max_min_s8", "kwscc_concat_s8", "kwscc_table_s8", "kwscc_pad_s8",
                 "kwscc_transpose_s8", "kwscc_crop_s8",
                 # the faster kernels of backends/cmsis_nn/own_kernels.py and the helpers they share
                 "kwscc_simd", "kwscc_requantize", "kwscc_sxtab16_ror8", "kwscc_sxtb16_ror8", "kwscc_load2",
                 "kwscc_rnn_s16", "kwscc_gru_s8", "kwscc_lstm_s8", "kwscc_dot_row",
                 "kwscc_dot_rows", "kwscc_dense_s8", "kwscc_pointwise_s8", "kwscc_im2col_s8", "kwscc_conv_s8",
                 "kwscc_depthwise_s8", "kwscc_pack16", "kwscc_widen_s8", "kwscc_dot_wide",
                 "kwscc_pointwise_wide_s8", "kwscc_conv_wide_s8", "kwscc_depthwise_wide_s8")


# what kwscc_gru_s8 and kwscc_lstm_s8 need: their integer helpers and the SIMD dot product's intrinsics
RNN_HELPERS = ("kwscc_simd", "kwscc_sxtb16_ror8", "kwscc_load2", "kwscc_rnn_s16")


def rnn_wide_bytes(*lengths: int) -> dict[str, int]:
    """Scratch of the recurrent kernels' widened inputs (kwscc_rnn_widen: 2 words per 4 values of each vector),
    per build: none without the DSP extension (the plain C reads the int8 values)."""
    wide = sum(8 * (n // 4) for n in lengths)
    return {"c": 0, "dsp": wide, "mve": wide}


def align4(n: int) -> int:
    return (n + 3) // 4 * 4


@dataclass(slots=True)
class ConstArray:
    """A const array the generated C holds in flash."""

    suffix: str  # symbol is <prefix>_<suffix>
    ctype: str
    values: np.ndarray
    role: str  # weights | bias | shift | multiplier | table | constant (an operand of a binary op / Concat)
    shared: bool = False  # an earlier call defines the same bytes under this symbol (share_identical_arrays)


@dataclass(slots=True)
class KernelCall:
    node: Node
    function: str
    template: str
    params: dict
    scratch: dict[str, int]  # bytes for each build: c, dsp, mve
    macs: int = 0
    arrays: list[ConstArray] = field(default_factory=list)
    unsplit_scratch: dict[str, int] | None = None  # the split input's layer: its scratch with an int8 input
    kernels: tuple[str, ...] = ()  # kwscc's own C functions the call needs (templates/cmsis_nn/kernels/)
    estimated_instructions: int | None = None  # on the compiled-for core, from kernel_choice's cost table
    replaces: str | None = None  # kwscc's own kernel: the CMSIS-NN function it stands in for
    state: int = 0  # bytes of recurrent state kept between calls (--streaming): in NAME_state, not the arena
    # (byte offset in the state, index in arrays) of each nonzero initial state NAME_reset_state copies; rest zero
    state_initial: tuple[tuple[int, int], ...] = ()
    constant_inputs: dict[int, str] = field(default_factory=dict)  # input index -> the const array it reads

    @property
    def activations(self) -> list[str]:
        """The tensors the call reads from the arena or the caller's input (weights are consts)."""
        if self.node.op not in MULTI_INPUT_OPS:
            return [self.node.inputs[0]]
        return [t for i, t in enumerate(self.node.inputs) if i not in self.constant_inputs]

    def operands(self, pointer) -> list[str]:
        """C expressions of the tensors the call reads, in input order: pointer(tensor) for activations,
        the const array's symbol for constant operands (multi-input ops only)."""
        if self.node.op not in MULTI_INPUT_OPS:
            return [pointer(self.node.inputs[0])]
        return [self.constant_inputs.get(i) or pointer(t) for i, t in enumerate(self.node.inputs)]


def dims(shape: tuple[int, ...]) -> dict:
    """cmsis_nn_dims {n, h, w, c} of an NHWC or [N, C] tensor."""
    if len(shape) == 2:
        return {"n": shape[0], "h": 1, "w": 1, "c": shape[1]}
    n, h, w, c = shape
    return {"n": n, "h": h, "w": w, "c": c}


def _quant_arrays(layer, prefix: str) -> list[ConstArray]:
    """Weights, bias, shifts and, for a layer that keeps a model's int8 weights (kwscc.quant.int8_weights),
    its own multipliers; the others share the model's array of 2^30."""
    multiplier, shift = layer.requantization()
    arrays = [
        ConstArray(f"{prefix}_w", "int8_t", layer.weights.reshape(-1), "weights"),
        ConstArray(f"{prefix}_b", "int32_t", layer.bias, "bias"),
        ConstArray(f"{prefix}_shift", "int32_t", shift, "shift"),
    ]
    if layer.multiplier is not None:
        arrays.append(ConstArray(f"{prefix}_mult", "int32_t", multiplier, "multiplier"))
    return arrays


def _multipliers(layer, prefix: str) -> str | None:
    """The symbol of the layer's own multiplier array; None: the shared array of 2^30."""
    return None if layer.multiplier is None else f"{prefix}_mult"


def shared_multiplier_channels(calls: list[KernelCall]) -> int:
    """Length of the multiplier array of 2^30 that the per-channel CMSIS-NN calls without their own share."""
    return max((int(c.params["channels"]) for c in calls if "channels" in c.params and not c.params.get("multipliers")),
               default=0)


def _conv_scratch(in_shape, w_shape, attrs, grouped: bool) -> dict[str, int]:
    kh, kw, cin = w_shape[1], w_shape[2], in_shape[3]
    one_by_one = (kh, kw) == (1, 1) and not any(attrs["pads"]) and attrs["dilations"] == (1, 1) and not grouped
    if one_by_one:
        return {"c": 0, "dsp": 0, "mve": 0}
    im2col = 4 * align4(kh * kw * cin)  # arm_convolve_s8 / _1_x_n_s8 (it counts input.c, even when grouped)
    return {"c": im2col, "dsp": im2col, "mve": 4 * 16 * -(-(kh * kw * cin) // 16)}


def lower_conv(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    g, layer, a = qm.graph, qm.layers[node.name], node.attrs
    x, y = g.tensors[node.inputs[0]].shape, g.tensors[node.outputs[0]].shape
    split = qm.split if qm.split is not None and qm.split.layer == node.name else None
    if split is not None:
        x = split_shape(x)  # hi and lo channels of the input
    w = layer.weights
    params = {"input_dims": dims(x), "output_dims": dims(y), "stride": a["strides"], "padding": a["pads"][:2],
              "dilation": a["dilations"], "act": layer.act, "channels": y[3], "input_offset": layer.input_offset,
              "split": None, "multipliers": _multipliers(layer, prefix)}
    macs = int(np.prod(y[1:])) * w.shape[1] * w.shape[2] * w.shape[3]
    arrays = _quant_arrays(layer, prefix)
    if is_depthwise(node, x[3]):
        kh, kw = w.shape[1], w.shape[2]
        ch_mult = y[3] // x[3]
        arrays[0].values = depthwise_weights(w).reshape(-1)
        params.update(filter_dims={"n": 1, "h": kh, "w": kw, "c": y[3]}, ch_mult=ch_mult)
        fast_3x3 = (kh, kw) == (3, 3) and max(a["pads"][:2]) <= 1
        opt = ch_mult == 1 and a["dilations"] == (1, 1)
        dsp = 0 if (fast_3x3 or not opt) else 2 * x[3] * kh * kw
        return KernelCall(node, "arm_depthwise_conv_wrapper_s8", "ops/depthwise_conv.c.j2", params,
                          {"c": 0, "dsp": dsp, "mve": 4 * 124 * kh * kw}, macs, arrays)
    params["filter_dims"] = {"n": w.shape[0], "h": w.shape[1], "w": w.shape[2], "c": w.shape[3]}
    scratch = _conv_scratch(x, w.shape, a, grouped=w.shape[3] != x[3])
    unsplit = None
    if split is not None:
        # flash holds the hi weights; the C builds the [hi, lo] filter at the start of the scratch
        channels = split.channels
        arrays[0].values = np.ascontiguousarray(w[..., :channels]).reshape(-1)
        filter_bytes = align4(w.size)
        params["split"] = {"channels": channels, "bits": split.bits, "weights": int(w.size // 2),
                           "filter_bytes": filter_bytes}
        scratch = {build: size + filter_bytes for build, size in scratch.items()}
        unsplit = _conv_scratch(g.tensors[node.inputs[0]].shape, w[..., :channels].shape, a, grouped=False)
    return KernelCall(node, "arm_convolve_wrapper_s8", "ops/conv.c.j2", params, scratch, macs, arrays,
                      unsplit_scratch=unsplit)


def lower_dense(qm: QuantModel, node: Node, prefix: str, cpu_build: str) -> KernelCall:
    g, layer = qm.graph, qm.layers[node.name]
    x, y = g.tensors[node.inputs[0]].shape, g.tensors[node.outputs[0]].shape
    out_ch, depth = layer.weights.shape
    macs = out_ch * depth
    arrays = _quant_arrays(layer, prefix)
    if layer.per_channel or cpu_build == "mve":
        # a 1x1 convolution is a fully connected layer whose requantization is per output channel
        params = {"input_dims": {"n": 1, "h": 1, "w": 1, "c": depth}, "output_dims": {"n": 1, "h": 1, "w": 1, "c": out_ch},
                  "filter_dims": {"n": out_ch, "h": 1, "w": 1, "c": depth}, "stride": (1, 1), "padding": (0, 0),
                  "dilation": (1, 1), "act": layer.act, "channels": out_ch, "input_offset": layer.input_offset,
                  "split": None, "multipliers": _multipliers(layer, prefix)}
        return KernelCall(node, "arm_convolve_wrapper_s8", "ops/conv.c.j2", params, {"c": 0, "dsp": 0, "mve": 0},
                          macs, arrays)
    multiplier, shift = layer.requantization()
    params = {"input_dims": {"n": x[0], "h": 1, "w": 1, "c": depth}, "filter_dims": {"n": depth, "h": 1, "w": 1, "c": out_ch},
              "output_dims": {"n": y[0], "h": 1, "w": 1, "c": out_ch}, "act": layer.act, "input_offset": layer.input_offset,
              "multiplier": int(multiplier[0]), "shift": int(shift[0])}
    return KernelCall(node, "arm_fully_connected_s8", "ops/fully_connected.c.j2", params,
                      {"c": 0, "dsp": 0, "mve": 4 * out_ch}, macs, arrays[:2])


def lower_pool(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    g, a = qm.graph, node.attrs
    x, y = g.tensors[node.inputs[0]].shape, g.tensors[node.outputs[0]].shape
    params = {"input_dims": dims(x), "output_dims": dims(y), "kernel": a["kernel"], "stride": a["strides"],
              "padding": a["pads"][:2], "act": qm.layers[node.name].act}
    if node.op == "MaxPool":
        return KernelCall(node, "arm_max_pool_s8", "ops/pool.c.j2", params, {"c": 0, "dsp": 0, "mve": 0})
    return KernelCall(node, "arm_avgpool_s8", "ops/pool.c.j2", params, {"c": 0, "dsp": 4 * x[3], "mve": 0})


def lower_softmax(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    from kwscc.quant.kernels import softmax_params

    shape = qm.graph.tensors[node.inputs[0]].shape
    axis = node.attrs["axis"]
    mult, shift, diff_min = softmax_params(qm.formats[node.inputs[0]].frac)
    params = {"input_frac": qm.formats[node.inputs[0]].frac, "rows": int(np.prod(shape[:axis])), "row_size": shape[axis],
              "mult": mult, "shift": shift, "diff_min": diff_min}
    return KernelCall(node, "arm_softmax_s8", "ops/softmax.c.j2", params, {"c": 0, "dsp": 0, "mve": 0})


def raster_overlap(call: KernelCall) -> int | None:
    """Bytes the output of a convolution must start before its input so that it may overwrite the
    input's dead rows, or None when the kernel does not allow it.

    arm_convolve_wrapper_s8 sends an ungrouped convolution that is neither 1x1-unpadded nor 1xN to
    arm_convolve_s8, which, for each group of 1, 2 (C, DSP) or 4 (MVE) output pixels in raster order,
    copies their input windows into its scratch and then writes them. While row oy is written, the
    rows it and later rows read start at row oy * stride - pad: the output may start delta bytes
    before the input when no row's last output byte passes that point. (The 1x1 and 1xN paths and
    grouped convolutions run whole matrix products per output channel pair: never overlapped.) kwscc's
    own kwscc_conv_s8 works the same way, two output pixels at a time.
    """
    p = call.params
    if call.function in ("kwscc_conv_s8", "kwscc_conv_wide_s8"):  # own_kernels.conv: two windows copied, then written
        if p["split"]:
            return None
        return _raster_overlap(p["in_w"] * p["ch"], p["out_w"] * p["cout"], p["out_h"], p["stride"], p["padding"])
    if call.function != "arm_convolve_wrapper_s8" or p["split"] is not None:
        return None
    x, f, y = p["input_dims"], p["filter_dims"], p["output_dims"]
    stride, pad, dilation = p["stride"], p["padding"], p["dilation"]
    one_by_one = tuple(pad) == (0, 0) and (f["h"], f["w"]) == (1, 1) and tuple(dilation) == (1, 1)
    one_by_n = x["h"] == 1 and dilation[1] == 1 and f["h"] == 1 and (stride[1] * x["c"]) % 4 == 0
    if f["c"] != x["c"] or one_by_one or one_by_n:
        return None
    return _raster_overlap(x["w"] * x["c"], y["w"] * y["c"], y["h"], stride, pad)


def _raster_overlap(row_in: int, row_out: int, out_h: int, stride, pad) -> int:
    return max(0, max((oy + 1) * row_out - max(0, oy * stride[0] - pad[0]) * row_in for oy in range(out_h)))


def lower_binary(qm: QuantModel, node: Node) -> KernelCall:
    p = dict(qm.layers[node.name].params, size=qm.graph.tensors[node.outputs[0]].size)
    none = {"c": 0, "dsp": 0, "mve": 0}
    if node.op in ("Add", "Sub"):
        p["subtract"] = node.op == "Sub"
        return KernelCall(node, "arm_elementwise_add_s8", "ops/elementwise_add.c.j2", p, none)
    if node.op == "Mul":
        return KernelCall(node, "arm_elementwise_mul_s8", "ops/elementwise_mul.c.j2", p, none)
    return KernelCall(node, "kwscc_max_min_s8", "ops/max_min.c.j2", p, none,
                      kernels=("kwscc_divide_by_pow2", "kwscc_max_min_s8"))


def lower_concat(qm: QuantModel, node: Node) -> KernelCall:
    """Concatenation as `outer` rows: each row is every input's block (its axis extent x inner size) in turn."""
    g = qm.graph
    out_shape = g.tensors[node.outputs[0]].shape
    axis = node.attrs["axis"] % len(out_shape)
    outer = int(np.prod(out_shape[:axis]))
    inner = int(np.prod(out_shape[axis + 1:]))
    parts, start = [], 0
    for t, p in zip(node.inputs, qm.layers[node.name].params["inputs"]):
        block = g.tensors[t].shape[axis] * inner
        parts.append(dict(p, block=block, start=start))
        start += block
    params = {"outer": outer, "output_block": start, "parts": parts}
    return KernelCall(node, "kwscc_concat_s8", "ops/concat.c.j2", params, {"c": 0, "dsp": 0, "mve": 0},
                      kernels=("kwscc_divide_by_pow2", "kwscc_concat_s8"))


NO_SCRATCH = {"c": 0, "dsp": 0, "mve": 0}


def lower_table(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    rows = qm.layers[node.name].table
    params = {"size": qm.graph.tensors[node.inputs[0]].size, "rows": rows.shape[0]}
    return KernelCall(node, "kwscc_table_s8", "ops/table.c.j2", params, dict(NO_SCRATCH),
                      arrays=[ConstArray(f"{prefix}_table", "int8_t", rows.reshape(-1), "table")],
                      kernels=("kwscc_table_s8",))


def _padded_to(values: list[int], rank: int, fill: int) -> list[int]:
    return [fill] * (rank - len(values)) + list(values)


def lower_pad(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    from kwscc.quant.simulate import pad_fill

    x, y = qm.graph.tensors[node.inputs[0]].shape, qm.graph.tensors[node.outputs[0]].shape
    params = {"in_dims": _padded_to(x[1:], 3, 1), "out_dims": _padded_to(y[1:], 3, 1),
              "before": _padded_to([b for b, _ in node.attrs["pads"][1:]], 3, 0), "fill": pad_fill(qm, node)}
    return KernelCall(node, "kwscc_pad_s8", "ops/pad.c.j2", params, dict(NO_SCRATCH), kernels=("kwscc_pad_s8",))


def lower_crop(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    """A slice of one axis: `outer` rows, each a block of the row the input holds at that position."""
    x = qm.graph.tensors[node.inputs[0]].shape
    a = node.attrs
    outer, inner = int(np.prod(x[:a["axis"]])), int(np.prod(x[a["axis"] + 1:]))
    params = {"outer": outer, "x_stride": x[a["axis"]] * inner, "block": (a["end"] - a["start"]) * inner,
              "offset": a["start"] * inner}
    return KernelCall(node, "kwscc_crop_s8", "ops/crop.c.j2", params, dict(NO_SCRATCH), kernels=("kwscc_crop_s8",))


def lower_transpose(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    dims_, stride = transpose_walk(qm.graph.tensors[node.inputs[0]].shape, node.attrs["perm"])
    return KernelCall(node, "kwscc_transpose_s8", "ops/transpose.c.j2", {"dims": dims_, "stride": stride},
                      dict(NO_SCRATCH), kernels=("kwscc_transpose_s8",))


LSTM_GATES = ("forget", "input", "cell", "output")  # the order of cmsis_nn_lstm_params' gate fields
GRU_GATES = ("update", "reset", "new")  # the order of kwscc_gru_s8's gates


def lower_lstm(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    """arm_lstm_unidirectional_s8; its scratch holds the int16 cell state and two int16 gate buffers, then
    (when only the last step is wanted) the hidden sequence, whose last row is copied to the output.
    Streaming (kwscc.streaming): arm_nn_lstm_step_s8 per frame (the whole-sequence call clears the cell),
    on the int16 cell and int8 hidden state kept in NAME_state; the scratch holds the two gate buffers."""
    layer = qm.layers[node.name]
    if layer.kernel == KWSCC_LSTM:
        return lower_kwscc_lstm(qm, node, prefix)
    size, steps = layer.hidden_size, layer.steps
    features = layer.gates["input"].input_weights.shape[1]  # 2F columns for a split input: hi, then lo
    state = align4(2 * size)
    arrays, gates = [], {}
    for gate in LSTM_GATES:
        g = layer.gates[gate]
        arrays += [ConstArray(f"{prefix}_{gate}_wx", "int8_t", g.input_weights.reshape(-1), "weights"),
                   ConstArray(f"{prefix}_{gate}_wh", "int8_t", g.hidden_weights.reshape(-1), "weights"),
                   ConstArray(f"{prefix}_{gate}_bias", "int32_t", g.input_bias, "bias")]
        gates[gate] = {"input_multiplier": g.input_multiplier, "input_shift": 1 - g.input_shift,
                       "hidden_multiplier": g.hidden_multiplier, "hidden_shift": 1 - g.hidden_shift,
                       "activation": "ARM_SIGMOID" if g.activation == "sigmoid" else "ARM_TANH"}
    arrays.append(ConstArray(f"{prefix}_zero_bias", "int32_t", np.zeros(size, np.int32), "bias"))
    params = {"steps": steps, "input_size": features, "hidden_size": size, "input_offset": layer.input_offset,
              "forget_to_cell_shift": 1 - 15, "input_to_cell_shift": 1 - (30 - layer.cell_frac),
              "cell_clip": layer.cell_clip, "cell_scale_power": -layer.cell_frac,
              "output_shift": 1 - (30 - layer.hidden_frac), "gates": gates, "multiplier": POW2_MULTIPLIER,
              "state_bytes": state, "last_only": layer.last_only, "streaming": qm.streaming is not None}
    macs = steps * 4 * size * (features + size)
    if qm.streaming:
        scratch = 2 * state
        return KernelCall(node, "arm_nn_lstm_step_s8", "ops/lstm.c.j2", params,
                          {"c": scratch, "dsp": scratch, "mve": scratch}, macs, arrays, state=state + align4(size))
    scratch = 3 * state + (steps * size if layer.last_only else 0)
    return KernelCall(node, "arm_lstm_unidirectional_s8", "ops/lstm.c.j2", params,
                      {"c": scratch, "dsp": scratch, "mve": scratch}, macs, arrays)


def lower_kwscc_lstm(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    """kwscc_lstm_s8, for the peepholes, projection or initial state that arm_lstm_unidirectional_s8 lacks;
    scratch: three int16 gate buffers and o * tanh(c) as int8, then the state (int16 cell, int8 hidden),
    which streaming (kwscc.streaming) keeps in NAME_state instead."""
    layer = qm.layers[node.name]
    size, out_size, steps = layer.hidden_size, layer.output_size, layer.steps
    features = layer.gates["input"].input_weights.shape[1]  # 2F columns for a split input: hi, then lo
    arrays, gates = [], []

    def add(suffix: str, ctype: str, values: np.ndarray, role: str) -> int:
        arrays.append(ConstArray(f"{prefix}_{suffix}", ctype, values.reshape(-1), role))
        return len(arrays) - 1

    for gate in LSTM_IR_GATES:
        g = layer.gates[gate]
        first = add(f"{gate}_wx", "int8_t", g.input_weights, "weights")
        add(f"{gate}_wh", "int8_t", g.hidden_weights, "weights")
        add(f"{gate}_bias", "int32_t", g.input_bias, "bias")
        peephole = layer.peepholes.get(gate) if layer.peepholes else None
        gates.append({"weights": first, "input_shift": g.input_shift, "hidden_shift": g.hidden_shift,
                      "peephole": None if peephole is None else add(f"{gate}_peephole", "int16_t", peephole[0],
                                                                     "weights"),
                      "peephole_shift": 0 if peephole is None else peephole[1]})
    params = {"steps": steps, "input_size": features, "hidden_size": size, "output_size": out_size,
              "cell_frac": layer.cell_frac, "cell_clip": layer.cell_clip,
              "hidden_shift": 30 - layer.hidden_frac, "hidden_clip": layer.hidden_clip or 128, "gates": gates,
              "projection": None if layer.projection is None else add("projection", "int8_t", layer.projection,
                                                                      "weights"),
              "projection_shift": layer.projection_shift,
              "initial_hidden": None if layer.initial_hidden is None else add("h0", "int8_t", layer.initial_hidden,
                                                                              "state"),
              "initial_cell": None if layer.initial_cell is None else add("c0", "int16_t", layer.initial_cell,
                                                                          "state"),
              "last_only": layer.last_only, "streaming": qm.streaming is not None,
              "gate_values": 3 * size + (size + 1) // 2, "cell_bytes": align4(2 * size)}
    state = align4(2 * size) + align4(out_size)
    work = 2 * params["gate_values"]  # three int16 buffers, then o * tanh(c) as int8 (size bytes, rounded up)
    params["wide_offset"] = align4(work if qm.streaming else work + 2 * size + out_size)  # the widened vectors
    widened = rnn_wide_bytes(features, max(size, out_size))
    macs = steps * (4 * size * (features + out_size) + (0 if layer.projection is None else size * out_size))
    slots = ((0, "initial_cell"), (params["cell_bytes"], "initial_hidden"))  # the cell, then the hidden state
    initial = tuple((offset, params[key]) for offset, key in slots if params[key] is not None)
    return KernelCall(node, KWSCC_LSTM, "ops/kwscc_lstm.c.j2", params,
                      {build: params["wide_offset"] + extra for build, extra in widened.items()}, macs, arrays,
                      kernels=RNN_HELPERS + (KWSCC_LSTM,), state=state if qm.streaming else 0,
                      state_initial=initial if qm.streaming else ())


def lower_gru(qm: QuantModel, node: Node, prefix: str) -> KernelCall:
    """kwscc_gru_s8 (CMSIS-NN has no GRU); scratch: the int16 state (from the initial state) and three int16
    gate buffers, two int8 buffers (the state as Q0.7 and r * h). Streaming (kwscc.streaming): the int16 state
    is in NAME_state. A split input: the kernel reads hi and lo (2F int8 per step), x = hi * 2^B + lo."""
    layer = qm.layers[node.name]
    size, steps = layer.hidden_size, layer.steps
    arrays, gates = [], []
    for gate in GRU_GATES:
        g = layer.gates[gate]
        wide = g.input_weights.dtype == np.int16
        arrays += [ConstArray(f"{prefix}_{gate}_wx", "int16_t" if wide else "int8_t", g.input_weights.reshape(-1),
                              "weights"),
                   ConstArray(f"{prefix}_{gate}_wh", "int8_t", g.hidden_weights.reshape(-1), "weights"),
                   ConstArray(f"{prefix}_{gate}_bx", "int32_t", g.input_bias, "bias"),
                   ConstArray(f"{prefix}_{gate}_bh", "int32_t", g.hidden_bias, "bias")]
        gates.append({"input_shift": g.input_shift, "hidden_shift": g.hidden_shift, "wide": wide})
    initial = None
    if layer.initial_hidden is not None:
        arrays.append(ConstArray(f"{prefix}_h0", "int16_t", layer.initial_hidden, "state"))
        initial = len(arrays) - 1
    params = {"steps": steps, "input_size": qm.graph.tensors[node.inputs[0]].shape[2], "hidden_size": size,
              "gates": gates, "linear_before_reset": layer.linear_before_reset, "last_only": layer.last_only,
              "streaming": qm.streaming is not None, "initial_hidden": initial, "split_bits": layer.split_bits}
    state = align4(2 * size) if qm.streaming else 0
    params["wide_offset"] = align4((3 if qm.streaming else 4) * 2 * size + 2 * size)  # then the widened vectors
    columns = params["input_size"] * (2 if layer.split_bits else 1)  # a split input: hi, then lo
    widened = rnn_wide_bytes(params["input_size"], params["input_size"] if layer.split_bits else 0, size)
    macs = steps * 3 * size * (columns + size)
    return KernelCall(node, "kwscc_gru_s8", "ops/gru.c.j2", params,
                      {build: params["wide_offset"] + extra for build, extra in widened.items()}, macs, arrays,
                      kernels=RNN_HELPERS + ("kwscc_gru_s8",), state=state,
                      state_initial=((0, initial),) if qm.streaming and initial is not None else ())


def attach_constants(qm: QuantModel, call: KernelCall, prefix: str) -> None:
    """The call reads its constant operands (kwscc.quant.binary) from const arrays in flash."""
    if call.node.op not in MULTI_INPUT_OPS:
        return
    for i, t in enumerate(call.node.inputs):
        if t in qm.constants:
            call.constant_inputs[i] = f"{prefix}_c{i}"
            call.arrays.append(ConstArray(call.constant_inputs[i], "int8_t", qm.constants[t].reshape(-1), "constant"))


def share_identical_arrays(calls: list[KernelCall]) -> None:
    """Arrays with the bytes of an earlier call's array (an unrolled cell's T steps reading one weight
    tensor, one constant read by several ops) take its symbol and are not defined again: flash holds
    each once."""
    first: dict[tuple, str] = {}
    for call in calls:
        for array in call.arrays:
            key = (array.ctype, array.role, array.values.shape, array.values.tobytes())
            if key in first:
                old = array.suffix
                array.suffix, array.shared = first[key], True
                call.constant_inputs = {i: array.suffix if s == old else s for i, s in call.constant_inputs.items()}
            else:
                first[key] = array.suffix


def lower(qm: QuantModel, node: Node, prefix: str, cpu_build: str) -> KernelCall | None:
    """The call for one node; None for aliases, which emit nothing (reshapes, the input's Transpose)."""
    if node.op == "Reshape" or node is input_transpose(qm.graph):
        return None
    if node.op == "Concat":
        return lower_concat(qm, node)
    if node.op in MULTI_INPUT_OPS:
        return lower_binary(qm, node)
    if node.op in TABLE_OPS:
        return lower_table(qm, node, prefix)
    if node.op == "Pad":
        return lower_pad(qm, node, prefix)
    if node.op == "Transpose":
        return lower_transpose(qm, node, prefix)
    if node.op == "Crop":
        return lower_crop(qm, node, prefix)
    if node.op == "Conv":
        return lower_conv(qm, node, prefix)
    if node.op == "Dense":
        return lower_dense(qm, node, prefix, cpu_build)
    if node.op in ("MaxPool", "AveragePool"):
        return lower_pool(qm, node, prefix)
    if node.op == "LSTM":
        return lower_lstm(qm, node, prefix)
    if node.op == "GRU":
        return lower_gru(qm, node, prefix)
    return lower_softmax(qm, node, prefix)
