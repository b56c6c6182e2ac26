"""LSTM in power-of-two formats for CMSIS-NN's arm_lstm_unidirectional_s8, and its bit-exact numpy twin.

Formats (x in Format(n_x, z_x); every scale a power of two, so every multiplier is 2^30):
  gate pre-activations int16 Q3.12 (what arm_nn_activation_s16 reads), gates int16 Q0.15;
  per gate g, int8 weights W_g (frac n_wx[g]) and R_g (frac n_wh[g]), one format per tensor
  (the kernel has one multiplier per gate and operand);
  input part:  acc = bias_g + sum (x - z_x) W_g, requantized by 2^-(n_x + n_wx[g] - 12);
  hidden part: acc = sum h R_g, requantized by 2^-(n_h + n_wh[g] - 12), added with int16 saturation;
  cell int16 with frac n_c = 15 - ceil(log2 bound) (bound: the cell clip, else T since |c_t| <= t);
  f * c -> cell by 2^-15, i * g -> cell by 2^-(30 - n_c), tanh(c) reads c shifted by 12 - n_c;
  hidden int8 Q0.7 (|h| < 1): o * tanh(c) -> h by 2^-(30 - 7).
The kernel starts from a zero state (it clears the cell and skips the hidden part at t = 0).
A quantized model's own int8 weights (one scale s per gate and operand, as TFLite's int8 LSTM has them;
kwscc.quant.int8_weights) are kept as they are, with or without calibration data and in every --optimize
mode: re-rounding them onto power-of-two steps was the LSTM's largest error on keras_lstm_int8 (hidden
state 1.5 dB further from the float model), and the library requantizes by a multiplier anyway.
The scale goes into the gate's multiplier: the input part is then requantized by 2^-n_x * s * 2^12, the
hidden part by 2^-n_h * s * 2^12, each as (m / 2^30) * 2^-k, m in [2^30, 2^31) (the library takes any m).

What it lacks (peepholes, a projection, a nonzero initial state) runs on kwscc's own kernel,
kwscc_lstm_s8 (kwscc.quant.lstm_own has its arithmetic), with the same gate formats plus:
  peephole weights int16, frac n_p[g] = min(30, 15 - ceil(log2 max|P_g|)), added in Q3.12 (shift n_p + n_c - 12);
  the hidden state int8 in frac n_h: 7 without a projection, else from its range over all time steps
  (calibration, bounded by proj_clip); projection weights int8 (one max-rule format) reading o * tanh(c)
  as int8 Q0.7; the initial states quantized in the hidden's and the cell's formats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kwscc.ir import Graph, Node
from kwscc.ops.recurrent import LSTM_PROJECTION
from kwscc.quant.formats import Format, frac_bits_for, quantize_bias, quantize_weights, round_half_up
from kwscc.quant.int8_weights import multiplier_shift, recorded_int8
from kwscc.quant.kernels import POW2_MULTIPLIER, pow2_multiplier_shift, requantize
from kwscc.quant.split_input import split_weights

GATE_FRAC, ACT_FRAC, HIDDEN_FRAC = 12, 15, 7
Q15_MIN, Q15_MAX = -32768, 32767
GATES = ("input", "output", "forget", "cell")  # the IR's block order (kwscc.ops.recurrent)
ACTIVATIONS = {"input": "sigmoid", "output": "sigmoid", "forget": "sigmoid", "cell": "tanh"}
PEEPHOLE_GATES = ("input", "output", "forget")  # the IR's P blocks
MAX_PEEPHOLE_FRAC = 30  # keeps the peephole's shift into Q3.12 far from 64 bits
CMSIS_KERNEL, KWSCC_KERNEL = "arm_lstm_unidirectional_s8", "kwscc_lstm_s8"


@dataclass(slots=True)
class LstmGate:
    input_weights: np.ndarray  # int8 [H, F]
    hidden_weights: np.ndarray  # int8 [H, H]
    input_bias: np.ndarray  # int32 [H]: bias and the input zero point's share, at the input accumulator's scale
    input_shift: int  # k: the input part is requantized by (input_multiplier / 2^30) * 2^-k
    hidden_shift: int
    activation: str
    input_unit: float  # the input accumulator's step: 2^-(n_x + n_wx), or 2^-n_x * s with the model's weights
    input_multiplier: int = POW2_MULTIPLIER
    hidden_multiplier: int = POW2_MULTIPLIER


@dataclass(slots=True)
class LstmLayer:
    """Integer parameters of one LSTM node (kept in QuantModel.layers)."""

    node: str
    gates: dict[str, LstmGate]
    cell_frac: int
    cell_clip: int  # bound of the int16 cell
    hidden_frac: int
    input_offset: int
    steps: int
    last_only: bool
    weight_frac: None = None  # the report's per-layer weight formats are for Conv/Dense
    kernel: str = CMSIS_KERNEL
    # kwscc_lstm_s8 only: gate -> (int16 weights [H], shift into Q3.12); None without peepholes
    peepholes: dict[str, tuple[np.ndarray, int]] | None = None
    projection: np.ndarray | None = None  # int8 [O, H]
    projection_shift: int = 0  # (o * tanh(c) as Q0.7) . projection -> hidden: divided by 2^shift
    hidden_clip: int | None = None  # bound of the int8 hidden state (proj_clip); None: -128..127
    initial_hidden: np.ndarray | None = None  # int8 [O]; None: zero
    initial_cell: np.ndarray | None = None  # int16 [H]; None: zero

    @property
    def hidden_size(self) -> int:
        return self.gates["input"].hidden_weights.shape[0]

    @property
    def output_size(self) -> int:
        return self.hidden_size if self.projection is None else self.projection.shape[0]


def cell_frac_for(bound: float) -> int:
    return min(ACT_FRAC, 15 - math.ceil(math.log2(max(bound, 2.0**-15))))


def quantize_gate_weights(wg: np.ndarray, rg: np.ndarray, x_bias: np.ndarray, fmt: Format,
                          hidden_frac: int = HIDDEN_FRAC):
    """One gate of an LSTM or GRU: int8 W_g and R_g (one max-rule format each: the kernels have one
    multiplier per gate and operand), the input part's int32 bias with the input zero point's share,
    and the fracs of the two accumulators, n_x + n_wx and n_h + n_wh."""
    hidden = wg.shape[0]
    n_wx, n_wh = frac_bits_for(float(np.abs(wg).max())), frac_bits_for(float(np.abs(rg).max()))
    qw, qr = quantize_weights(wg, np.full(hidden, n_wx)), quantize_weights(rg, np.full(hidden, n_wh))
    bias = quantize_bias(x_bias, np.full(hidden, fmt.frac + n_wx)).astype(np.int64)
    bias -= fmt.zero_point * qw.astype(np.int64).sum(axis=1)
    return qw, qr, np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32), fmt.frac + n_wx, hidden_frac + n_wh


def needs_own_kernel(graph: Graph, node: Node) -> bool:
    """Whether the LSTM has what arm_lstm_unidirectional_s8 lacks: peepholes, a projection, a nonzero
    initial state."""
    p, h0, c0 = (graph.tensors[name].data for name in node.inputs[4:7])
    return len(node.inputs) > LSTM_PROJECTION or any(np.any(v) for v in (p, h0, c0))


def _hidden_frac(node: Node, h0: np.ndarray, proj: np.ndarray | None, ranges) -> int:
    """n_h: Q0.7 for o * tanh(c); a projection's output by its range over every step (calibration, which
    sees all steps, else its bound sum_j |Wp_ij|), bounded by proj_clip; the initial state must fit."""
    if proj is None:
        bound = 1.0
    else:
        lo, hi = ranges.get(node.outputs[0], (0.0, float(np.abs(proj).sum(axis=1).max())))
        bound = max(abs(lo), abs(hi))
        if node.attrs.get("proj_clip"):
            bound = min(bound, node.attrs["proj_clip"])
    return frac_bits_for(max(bound, float(np.abs(h0).max(initial=0.0))))


def _fixed(values: np.ndarray, frac: int, bits: int) -> np.ndarray:
    bound = 2 ** (bits - 1)
    q = np.clip(round_half_up(np.asarray(values, np.float64) * 2.0**frac), -bound, bound - 1)
    return q.astype(np.int8 if bits == 8 else np.int16)


def _peepholes(p: np.ndarray, hidden: int, cell_frac: int) -> dict[str, tuple[np.ndarray, int]]:
    out = {}
    for index, gate in enumerate(PEEPHOLE_GATES):
        pg = p[index * hidden:(index + 1) * hidden]
        absmax = float(np.abs(pg).max())
        frac = min(MAX_PEEPHOLE_FRAC, 15 - math.ceil(math.log2(absmax))) if absmax > 0 else 15
        out[gate] = (_fixed(pg, frac, 16), frac + cell_frac - GATE_FRAC)
    return out


def _to_q312(unit: float) -> tuple[int, int]:
    """(multiplier, k) taking an accumulator in steps of `unit` to Q3.12: unit * 2^12 = (m / 2^30) * 2^-k."""
    m, k = multiplier_shift(np.array([unit * 2.0**GATE_FRAC]))
    return int(m[0]), int(k[0])


def _model_gate(wg: np.ndarray, rg: np.ndarray, x_bias: np.ndarray, fmt: Format, activation: str) -> LstmGate | None:
    """One gate for arm_lstm_unidirectional_s8 with the model's own int8 weights, each operand with the one
    scale it was written with (the kernel has one multiplier per gate and operand), or None if W_g or R_g
    are not such weights (kwscc.quant.int8_weights.recorded_int8 of the whole block)."""
    written = [recorded_int8(m.reshape(1, -1)) for m in (wg, rg)]
    if any(found is None for found in written):
        return None
    (qw, sw), (qr, sr) = ((q.reshape(m.shape), float(s[0])) for (q, s), m in zip(written, (wg, rg)))
    unit = 2.0**-fmt.frac * sw
    bias = round_half_up(np.asarray(x_bias, np.float64) / unit).astype(np.int64)
    bias -= fmt.zero_point * qw.astype(np.int64).sum(axis=1)
    (mx, kx), (mh, kh) = _to_q312(unit), _to_q312(2.0**-HIDDEN_FRAC * sr)
    return LstmGate(qw, qr, np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32), kx, kh, activation, unit, mx, mh)


def quantize_lstm(graph: Graph, node: Node, formats: dict[str, Format],
                  ranges: dict[str, tuple[float, float]] | None = None, split_bits: int = 0) -> LstmLayer:
    """The LSTM's integer parameters for arm_lstm_unidirectional_s8, or for kwscc_lstm_s8 when it needs
    what the library lacks. `ranges`: calibrated (min, max) per tensor (the output's spans every step).
    Weights that are already int8 values (per gate and operand) stay as they are on the library's kernel.
    split_bits: the input is split (kwscc.quant.split_input): the input weights become
    [W, W_lo] over its F hi and F lo columns."""
    x, w, r, b = (graph.tensors[name] for name in node.inputs[:4])
    p, h0, c0 = (graph.tensors[name].data.astype(np.float64) for name in node.inputs[4:7])
    proj = graph.tensors[node.inputs[LSTM_PROJECTION]].data if len(node.inputs) > LSTM_PROJECTION else None
    own = needs_own_kernel(graph, node)
    fmt = formats[node.inputs[0]]
    hidden, steps = node.attrs["hidden_size"], x.shape[1]
    hidden_frac = _hidden_frac(node, h0, proj, ranges or {}) if own else HIDDEN_FRAC
    gates = {}
    for index, gate in enumerate(GATES):
        rows = slice(index * hidden, (index + 1) * hidden)
        kept = not own and _model_gate(w.data[rows], r.data[rows], b.data[rows], fmt,
                                                                ACTIVATIONS[gate])
        if kept:
            gates[gate] = kept
            continue
        qw, qr, bias, x_frac, h_frac = quantize_gate_weights(w.data[rows], r.data[rows], b.data[rows], fmt,
                                                             hidden_frac)
        gates[gate] = LstmGate(qw, qr, bias, x_frac - GATE_FRAC, h_frac - GATE_FRAC, ACTIVATIONS[gate],
                               2.0**-x_frac)
    if split_bits:
        for g in gates.values():
            g.input_weights = split_weights(g.input_weights, split_bits)
    clip = node.attrs.get("cell_clip")
    # |c_t| <= |c_0| + t: f and i are in (0, 1) and |g| < 1
    cell_frac = cell_frac_for(max(clip, float(np.abs(c0).max())) if clip else steps + float(np.abs(c0).max()))
    cell_clip = min(Q15_MAX, math.floor(clip * 2.0**cell_frac)) if clip else Q15_MAX
    formats[node.outputs[0]] = Format(hidden_frac)
    layer = LstmLayer(node.name, gates, cell_frac, cell_clip, hidden_frac, -fmt.zero_point, steps,
                      node.attrs["output"] == "last")
    if own:
        layer.kernel = KWSCC_KERNEL
        layer.peepholes = _peepholes(p, hidden, cell_frac) if np.any(p) else None
        layer.initial_hidden = _fixed(h0, hidden_frac, 8) if np.any(h0) else None
        layer.initial_cell = _fixed(c0, cell_frac, 16) if np.any(c0) else None
    if proj is not None:
        n_wp = frac_bits_for(float(np.abs(proj).max()))
        layer.projection = quantize_weights(proj, np.full(proj.shape[0], n_wp))
        layer.projection_shift = HIDDEN_FRAC + n_wp - hidden_frac
        if node.attrs.get("proj_clip"):
            layer.hidden_clip = min(127, math.floor(node.attrs["proj_clip"] * 2.0**hidden_frac))
    return layer


def correct_input_biases(parts, x_q: np.ndarray, x_float: np.ndarray) -> bool:
    """Empirical bias correction of the input part of each gate (LSTM or GRU): the mean over samples and
    time steps of what it computes in integers (x_q [N, T, F] as stored, bias included) is made to
    match the float model's x W_g + b_g. MFCC-like inputs are large, so the weights' rounding moves that
    mean by tenths of a gate unit. parts: (gate, float W_g, float b_g, the input accumulator's step) per
    gate, the gate having input_weights and input_bias (updated). Returns whether any bias changed."""
    mean_q = x_q.reshape(-1, x_q.shape[-1]).astype(np.float64).mean(axis=0)
    mean_f = x_float.reshape(-1, x_float.shape[-1]).astype(np.float64).mean(axis=0)
    changed = False
    for g, w, b, unit in parts:
        real = (g.input_weights.astype(np.float64) @ mean_q + g.input_bias) * unit
        delta = np.floor((real - (w.astype(np.float64) @ mean_f + b)) / unit + 0.5).astype(np.int64)
        if np.any(delta):
            g.input_bias = np.clip(g.input_bias - delta, -(2**31), 2**31 - 1).astype(np.int32)
            changed = True
    return changed


def correct_input_bias(layer: LstmLayer, graph: Graph, node: Node, x_q: np.ndarray, x_float: np.ndarray) -> bool:
    w, b = graph.tensors[node.inputs[1]].data, graph.tensors[node.inputs[3]].data
    size = layer.hidden_size
    rows = [slice(i * size, (i + 1) * size) for i in range(len(GATES))]
    parts = [(layer.gates[gate], w[r], b[r], layer.gates[gate].input_unit) for gate, r in zip(GATES, rows)]
    return correct_input_biases(parts, x_q, x_float)


# ------------------------------------------------------------------- CMSIS-NN v7 s16 building blocks


# sigmoid(i / 24) in unsigned 0.16, i = 0..255: the values of CMSIS-NN v7.0.0's sigmoid_table_uint16
# (Source/NNSupportFunctions/arm_nntables.c, Apache-2.0), which arm_nn_activation_s16 interpolates. They are
# not round(65536 sigmoid(i / 24)) everywhere (44 entries are one higher), so bit-exact results need the
# library's own numbers; tests/quant/test_lstm.py checks them against a CMSIS-NN checkout.
SIGMOID_TABLE = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
)
_TABLE = np.array(SIGMOID_TABLE, np.int64)


def activation_s16(x: np.ndarray, left_shift: int, kind: str) -> np.ndarray:
    """arm_nn_activation_s16: Q3.12 (after x * 2^left_shift) -> sigmoid or tanh in Q0.15."""
    abs_shift, saturated = (9, 0x7FFF << 10) if kind == "sigmoid" else (8, 0xFFFF << 8)
    mult = 3 if left_shift < 0 else 3 << left_shift
    right = -left_shift if left_shift < 0 else 0
    d = (x.astype(np.int64) * mult + ((1 << right) >> 1)) >> right
    a = np.abs(d)
    uh = a >> abs_shift
    lo, hi = _TABLE[np.minimum(uh, 255)], _TABLE[np.minimum(uh + 1, 255)]
    result = np.where(uh >= 255, saturated, (lo << abs_shift) + (a & ((1 << abs_shift) - 1)) * (hi - lo))
    if kind == "sigmoid":
        result = np.where(d >= 0, result + (1 << 9), (1 << 25) - result + (1 << 9) - 1) >> 10
    else:  # uint32 arithmetic in C: the negative branch wraps, and the int16 store keeps the low bits
        result = (np.where(d >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
                  & 0xFFFFFFFF) >> 8
    return (result & 0xFFFF).astype(np.uint16).view(np.int16)


def _pow2_requantize(v: np.ndarray, k: int, rounding: str, multiplier: int = POW2_MULTIPLIER) -> np.ndarray:
    """v * (multiplier / 2^30) * 2^-k as the library rounds it (the shift is the same for any multiplier)."""
    return requantize(v, multiplier, pow2_multiplier_shift(k)[1], rounding)


def vec_mat_mul_acc_s8_s16(lhs: np.ndarray, rhs: np.ndarray, bias: np.ndarray | None, dst: np.ndarray, k: int,
                           rounding: str, multiplier: int = POW2_MULTIPLIER) -> np.ndarray:
    """arm_nn_vec_mat_mul_result_acc_s8_s16: dst + requantize(bias + lhs . rhs rows), saturated to int16."""
    acc = (lhs.astype(np.int64) @ rhs.astype(np.int64).T).astype(np.int32)
    if bias is not None:
        acc = acc + bias.astype(np.int32)
    return np.clip(_pow2_requantize(acc, k, rounding, multiplier) + dst, Q15_MIN, Q15_MAX).astype(np.int16)


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.astype(np.int32) * b.astype(np.int32)


def lstm_s8(x: np.ndarray, layer: LstmLayer, rounding: str, state: dict | None = None) -> np.ndarray:
    """arm_lstm_unidirectional_s8 (batch-major) over x [N, T, F] int8: the hidden sequence [N, T, H] int8.
    state (streaming, kwscc.streaming): {"cell": int16 [N, H], "hidden": int8 [N, H]} to start from, updated
    in place; empty or None: a zero state (the library's first step skips the hidden part, which adds
    exactly 0 for a zero hidden state)."""
    n, steps, _ = x.shape
    size = layer.hidden_size
    state = {} if state is None else state
    cell = state.get("cell", np.zeros((n, size), np.int16))
    hidden = state.get("hidden")
    out = np.empty((n, steps, size), np.int8)

    def gate(name: str, x_t: np.ndarray) -> np.ndarray:
        g = layer.gates[name]
        z = vec_mat_mul_acc_s8_s16(x_t, g.input_weights, g.input_bias, np.zeros((n, size), np.int32),
                                   g.input_shift, rounding, g.input_multiplier)
        if hidden is not None:
            z = vec_mat_mul_acc_s8_s16(hidden, g.hidden_weights, None, z, g.hidden_shift, rounding,
                                       g.hidden_multiplier)
        return activation_s16(z, 0, g.activation)

    for t in range(steps):
        x_t = x[:, t]
        forget = gate("forget", x_t)
        cell = np.clip(_pow2_requantize(_product(forget, cell), ACT_FRAC, rounding), Q15_MIN, Q15_MAX)
        update = _pow2_requantize(_product(gate("input", x_t), gate("cell", x_t)), 2 * ACT_FRAC - layer.cell_frac,
                                  rounding)
        cell = np.clip(update + cell, -layer.cell_clip, layer.cell_clip).astype(np.int16)
        squashed = activation_s16(cell, GATE_FRAC - layer.cell_frac, "tanh")
        h = _pow2_requantize(_product(gate("output", x_t), squashed), 2 * ACT_FRAC - layer.hidden_frac, rounding)
        hidden = np.clip(h, -128, 127).astype(np.int8)
        out[:, t] = hidden
    state.update(cell=cell, hidden=hidden)
    return out


def simulate_lstm(layer: LstmLayer, x: np.ndarray, rounding: str, state: dict | None = None) -> np.ndarray:
    seq = lstm_s8(np.asarray(x, np.int8), layer, rounding, state)
    return seq[:, -1] if layer.last_only else seq
