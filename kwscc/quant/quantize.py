"""Choose power-of-two formats for every tensor and quantize weights: Graph + ranges -> QuantModel.

Relations kept for each Conv / Dense layer with input frac n_in, output frac n_out and weight frac
n_w[c] per output channel c (or one for all with per-tensor weights):
  accumulator scale 2^-(n_in + n_w[c]); bias int32 at that scale;
  requantization by 2^-k[c] with k[c] = n_in + n_w[c] - n_out, 0 <= k[c] <= 31
  (k >= 0 keeps CMSIS-NN's int32 left shift free of overflow, k <= 31 is its shift range).
Pools, pads, transposes and reshapes keep their input's format; softmax outputs are Q(1/256) with
zero point -128; table activations take their output format from the calibrated range
(kwscc.quant.lut.output_format).

Zero points: a tensor in Format(n, z) stores q = round(x * 2^n) + z; the scale stays a power of two.
  - Unsigned tensors (keyword `unsigned`): a tensor that is never negative (a ReLU output) can be
    stored with z = -128, spanning [0, 255 * 2^-n]: one more bit of resolution than the symmetric
    Qm.n. The producer's int32 bias carries the offset (bias - 128 * 2^k[c]).
  - The model input may have any z (keyword `input_formats`, chosen by kwscc.quant.refine): an
    input range like [-61, 23] then fits a step of 2^-2 instead of 2^-1.
  Every reader of a tensor with z != 0 gets CMSIS-NN's input_offset = -z, so its accumulator sums
  (q - z) * w, exactly the unshifted input, and zero padding (filled with -input_offset) still reads
  as a real 0. Pools and reshapes pass the offset on unchanged; softmax does not depend on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kwscc.errors import DataError
from kwscc.ir import Graph, Node
from kwscc.quant.binary import (
    BINARY_OPS, binary_output_format, binary_params, concat_output_format, concat_params, constant_format, fits,
    quantize_constant,
)
from kwscc.ops.activation import TABLE_OPS
from kwscc.quant import lut
from kwscc.quant.formats import (
    SOFTMAX_OUTPUT, Format, act_limits, frac_bits_for, quantize_bias, quantize_weights, round_half_up,
)
from kwscc.quant.gru import quantize_gru
from kwscc.quant.int8_weights import multiplier_shift, recorded_int8
from kwscc.quant.kernels import POW2_MULTIPLIER
from kwscc.quant.lstm import quantize_lstm
from kwscc.quant.split_input import InputSplit, split_weights

MAX_SHIFT = 31


@dataclass(slots=True)
class QLayer:
    """The integer parameters of one compute node."""

    node: str
    act: tuple[int, int]
    weights: np.ndarray | None = None  # int8, IR layout (Conv OHWI, Dense [out, in])
    bias: np.ndarray | None = None  # int32, one per output channel
    shift: np.ndarray | None = None  # k per output channel: requantize by 2^-k (times multiplier / 2^30)
    multiplier: np.ndarray | None = None  # per output channel, in [2^30, 2^31); None: 2^30 (kwscc.quant.int8_weights)
    weight_frac: np.ndarray | None = None
    per_channel: bool = True
    input_offset: int = 0  # CMSIS-NN's input_offset: minus the input tensor's zero point
    params: dict = field(default_factory=dict)  # kernel arguments of ops without weights (kwscc.quant.binary)
    table: np.ndarray | None = None  # int8 [rows, 256] lookup table of an activation (kwscc.quant.lut)

    def requantization(self) -> tuple[np.ndarray, np.ndarray]:
        """CMSIS-NN's int32 (multiplier, shift) per output channel: (2^30, 1 - k) for a power of two 2^-k."""
        shift = (1 - np.asarray(self.shift, np.int64)).astype(np.int32)
        if self.multiplier is None:
            return np.full(shift.shape, POW2_MULTIPLIER, np.int32), shift
        return np.asarray(self.multiplier, np.int64).astype(np.int32), shift


