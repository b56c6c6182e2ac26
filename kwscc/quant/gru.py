"""GRU in power-of-two formats for kwscc's own C kernel (kwscc_gru_s8), and its bit-exact numpy twin.

CMSIS-NN has no GRU; the kernel reuses its arm_nn_activation_s16 (int16 Q3.12 in, Q0.15 out: the
sigmoid and tanh of kwscc.quant.lstm.activation_s16). Formats: x in Format(n_x, z_x); the input
weights int16 where they take no more flash than the int8 hidden weights (2 F <= H: an MFCC-like input
mixes a large energy column with small ones, whose int8 weights would dominate the GRU's error), else
int8; the hidden weights int8; gate pre-activations int16 Q3.12; z, r, n int16 Q0.15; the hidden
state int16 Q0.15 between steps (an
int8 state would round z * h every step), read as int8 Q0.7 by the matrix products and written out
as Q0.7; it starts from h0 in Q0.15 (saturated; zero unless the model gives it). With div(v, k) = v / 2^k rounded half away from zero (v * 2^-k for k <= 0) and sat16:
  x part of gate g: xw_g = div(bias_g + sum (x - z_x) W_g, n_x + n_wx[g] - 12)
  h part:           hr_g = div(rbias_g + sum h8 R_g, 7 + n_wh[g] - 12)  (rbias only for n)
  (the parts are not saturated: only their sum, below, is; saturating each part first, as CMSIS-NN's
  LSTM does the input part, cost 10-17 dB when one part alone passed the Q3.12 range)
  z = sigmoid(sat16(xw_z + hr_z))   r = sigmoid(sat16(xw_r + hr_r))
  linear_before_reset: n = tanh(sat16(xw_n + div(r * hr_n, 15)))
  else: rh8 = sat8(div(r * h16, 23)); n = tanh(sat16(xw_n + hr_n(rh8)))
  h16 = sat16(n + div(z * (h16 - n), 15));  h8 = sat8(div(h16, 8))
A split model input (kwscc.quant.split_input) reaches the GRU as F hi then F lo int8 per step: the
kernel reads x = hi * 2^B + lo, in Format(n_x + B): hi . W_g * 2^B + lo . W_g.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwscc.ir import Graph, Node
from kwscc.quant.formats import MIN_FRAC, Format, frac_bits_for, quantize_bias, round_half_up
from kwscc.quant.kernels import INT32_MAX
from kwscc.quant.split_input import joined
from kwscc.quant.lstm import (
    ACT_FRAC, GATE_FRAC, HIDDEN_FRAC, Q15_MAX, Q15_MIN, activation_s16, correct_input_biases, quantize_gate_weights,
)

GATES = ("update", "reset", "new")  # the IR's z, r, h blocks


@dataclass(slots=True)
class GruGate:
    input_weights: np.ndarray  # int16 or int8 [H, F] (wide_input_weights)
    hidden_weights: np.ndarray  # int8 [H, H]
    input_bias: np.ndarray  # int32 [H] at the input accumulator's scale
    hidden_bias: np.ndarray  # int32 [H] at the hidden accumulator's scale
    input_shift: int  # k: the input part is divided by 2^k into Q3.12
    hidden_shift: int
    input_frac: int  # n_x + n_wx


@dataclass(slots=True)
class GruLayer:
    node: str
    gates: dict[str, GruGate]
    linear_before_reset: bool
    steps: int
    last_only: bool
    weight_frac: None = None  # the report's per-layer weight formats are for Conv/Dense
    initial_hidden: np.ndarray | None = None  # int16 Q0.15 [H] (the h0 input, saturated); None: zero
    split_bits: int = 0  # B > 0: the input is split (hi, lo), x = hi * 2^B + lo (kwscc.quant.split_input)

    @property
    def hidden_size(self) -> int:
        return self.gates["update"].hidden_weights.shape[0]


def quantize_gru(graph: Graph, node: Node, formats: dict[str, Format], split_bits: int = 0) -> GruLayer:
    """split_bits: the input is split (kwscc.quant.split_input), its values 2^split_bits finer than its
    format (which has no zero point)."""
    x, w, r, wb, rb = (graph.tensors[name] for name in node.inputs[:5])
    fmt = formats[node.inputs[0]]
    fmt = Format(fmt.frac + split_bits, fmt.zero_point)
    hidden, steps = node.attrs["hidden_size"], x.shape[1]
    gates = {}
    for index, gate in enumerate(GATES):
        rows = slice(index * hidden, (index + 1) * hidden)
        x_bias = _input_bias(wb, rb, gate, rows)
        qw, qr, bias, x_frac, h_frac = quantize_gate_weights(w.data[rows], r.data[rows], x_bias, fmt)
        if wide_input_weights(x.shape[2], hidden):
            qw, bias, x_frac = _input_weights_s16(w.data[rows], x_bias, fmt, 128 << split_bits)
        h_bias = quantize_bias(rb.data[rows] if gate == "new" else np.zeros(hidden), np.full(hidden, h_frac))
        gates[gate] = GruGate(qw, qr, bias, h_bias, x_frac - GATE_FRAC, h_frac - GATE_FRAC, x_frac)
    formats[node.outputs[0]] = Format(HIDDEN_FRAC)
    h0 = graph.tensors[node.inputs[5]].data
    initial = np.clip(round_half_up(h0 * 2.0**ACT_FRAC), Q15_MIN, Q15_MAX).astype(np.int16) if np.any(h0) else None
    return GruLayer(node.name, gates, bool(node.attrs.get("linear_before_reset")), steps,
                    node.attrs["output"] == "last", initial_hidden=initial, split_bits=split_bits)


INPUT_WEIGHT_BITS = 16


def wide_input_weights(features: int, hidden: int) -> bool:
    """int16 input weights while they need no more flash than the int8 hidden weights."""
    return 2 * features <= hidden


def _input_weights_s16(wg: np.ndarray, x_bias: np.ndarray, fmt: Format,
                       x_bound: int = 128) -> tuple[np.ndarray, np.ndarray, int]:
    """int16 W_g in one max-rule format n_wx, the input part's int32 bias (with the input zero point's
    share) and n_x + n_wx; n_wx lowered until the bias and the zero point's share fit in int32, and the
    whole sum for inputs up to x_bound."""
    n_wx = frac_bits_for(float(np.abs(wg).max())) + INPUT_WEIGHT_BITS - 8
    while True:
        qw = np.clip(round_half_up(wg * 2.0**n_wx), -(2**15), 2**15 - 1).astype(np.int64)
        bias = round_half_up(np.asarray(x_bias, np.float64) * 2.0**(fmt.frac + n_wx)) - fmt.zero_point * qw.sum(axis=1)
        bound = np.abs(bias) + x_bound * np.abs(qw).sum(axis=1)  # the whole accumulator too (int64 in C, kept small)
        if np.all(bound <= INT32_MAX) or n_wx <= MIN_FRAC:
            return qw.astype(np.int16), np.clip(bias, -INT32_MAX, INT32_MAX).astype(np.int32), fmt.frac + n_wx
        n_wx -= 1


def _input_bias(wb, rb, gate: str, rows: slice) -> np.ndarray:
    """The bias of a gate's input part: both biases for z and r, only Wb for n (Rb_n sits inside r * (...))."""
    return wb.data[rows] + (0 if gate == "new" else rb.data[rows])


