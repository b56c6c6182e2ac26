"""Choose power-of-two formats for every tensor and quantize weights: Graph + ranges -> QuantModel.

Relations kept for each Conv / Dense layer with input frac n_in, output frac n_out and weight frac
n_w[c] per output channel c (or one for all with per-tensor weights):
  accumulator scale 2^-(n_in + n_w[c]); bias int32 at that scale;
  requantization by 2^-k[c] with k[c] = n_in + n_w[c] - n_out, 0 <= k[c] <= 31
  (k >= 0 keeps CMSIS-NN's int32 left shift free of overflow, k <= 31 is its shift range).
Pools and reshapes keep their input's format; softmax outputs are Q(1/256) with zero point -128.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kwscc.errors import DataError
from kwscc.ir import Graph, Node
from kwscc.quant.formats import (
    SOFTMAX_OUTPUT, Format, act_limits, frac_bits_for, quantize_bias, quantize_weights,
)

MAX_SHIFT = 31


@dataclass(slots=True)
class QLayer:
    """The integer parameters of one compute node."""

    node: str
    act: tuple[int, int]
    weights: np.ndarray | None = None  # int8, IR layout (Conv OHWI, Dense [out, in])
    bias: np.ndarray | None = None  # int32, one per output channel
    shift: np.ndarray | None = None  # k per output channel: requantize by 2^-k
    weight_frac: np.ndarray | None = None
    per_channel: bool = True


@dataclass(slots=True)
class QuantModel:
    graph: Graph
    formats: dict[str, Format]
    layers: dict[str, QLayer] = field(default_factory=dict)
    rounding: str = "default"
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def input_format(self) -> Format:
        return self.formats[self.graph.inputs[0]]

    @property
    def output_format(self) -> Format:
        return self.formats[self.graph.outputs[0]]


def _absmax(ranges, name: str) -> float:
    if name not in ranges:
        raise DataError(f"no calibration range for tensor '{name}'")
    lo, hi = ranges[name]
    return max(abs(lo), abs(hi))


def _weight_fracs(w: np.ndarray, per_channel: bool) -> np.ndarray:
    absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    if not per_channel:
        absmax = np.full_like(absmax, absmax.max())
    return np.array([frac_bits_for(float(a)) for a in absmax], np.int64)


def _weighted_layer(graph: Graph, node: Node, formats, ranges, per_channel: bool) -> QLayer:
    w = graph.tensors[node.inputs[1]].data.astype(np.float64)
    b = graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 else np.zeros(w.shape[0])
    n_in = formats[node.inputs[0]].frac
    n_w = _weight_fracs(w, per_channel)
    n_out = frac_bits_for(_absmax(ranges, node.outputs[0]))
    n_out = min(n_out, n_in + int(n_w.min()))  # k >= 0 for every channel
    n_w = np.minimum(n_w, n_out - n_in + MAX_SHIFT)  # k <= 31: such tiny weights round to 0 anyway
    out_fmt = Format(n_out)
    formats[node.outputs[0]] = out_fmt
    return QLayer(
        node=node.name,
        act=act_limits(node.attrs.get("act"), out_fmt),
        weights=quantize_weights(w, n_w),
        bias=quantize_bias(b, n_in + n_w),
        shift=(n_in + n_w - n_out).astype(np.int32),
        weight_frac=n_w,
        per_channel=per_channel,
    )


def quantize(graph: Graph, ranges: dict[str, tuple[float, float]], per_channel: bool = True,
             rounding: str = "default") -> QuantModel:
    formats: dict[str, Format] = {name: Format(frac_bits_for(_absmax(ranges, name))) for name in graph.inputs}
    qm = QuantModel(graph, formats, rounding=rounding, ranges=dict(ranges))
    for node in graph.nodes():
        if node.op in ("Conv", "Dense"):
            qm.layers[node.name] = _weighted_layer(graph, node, formats, ranges, per_channel)
        elif node.op == "Softmax":
            formats[node.outputs[0]] = SOFTMAX_OUTPUT
        else:  # pools and reshapes move values without rescaling them
            formats[node.outputs[0]] = formats[node.inputs[0]]
            if node.op in ("MaxPool", "AveragePool"):
                qm.layers[node.name] = QLayer(node.name, act_limits(node.attrs.get("act"), formats[node.inputs[0]]))
    return qm
