"""Per-tensor power-of-two formats for the CMSIS_5 5.9.0 q7 API: Graph + ranges -> QuantModel.

The q7 API takes one unsigned bias_shift and one unsigned out_shift per layer, so every format is per
tensor (weights included: --weights is ignored) and biases are int8. With n_x the fractional bits of x
(x_real = x_q * 2^-n_x), a Conv / Dense layer keeps these relations:

  input       n_in: the producer's format (the graph input: 7 - ceil(log2 max|x|) from calibration)
  weights     n_w  = 7 - ceil(log2 max|w|) over the whole tensor, w_q = clip(round(w * 2^n_w))
  accumulator n_acc = n_in + n_w
  output      n_out = min(7 - ceil(log2 max|y|), n_acc)         so out_shift >= 0
  bias (q7)   n_b  = min(7 - ceil(log2 max|b|), n_acc)           so bias_shift >= 0: a bias that would need
              b_q  = clip(round(b * 2^n_b), -128, 127)           a negative shift is rounded offline at n_acc
  bias_shift = n_acc - n_b   in [0, MAX_BIAS_SHIFT]   (q7 << 23 stays inside int32)
  out_shift  = n_acc - n_out in [0, MAX_OUT_SHIFT]    (NN_ROUND(30) = 2^29; tinier weights lose n_w)
  y_q = sat8(((b_q << bias_shift) + NN_ROUND(out_shift) + sum x_q * w_q) >> out_shift),
        NN_ROUND(s) = (1 << s) >> 1, >> = floor: round half up, which the simulator models.
  The worst-case accumulator |b_q << bias_shift| + NN_ROUND + 128 * sum_row |w_q| must stay below 2^31
  (checked here, so the emitted C never overflows int32 and needs no wrapping).

Fused activations become clamp limits in the output format (act_limits); ReLU is arm_relu_q7 after the layer.
Max pools and reshapes keep their input's format. kwscc's average pool may add lshift fractional bits
(n_out = n_in + lshift, 0 <= lshift, chosen from the calibrated output range, as ML-KWS's out_lshift).
Softmax outputs: kwscc's integer softmax Q(1/256) zero point -128 (probabilities, as arm_softmax_s8);
arm_softmax_q7 Q0.7 in [0, 127] (127 ~ 1.0).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from kwscc.errors import DataError, UnsupportedError
from kwscc.ir import Graph, Node
from kwscc.ops.conv import conv_out_hw
from kwscc.quant.formats import SOFTMAX_OUTPUT, Format, act_limits, frac_bits_for, round_half_up
from kwscc.quant.quantize import QLayer, QuantModel

log = logging.getLogger(__name__)

MAX_BIAS_SHIFT = 23
MAX_OUT_SHIFT = 30
INT32_MAX = 2**31 - 1
SOFTMAX_Q7_OUTPUT = Format(7)  # arm_softmax_q7: y / 128, 127 ~ 1.0
SOFTMAX_EXP_BITS = 15  # kwscc softmax table: round(2^15 * exp(-d * 2^-n_in))
ROUNDING = "legacy"  # QuantModel.rounding of this backend: floor((acc + 2^(s-1)) / 2^s), no build variants


@dataclass(slots=True)
class LegacyLayer(QLayer):
    """QLayer (bias = the int32 the accumulator starts from, shift = out_shift) plus the q7 API's arguments."""

    bias_q7: np.ndarray | None = None  # int8 per output channel
    bias_frac: int = 0
    bias_shift: int = 0
    out_shift: int = 0
    lshift: int = 0  # kwscc average pool: output = round(sum * 2^lshift / count)
    table: np.ndarray | None = None  # kwscc softmax: exp table (uint16), index = max - x
    softmax: str = ""  # "kwscc" | "cmsis"


def nn_round(shift: int) -> int:
    """CMSIS_5 NN_ROUND(out_shift) = (1 << out_shift) >> 1."""
    return (1 << shift) >> 1


def _absmax(ranges, name: str) -> float:
    if name not in ranges:
        raise DataError(f"no calibration range for tensor '{name}'")
    lo, hi = ranges[name]
    return max(abs(lo), abs(hi))


def _q7(values: np.ndarray, frac: int) -> np.ndarray:
    return np.clip(round_half_up(np.asarray(values, np.float64) * 2.0**frac), -128, 127).astype(np.int8)