@dataclass(frozen=True, slots=True)
class Streaming:
    """A --streaming program (kwscc.streaming): each call takes `frames` time steps of the model's `clip`."""

    frames: int
    clip: int


@dataclass(slots=True)
class QuantModel:
    graph: Graph
    formats: dict[str, Format]
    layers: dict[str, QLayer] = field(default_factory=dict)
    rounding: str = "default"
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    split: InputSplit | None = None  # the input as hi + lo int8 planes (kwscc.quant.split_input)
    steps: tuple[str, ...] = ()  # the data-driven steps applied (kwscc.quant.refine.STEPS)
    streaming: Streaming | None = None  # the LSTM/GRU state kept between calls (kwscc.streaming)
    # int8 values of the constant operands of binary ops and Concat (their formats are in `formats`)
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def input_format(self) -> Format:
        return self.formats[self.graph.inputs[0]]

    @property
    def output_format(self) -> Format:
        return self.formats[self.graph.outputs[0]]

    def stored_bytes(self, tensor: str) -> int:
        """int8 elements the program holds for `tensor`: two per value on the way of a split input."""
        size = self.graph.tensors[tensor].size
        return 2 * size if self.split is not None and tensor in self.split.tensors else size


def _absmax(ranges, name: str) -> float:
    if name not in ranges:
        raise DataError(f"no calibration range for tensor '{name}'")
    lo, hi = ranges[name]
    return max(abs(lo), abs(hi))


UNSIGNED_ZERO_POINT = -128
# an unsigned output puts -128 * 2^k into the int32 bias: keep k small enough that it always fits
MAX_UNSIGNED_SHIFT = 22
WEIGHT_METHODS = ("max", "mse")