def correct_input_bias(layer: GruLayer, graph: Graph, node: Node, x_q: np.ndarray, x_float: np.ndarray) -> bool:
    """kwscc.quant.lstm.correct_input_biases on the three gates."""
    w, wb, rb = (graph.tensors[name] for name in (node.inputs[1], node.inputs[3], node.inputs[4]))
    size = layer.hidden_size
    rows = [slice(i * size, (i + 1) * size) for i in range(len(GATES))]
    parts = [(layer.gates[gate], w.data[r], _input_bias(wb, rb, gate, r), 2.0**-layer.gates[gate].input_frac)
             for gate, r in zip(GATES, rows)]
    return correct_input_biases(parts, layer_input(layer, x_q), x_float)


def layer_input(layer: GruLayer, x: np.ndarray) -> np.ndarray:
    """The input values the kernel multiplies: x as stored, or a split input's hi * 2^B + lo."""
    return joined(x, layer.split_bits) if layer.split_bits else x


def divide_pow2(v: np.ndarray, k: int) -> np.ndarray:
    """v / 2^k rounded half away from zero; v * 2^-k for k <= 0 (int64)."""
    v = np.asarray(v, np.int64)
    if k <= 0:
        return v << -k
    half = np.int64(1) << (k - 1)
    return np.where(v >= 0, (v + half) >> k, -((-v + half) >> k))