def _weighted_layer(graph: Graph, node: Node, formats, ranges) -> LegacyLayer:
    w = graph.tensors[node.inputs[1]].data.astype(np.float64)
    b = graph.tensors[node.inputs[2]].data.astype(np.float64) if len(node.inputs) > 2 else np.zeros(w.shape[0])
    n_in = formats[node.inputs[0]].frac
    n_w = frac_bits_for(float(np.abs(w).max(initial=0.0)))
    n_out = min(frac_bits_for(_absmax(ranges, node.outputs[0])), n_in + n_w)
    n_w = min(n_w, n_out - n_in + MAX_OUT_SHIFT)  # out_shift <= 30: such tiny weights round to 0 anyway
    n_acc = n_in + n_w
    n_b = min(frac_bits_for(float(np.abs(b).max(initial=0.0))), n_acc)
    if n_acc - n_b > MAX_BIAS_SHIFT:
        log.warning("node '%s': bias exceeds 2^%d accumulator steps and saturates", node.name, MAX_BIAS_SHIFT + 7)
        n_b = n_acc - MAX_BIAS_SHIFT
    wq = _q7(w, n_w)
    bq = _q7(b, n_b)
    bias_shift, out_shift = n_acc - n_b, n_acc - n_out
    start = (bq.astype(np.int64) << bias_shift)
    worst = np.abs(start) + nn_round(out_shift) + 128 * np.abs(wq.reshape(wq.shape[0], -1).astype(np.int64)).sum(axis=1)
    if worst.max() > INT32_MAX:
        raise UnsupportedError(f"node '{node.name}' ({node.op}): the q7 accumulator could overflow int32 "
                               f"(worst case {int(worst.max())}); the layer is too deep for the q7 API")
    out_fmt = Format(n_out)
    formats[node.outputs[0]] = out_fmt
    return LegacyLayer(
        node=node.name, act=act_limits(node.attrs.get("act"), out_fmt), weights=wq, bias=start.astype(np.int32),
        shift=np.full(w.shape[0], out_shift, np.int32), weight_frac=np.full(w.shape[0], n_w, np.int64),
        per_channel=False, bias_q7=bq, bias_frac=n_b, bias_shift=bias_shift, out_shift=out_shift)


def max_avgpool_lshift(graph: Graph, node: Node) -> int:
    """Largest lshift with 128 * count * 2^lshift < 2^31 (kwscc's average pool stays inside int32)."""
    count = node.attrs["kernel"][0] * node.attrs["kernel"][1]
    return max(0, 30 - 7 - math.ceil(math.log2(count)))


def _pool_layer(graph: Graph, node: Node, formats, ranges) -> LegacyLayer:
    n_in = formats[node.inputs[0]].frac
    lshift = 0
    if node.op == "AveragePool":
        wanted = frac_bits_for(_absmax(ranges, node.outputs[0])) - n_in
        lshift = int(np.clip(wanted, 0, max_avgpool_lshift(graph, node)))
    out_fmt = Format(n_in + lshift)
    formats[node.outputs[0]] = out_fmt
    return LegacyLayer(node.name, act_limits(node.attrs.get("act"), out_fmt), per_channel=False, lshift=lshift)


def softmax_table(input_frac: int) -> np.ndarray:
    """T[d] = round(2^15 * exp(-d * 2^-n)) for d = max - x in 0..255, trailing zeros cut (T[0] = 32768)."""
    d = np.arange(256, dtype=np.float64)
    table = np.floor(2.0**SOFTMAX_EXP_BITS * np.exp(-d * 2.0**-input_frac) + 0.5).astype(np.uint16)
    return table[: max(1, int(np.count_nonzero(table)))]


def _softmax_layer(node: Node, formats, softmax: str) -> LegacyLayer:
    layer = LegacyLayer(node.name, (-128, 127), per_channel=False, softmax=softmax)
    if softmax == "cmsis":
        formats[node.outputs[0]] = SOFTMAX_Q7_OUTPUT
    else:
        layer.table = softmax_table(formats[node.inputs[0]].frac)
        formats[node.outputs[0]] = SOFTMAX_OUTPUT
    return layer


def quantize_legacy(graph: Graph, ranges: dict[str, tuple[float, float]], softmax: str = "kwscc") -> QuantModel:
    if softmax not in ("kwscc", "cmsis"):
        raise UnsupportedError(f"--legacy-softmax must be kwscc or cmsis, got '{softmax}'")
    formats: dict[str, Format] = {name: Format(frac_bits_for(_absmax(ranges, name))) for name in graph.inputs}
    qm = QuantModel(graph, formats, rounding=ROUNDING, ranges=dict(ranges))
    for node in graph.nodes():
        if node.op in ("Conv", "Dense"):
            qm.layers[node.name] = _weighted_layer(graph, node, formats, ranges)
        elif node.op in ("MaxPool", "AveragePool"):
            qm.layers[node.name] = _pool_layer(graph, node, formats, ranges)
        elif node.op == "Softmax":
            qm.layers[node.name] = _softmax_layer(node, formats, softmax)
        else:  # reshapes are aliases
            formats[node.outputs[0]] = formats[node.inputs[0]]
    return qm


def pool_out_hw(graph: Graph, node: Node) -> tuple[int, int]:
    a = node.attrs
    return conv_out_hw(graph.tensors[node.inputs[0]].shape[1:3], a["kernel"], a["strides"], a["pads"], (1, 1))
