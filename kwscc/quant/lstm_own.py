"""kwscc_lstm_s8, kwscc's own LSTM kernel for what arm_lstm_unidirectional_s8 lacks (peepholes, a
projection, a nonzero initial state), and its bit-exact numpy twin; kwscc.quant.lstm has the formats.

Like kwscc_gru_s8 it reuses CMSIS-NN's arm_nn_activation_s16 for sigmoid and tanh, and divides by
powers of two rounding half away from zero (div(v, k), kwscc.quant.gru.divide_pow2); sat16 / sat8
saturate. Per step, from the state (h8 int8 in frac n_h, c int16 in frac n_c), for each gate g:
  pre_g = sat16(div(bias_g + sum x W_g, kx_g) + div(sum h8 R_g, kh_g) [+ div(P_g * c, kp_g)])
  (peepholes: i and f read c, o reads the new c; the parts are summed before the one saturation)
  i, f, o = sigmoid(pre), g = tanh(pre_c)      (Q0.15)
  c = clip(div(f * c, 15) + div(i * g, 30 - n_c), +-cell_clip)
  m = o * tanh(c)  (tanh reads c shifted by 12 - n_c; m is Q0.30)
  no projection: h8 = sat8(div(m, 30 - n_h))
  projection:    m8 = sat8(div(m, 23));  h8 = clip(div(sum m8 Wp, kp), +-hidden_clip)
"""
from __future__ import annotations

import numpy as np

from kwscc.quant.gru import matvec_part, sat16, divide_pow2
from kwscc.quant.lstm import ACT_FRAC, GATE_FRAC, GATES, HIDDEN_FRAC, KWSCC_KERNEL, LstmLayer, activation_s16
from kwscc.quant.lstm import simulate_lstm as simulate_cmsis_lstm


def _initial(values: np.ndarray | None, n: int, size: int, dtype) -> np.ndarray:
    return np.zeros((n, size), dtype) if values is None else np.tile(values.astype(dtype), (n, 1))


def kwscc_lstm_s8(x: np.ndarray, layer: LstmLayer, state: dict | None = None) -> np.ndarray:
    """kwscc_lstm_s8 over x [N, T, F] int8: the hidden sequence [N, T, O]. state (streaming,
    kwscc.streaming): {"cell": int16 [N, H], "hidden": int8 [N, O]} to start from, updated in place;
    empty or None: the layer's initial state."""
    n, steps, _ = x.shape
    g = layer.gates
    state = {} if state is None else state
    h8 = state.get("hidden", _initial(layer.initial_hidden, n, layer.output_size, np.int8))
    c = state.get("cell", _initial(layer.initial_cell, n, layer.hidden_size, np.int16)).astype(np.int64)
    out = np.empty((n, steps, layer.output_size), np.int8)

    def gate(name: str, pre: dict, cell: np.ndarray) -> np.ndarray:
        z = pre[name]
        if layer.peepholes is not None and name in layer.peepholes:
            weights, shift = layer.peepholes[name]
            z = z + divide_pow2(weights.astype(np.int64) * cell, shift)
        return activation_s16(sat16(z), 0, g[name].activation).astype(np.int64)

    for t in range(steps):
        pre = {name: matvec_part(x[:, t], g[name].input_weights, g[name].input_bias, g[name].input_shift)
               + matvec_part(h8, g[name].hidden_weights, 0, g[name].hidden_shift) for name in GATES}
        i, f, new = gate("input", pre, c), gate("forget", pre, c), gate("cell", pre, c)
        c = np.clip(divide_pow2(f * c, ACT_FRAC) + divide_pow2(i * new, 2 * ACT_FRAC - layer.cell_frac),
                    -layer.cell_clip, layer.cell_clip)
        o = gate("output", pre, c)
        m = o * activation_s16(c.astype(np.int16), GATE_FRAC - layer.cell_frac, "tanh").astype(np.int64)
        if layer.projection is None:
            h = divide_pow2(m, 2 * ACT_FRAC - layer.hidden_frac)
        else:
            m8 = np.clip(divide_pow2(m, 2 * ACT_FRAC - HIDDEN_FRAC), -128, 127)
            h = divide_pow2(m8 @ layer.projection.astype(np.int64).T, layer.projection_shift)
        bound = layer.hidden_clip
        h8 = np.clip(h, -128 if bound is None else -bound, 127 if bound is None else bound).astype(np.int8)
        out[:, t] = h8
    state.update(cell=c.astype(np.int16), hidden=h8)
    return out


def simulate_lstm(layer: LstmLayer, x: np.ndarray, rounding: str, state: dict | None = None) -> np.ndarray:
    """The int8 output of an LSTM node on whichever kernel runs it (state: see kwscc_lstm_s8)."""
    if layer.kernel != KWSCC_KERNEL:
        return simulate_cmsis_lstm(layer, x, rounding, state)
    seq = kwscc_lstm_s8(np.asarray(x, np.int8), layer, state)
    return seq[:, -1] if layer.last_only else seq