def sat16(v: np.ndarray) -> np.ndarray:
    return np.clip(v, Q15_MIN, Q15_MAX).astype(np.int16)


def matvec_part(lhs: np.ndarray, weights: np.ndarray, bias: np.ndarray, k: int) -> np.ndarray:
    """div(bias + lhs . each weights row, k): one part of a gate's pre-activation, Q3.12, not saturated (int64):
    a gate's parts are summed, then saturated once."""
    acc = lhs.astype(np.int64) @ weights.astype(np.int64).T + bias
    return divide_pow2(acc, k)


def gru_s8(x: np.ndarray, layer: GruLayer, state: dict | None = None) -> np.ndarray:
    """kwscc_gru_s8 over x [N, T, F] int8 ([N, T, 2F] when split): the hidden sequence [N, T, H] int8 Q0.7.
    state (streaming, kwscc.streaming): {"hidden": int16 [N, H]} to start from, updated in place; empty or None: the
    layer's initial state."""
    x = layer_input(layer, x)
    n, steps, _ = x.shape
    size = layer.hidden_size
    state = {} if state is None else state
    initial = np.zeros(size, np.int16) if layer.initial_hidden is None else layer.initial_hidden
    h16 = state.get("hidden", np.tile(initial, (n, 1))).astype(np.int64)
    h8 = np.clip(divide_pow2(h16, ACT_FRAC - HIDDEN_FRAC), -128, 127).astype(np.int8)
    out = np.empty((n, steps, size), np.int8)
    g = layer.gates
    for t in range(steps):
        xw = {name: matvec_part(x[:, t], g[name].input_weights, g[name].input_bias, g[name].input_shift)
              for name in GATES}
        hr = {name: matvec_part(h8, g[name].hidden_weights, g[name].hidden_bias, g[name].hidden_shift)
              for name in ("update", "reset")}
        z = activation_s16(sat16(xw["update"].astype(np.int64) + hr["update"]), 0, "sigmoid").astype(np.int64)
        r = activation_s16(sat16(xw["reset"].astype(np.int64) + hr["reset"]), 0, "sigmoid").astype(np.int64)
        if layer.linear_before_reset:
            hn = matvec_part(h8, g["new"].hidden_weights, g["new"].hidden_bias, g["new"].hidden_shift)
            pre = xw["new"].astype(np.int64) + divide_pow2(r * hn, ACT_FRAC)
        else:
            rh8 = np.clip(divide_pow2(r * h16, 2 * ACT_FRAC - HIDDEN_FRAC), -128, 127)
            pre = xw["new"].astype(np.int64) + matvec_part(rh8, g["new"].hidden_weights, g["new"].hidden_bias,
                                                     g["new"].hidden_shift)
        new = activation_s16(sat16(pre), 0, "tanh").astype(np.int64)
        h16 = sat16(new + divide_pow2(z * (h16 - new), ACT_FRAC)).astype(np.int64)
        h8 = np.clip(divide_pow2(h16, ACT_FRAC - HIDDEN_FRAC), -128, 127).astype(np.int8)
        out[:, t] = h8
    state["hidden"] = h16.astype(np.int16)
    return out


def simulate_gru(layer: GruLayer, x: np.ndarray, state: dict | None = None) -> np.ndarray:
    seq = gru_s8(np.asarray(x, np.int8), layer, state)
    return seq[:, -1] if layer.last_only else seq