def _weight_err(w2: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Squared quantization error of each row of w2 [channels, K] in its format n[c]."""
    scale = np.exp2(n.astype(np.float64))[:, None]
    q = np.clip(np.floor(w2 * scale + 0.5), -128, 127)
    return ((w2 - q / scale) ** 2).sum(axis=1)


def _weight_fracs(w: np.ndarray, per_channel: bool, method: str = "max") -> np.ndarray:
    """Weight formats: the max rule 7 - ceil(log2 max|w|) (per channel or one for the tensor), or with
    method "mse" the format among it and the next two finer ones (which clip outliers) that gives
    the least squared weight error."""
    w2 = w.reshape(w.shape[0], -1)
    absmax = np.abs(w2).max(axis=1)
    if not per_channel:
        absmax = np.full_like(absmax, absmax.max())
    n = np.array([frac_bits_for(float(a)) for a in absmax], np.int64)
    if method == "max":
        return n
    if method != "mse":
        raise ValueError(f"weight method must be one of {WEIGHT_METHODS}, got {method!r}")
    candidates = [n + d for d in range(3)]
    if per_channel:
        errs = np.stack([_weight_err(w2, c) for c in candidates])
        return np.choose(np.argmin(errs, axis=0), candidates)
    errs = [float(_weight_err(w2, c).sum()) for c in candidates]
    return candidates[int(np.argmin(errs))]


def _output_candidates(out: str, n_sym: int, unsigned, wanted) -> list[Format]:
    """Output formats to try in turn; the last, symmetric, always fits."""
    if out in wanted:
        return [wanted[out], Format(n_sym)]
    if out in unsigned:
        return [Format(n_sym + 1, UNSIGNED_ZERO_POINT), Format(n_sym)]
    return [Format(n_sym)]


def _int8_weights_layer(node: Node, w: np.ndarray, b: np.ndarray, in_fmt: Format, candidates: list[Format],
                        per_channel: bool) -> tuple[QLayer, Format] | None:
    """The layer with the model's own int8 weights and a multiplier per channel (kwscc.quant.int8_weights),
    in the first candidate output format whose requantization CMSIS-NN can do; None if none can."""
    recorded = recorded_int8(w)
    if recorded is None or (not per_channel and np.ptp(recorded[1]) > 0):
        return None
    qw, scale = recorded
    acc_scale = np.exp2(-float(in_fmt.frac)) * scale
    for fmt in candidates:
        real = acc_scale * np.exp2(float(fmt.frac))
        multiplier, shift = multiplier_shift(real)
        if shift.min() < 0 or shift.max() > (MAX_UNSIGNED_SHIFT if fmt.zero_point else MAX_SHIFT):
            continue
        bias = round_half_up(b / acc_scale) + round_half_up(fmt.zero_point / real)  # the output offset
        if np.abs(bias).max() > 2**31 - 1:
            continue
        return QLayer(node=node.name, act=act_limits(node.attrs.get("act"), fmt), weights=qw,
                      bias=bias.astype(np.int32), shift=shift.astype(np.int32), multiplier=multiplier,
                      per_channel=per_channel, input_offset=-in_fmt.zero_point), fmt
    return None


def _weighted_layer(graph: Graph, node: Node, formats, ranges, per_channel: bool, unsigned=frozenset(),
                    weight_method: str = "max", split: InputSplit | None = None, wanted=None,
                    int8_weights: bool = False) -> QLayer:
    w = graph.tensors[node.inputs[1]].data.astype(np.float64)
    b = graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 else np.zeros(w.shape[0])
    in_fmt = formats[node.inputs[0]]
    out = node.outputs[0]
    candidates = _output_candidates(out, frac_bits_for(_absmax(ranges, out)), unsigned, wanted or {})
    if int8_weights and split is None:
        kept = _int8_weights_layer(node, w, np.asarray(b, np.float64), in_fmt, candidates, per_channel)
        if kept is not None:
            formats[out] = kept[1]
            return kept[0]
    n_in = in_fmt.frac
    n_w = _weight_fracs(w, per_channel, weight_method)
    for fmt in candidates:
        n_out = min(fmt.frac, n_in + int(n_w.min()))  # k >= 0 for every channel
        if n_out != fmt.frac and fmt.zero_point not in (0, UNSIGNED_ZERO_POINT):
            continue  # a coarser step would move this window off the range it was chosen for
        zero_point = fmt.zero_point
        n_wc = np.minimum(n_w, n_out - n_in + MAX_SHIFT)  # k <= 31: such tiny weights round to 0 anyway
        shift = n_in + n_wc - n_out
        qw = quantize_weights(w, n_wc)
        bias = quantize_bias(b, n_in + n_wc).astype(np.int64)
        if zero_point:  # the output offset in accumulator units
            if int(shift.max()) > MAX_UNSIGNED_SHIFT:
                continue
            bias += zero_point * (np.int64(1) << shift.astype(np.int64))
            if np.abs(bias).max() > 2**31 - 1:
                continue
        break
    n_w = n_wc
    if split is not None and split.layer == node.name:
        qw = split_weights(qw, split.bits)  # over the hi and lo input channels; the bias stays as it is
    out_fmt = Format(n_out, zero_point)
    formats[out] = out_fmt
    return QLayer(
        node=node.name,
        act=act_limits(node.attrs.get("act"), out_fmt),
        weights=qw,
        bias=np.clip(bias, -(2**31 - 1), 2**31 - 1).astype(np.int32),
        shift=shift.astype(np.int32),
        weight_frac=n_w,
        per_channel=per_channel,
        input_offset=-in_fmt.zero_point,
    )


def _constant_operands(qm: QuantModel, node: Node, fmt_for) -> None:
    """Formats and int8 values of the node's constant inputs not yet quantized; fmt_for(values) picks
    the format (a constant read by several ops keeps the first one's: each op rescales its inputs)."""
    for name in node.inputs:
        t = qm.graph.tensors[name]
        if t.is_const and name not in qm.constants:
            qm.formats[name] = fmt = fmt_for(t.data)
            qm.constants[name] = quantize_constant(t.data, fmt)


def _concat_layer(qm: QuantModel, node: Node) -> QLayer:
    """Constants copied into a Concat take the activations' output format where their values fit in it."""
    graph, formats = qm.graph, qm.formats
    live = [formats[t] for t in node.inputs if not graph.tensors[t].is_const or t in qm.constants]
    beside = concat_output_format(live) if live else None
    _constant_operands(qm, node, lambda v: beside if beside is not None and fits(v, beside) else constant_format(v))
    ins = [formats[t] for t in node.inputs]
    formats[node.outputs[0]] = concat_output_format(ins)
    return QLayer(node.name, (-128, 127), params={"inputs": concat_params(ins, formats[node.outputs[0]])})


def _binary_layer(node: Node, formats, ranges, unsigned, wanted) -> QLayer:
    out = node.outputs[0]
    target = _output_candidates(out, frac_bits_for(_absmax(ranges, out)), unsigned, wanted)[0]
    fa, fb = formats[node.inputs[0]], formats[node.inputs[1]]
    fo = binary_output_format(node, target, fa, fb)
    formats[out] = fo
    params = binary_params(node, fa, fb, fo)
    return QLayer(node.name, params["act"], params=params)


def _split_bits(split: InputSplit | None, node: Node) -> int:
    return split.bits if split is not None and split.layer == node.name else 0


def quantize(graph: Graph, ranges: dict[str, tuple[float, float]], per_channel: bool = True,
             rounding: str = "default", *, unsigned=frozenset(), weight_method: str = "max",
             input_formats: dict[str, Format] | None = None, split: InputSplit | None = None,
             output_formats: dict[str, Format] | None = None, int8_weights: bool = False) -> QuantModel:
    """Formats, int8 weights and int32 biases of every layer. `unsigned`: tensors to store with zero
    point -128 (see the module docstring; only tensors that kwscc.quant.refine.unsigned_tensors lists
    are valid). `weight_method`: "max" (the ML-KWS rule) or "mse" (see _weight_fracs). `input_formats`:
    formats of graph inputs chosen elsewhere (else symmetric, from the ranges). `output_formats`: the
    format wanted for some Conv / Dense / binary-op outputs, any zero point (only for tensors
    kwscc.quant.refine.offset_tensors lists); a layer that cannot reach one takes the symmetric format of
    its range. `int8_weights`: keep Conv / Dense weights that are already int8 values as they are
    (kwscc.quant.int8_weights; an LSTM on the library's kernel always keeps such weights)."""
    formats: dict[str, Format] = {name: Format(frac_bits_for(_absmax(ranges, name))) for name in graph.inputs}
    formats.update(input_formats or {})
    if split is not None and formats[split.input].zero_point:
        raise ValueError("a split input has no zero point")
    qm = QuantModel(graph, formats, rounding=rounding, ranges=dict(ranges), split=split)
    for node in graph.nodes():
        if node.op in ("Conv", "Dense"):
            qm.layers[node.name] = _weighted_layer(graph, node, formats, ranges, per_channel, unsigned,
                                                   weight_method, split, output_formats, int8_weights)
        elif node.op == "Softmax":
            formats[node.outputs[0]] = SOFTMAX_OUTPUT
        elif node.op in BINARY_OPS:
            _constant_operands(qm, node, constant_format)
            qm.layers[node.name] = _binary_layer(node, formats, ranges, unsigned, output_formats or {})
        elif node.op == "Concat":
            qm.layers[node.name] = _concat_layer(qm, node)
        elif node.op in TABLE_OPS:
            out_fmt = lut.output_format(*ranges[node.outputs[0]])
            formats[node.outputs[0]] = out_fmt
            qm.layers[node.name] = QLayer(node.name, (-128, 127),
                                          table=lut.table(graph, node, formats[node.inputs[0]], out_fmt))
        elif node.op == "LSTM":
            qm.layers[node.name] = quantize_lstm(graph, node, formats, ranges, _split_bits(split, node))
        elif node.op == "GRU":
            qm.layers[node.name] = quantize_gru(graph, node, formats, _split_bits(split, node))
        else:  # pools, pads, transposes and reshapes move values without rescaling them
            formats[node.outputs[0]] = formats[node.inputs[0]]
            if node.op in ("MaxPool", "AveragePool"):
                qm.layers[node.name] = QLayer(node.name, act_limits(node.attrs.get("act"), formats[node.inputs[0]]))
    return qm
