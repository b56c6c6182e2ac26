"""Bit-exact simulation of the emitted program: the same integer kernels, vectorised over a batch."""
from __future__ import annotations

import numpy as np

from kwscc.ir import Node
from kwscc.ops.activation import TABLE_OPS
from kwscc.ops.crop import crop
from kwscc.ops.recurrent import RECURRENT_OPS
from kwscc.ops.conv import conv_out_hw
from kwscc.quant import kernels
from kwscc.quant.formats import quantize_input
from kwscc.quant.gru import simulate_gru
from kwscc.quant.lstm_own import simulate_lstm
from kwscc.quant.lut import lookup
from kwscc.quant.quantize import QuantModel
from kwscc.quant.split_input import quantize_split, split_shape


def is_depthwise(node: Node, in_channels: int) -> bool:
    """A grouped conv with one group per input channel: CMSIS-NN's depthwise kernel."""
    group = node.attrs["group"]
    return group > 1 and group == in_channels


def _conv(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    layer = qm.layers[node.name]
    a = node.attrs
    mult, shift = layer.requantization()
    out_hw = conv_out_hw(x.shape[1:3], layer.weights.shape[1:3], a["strides"], a["pads"], a["dilations"])
    common = dict(stride=a["strides"], padding=a["pads"][:2], dilation=a["dilations"], out_hw=out_hw,
                  act=layer.act, rounding=qm.rounding, input_offset=layer.input_offset)
    if is_depthwise(node, x.shape[3]):
        w = depthwise_weights(layer.weights)
        return kernels.depthwise_conv_s8(x, w, layer.bias, mult, shift, ch_mult=w.shape[3] // x.shape[3], **common)
    return kernels.conv_s8(x, layer.weights, layer.bias, mult, shift, **common)


def depthwise_weights(w_ohwi: np.ndarray) -> np.ndarray:
    """IR depthwise weights [C*mult, KH, KW, 1] in CMSIS-NN's [1, KH, KW, C*mult] order."""
    return np.ascontiguousarray(w_ohwi.transpose(3, 1, 2, 0))


def _dense(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    layer = qm.layers[node.name]
    mult, shift = layer.requantization()
    if layer.per_channel:  # emitted as a 1x1 convolution, whose requantization is per channel
        w = layer.weights.reshape(layer.weights.shape[0], 1, 1, -1)
        y = kernels.conv_s8(x.reshape(x.shape[0], 1, 1, -1), w, layer.bias, mult, shift, stride=(1, 1),
                            padding=(0, 0), out_hw=(1, 1), act=layer.act, rounding=qm.rounding,
                            input_offset=layer.input_offset)
        return y.reshape(x.shape[0], -1)
    return kernels.fully_connected_s8(x, layer.weights, layer.bias, int(mult[0]), int(shift[0]),
                                      act=layer.act, rounding=qm.rounding, input_offset=layer.input_offset)


def _pool(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    a = node.attrs
    out_hw = conv_out_hw(x.shape[1:3], a["kernel"], a["strides"], a["pads"], (1, 1))
    fn = kernels.max_pool_s8 if node.op == "MaxPool" else kernels.avgpool_s8
    return fn(x, kernel=a["kernel"], stride=a["strides"], padding=a["pads"][:2], out_hw=out_hw,
              act=qm.layers[node.name].act)


def _softmax(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    mult, shift, diff_min = kernels.softmax_params(qm.formats[node.inputs[0]].frac)
    rows = x.reshape(-1, x.shape[node.attrs["axis"]])  # the axes after it have size 1
    return kernels.softmax_s8(rows, mult, shift, diff_min).reshape(x.shape)


def _reshape(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    shape = tuple(node.attrs["shape"][1:])
    if qm.split is not None and node.outputs[0] in qm.split.tensors:
        shape = split_shape(shape)
    return x.reshape((x.shape[0],) + shape)


def _binary(qm: QuantModel, node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    p = dict(qm.layers[node.name].params)
    if node.op in ("Add", "Sub"):
        return kernels.elementwise_add_s8(a, b, rounding=qm.rounding, **p)
    if node.op == "Mul":
        return kernels.elementwise_mul_s8(a, b, rounding=qm.rounding, **p)
    return kernels.max_min_s8(a, b, **p)


def _concat(qm: QuantModel, node: Node, *xs: np.ndarray) -> np.ndarray:
    batch = max(x.shape[0] for x in xs)  # a constant input (batch 1) is the same for every sample
    parts = [kernels.rescale_s8(np.broadcast_to(x, (batch,) + x.shape[1:]), **p)
             for x, p in zip(xs, qm.layers[node.name].params["inputs"])]
    return np.concatenate(parts, axis=node.attrs["axis"] % parts[0].ndim)


def _table(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    return lookup(qm.layers[node.name].table, x)


def pad_fill(qm: QuantModel, node: Node) -> int:
    """The int8 a Pad writes: its constant in the tensor's format."""
    return int(quantize_input(np.float32(node.attrs.get("value", 0.0)), qm.formats[node.inputs[0]]))


def _pad(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    return np.pad(x, node.attrs["pads"], constant_values=pad_fill(qm, node))


def _crop(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crop(x, node.attrs["axis"], node.attrs["start"], node.attrs["end"]))


def _transpose(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, node.attrs["perm"]))


def _lstm(qm: QuantModel, node: Node, x: np.ndarray, state: dict | None = None) -> np.ndarray:
    return simulate_lstm(qm.layers[node.name], x, qm.rounding, state)


def _gru(qm: QuantModel, node: Node, x: np.ndarray, state: dict | None = None) -> np.ndarray:
    return simulate_gru(qm.layers[node.name], x, state)


SIMULATORS = {"Conv": _conv, "Dense": _dense, "MaxPool": _pool, "AveragePool": _pool,
              "Softmax": _softmax, "Reshape": _reshape, "Pad": _pad, "Transpose": _transpose, "Crop": _crop,
              "LSTM": _lstm, "GRU": _gru,
              **{op: _table for op in TABLE_OPS}}
MULTI_INPUT_SIMULATORS = {"Add": _binary, "Sub": _binary, "Mul": _binary, "Max": _binary, "Min": _binary,
                          "Concat": _concat}


def simulate_node(qm: QuantModel, node: Node, values: dict[str, np.ndarray], state: dict | None = None) -> np.ndarray:
    """The int8 output of one node, its inputs read from `values` (tensor name -> int8 batch). state: the
    streaming program's recurrent state (see simulate)."""
    if node.op in MULTI_INPUT_SIMULATORS:  # constant operands (batch 1) broadcast over the batch
        return MULTI_INPUT_SIMULATORS[node.op](qm, node, *(values[t] if t in values else qm.constants[t]
                                                          for t in node.inputs))
    if state is not None and node.op in RECURRENT_OPS:
        return SIMULATORS[node.op](qm, node, values[node.inputs[0]], state.setdefault(node.name, {}))
    return SIMULATORS[node.op](qm, node, values[node.inputs[0]])


def simulate(qm: QuantModel, inputs: dict[str, np.ndarray], state: dict | None = None) -> dict[str, np.ndarray]:
    """int8 value of every activation tensor for a batch of int8 inputs. state: {} before a streaming
    program's (kwscc.streaming) first call, then passed to every call: each LSTM/GRU continues from the
    state the previous call left in it (per batch row, so each row is one stream); None: a zero state."""
    values = {name: np.asarray(x, np.int8) for name, x in inputs.items()}
    for node in qm.graph.nodes():
        values[node.outputs[0]] = simulate_node(qm, node, values, state)
    return values


def quantize_model_input(qm: QuantModel, name: str, x: np.ndarray) -> np.ndarray:
    """Float input `name` -> the int8 the generated <name>_quantize_input writes (split or not)."""
    if qm.split is not None and qm.split.input == name:
        return quantize_split(x, qm.formats[name], qm.split)
    return quantize_input(x, qm.formats[name])


def simulate_float_inputs(qm: QuantModel, feeds: dict[str, np.ndarray], simulator=simulate) -> dict[str, np.ndarray]:
    """simulator() (a backend's; cmsis-nn's by default) after quantizing float inputs as the generated C does."""
    return simulator(qm, {name: quantize_model_input(qm, name, x) for name, x in feeds.items()})
