"""LSTM and GRU layers with their time loop: shape inference and a float numpy reference.

One node runs a whole sequence, so passes, calibration, the simulator and the backends see one
recurrent layer, not T copies of its cell. Canonical form (frontends map to it):

  input 0: x [N, T, F], batch first; the initial state is a constant (zero unless given).
  LSTM inputs: W [4H, F], R [4H, O], B [4H] (input and recurrent biases summed), P [3H] peepholes
    (i, o, f; zeros when the model has none), h0 [O], c0 [H], and optionally last, Wp [O, H]: the
    projection (no bias). O = H without a projection. Gate blocks in ONNX order i, o, f, c:
      i = sigmoid(x W_i + h R_i + P_i * c + B_i)     f = sigmoid(x W_f + h R_f + P_f * c + B_f)
      g = tanh(x W_c + h R_c + B_c)                  c' = clip(f * c + i * g, cell_clip)
      o = sigmoid(x W_o + h R_o + P_o * c' + B_o)    m = o * tanh(c')
      h' = m without a projection, else clip(m Wp^T, proj_clip)     (h and the output have O values)
  GRU inputs: W [3H, F], R [3H, H], Wb [3H], Rb [3H], h0 [H]. Gate blocks in ONNX order z, r, h:
      z = sigmoid(x W_z + h R_z + Wb_z + Rb_z)       r = sigmoid(x W_r + h R_r + Wb_r + Rb_r)
      n = tanh(x W_h + (r * h) R_h + Rb_h + Wb_h)               (linear_before_reset = 0)
      n = tanh(x W_h + r * (h R_h + Rb_h) + Wb_h)               (linear_before_reset = 1)
      h' = (1 - z) * n + z * h
  attrs: hidden_size; output "sequence" (every h, [N, T, H]) or "last" (the final h, [N, H]);
  LSTM also cell_clip and proj_clip (None or the bound of c / of the projected h); optional gate_clip
  (ONNX's `clip`: every gate pre-activation clipped to [-gate_clip, gate_clip] before its activation),
  at least GATE_CLIP_MIN: the kernels hold pre-activations in int16 Q3.12, which saturates at 8, so
  a larger bound changes nothing there and a smaller one would need a clip of its own.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from kwscc.ops import register

RECURRENT_OPS = ("LSTM", "GRU")
LSTM_INPUTS = ("x", "W", "R", "B", "P", "h0", "c0", "Wp")  # Wp (the projection) is optional
LSTM_PROJECTION = LSTM_INPUTS.index("Wp")
GATE_CLIP_MIN = 8.0


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def output_size(node, inputs) -> int:
    """Values per step of a recurrent node's output: the projection's rows if it has one, else H."""
    if node.op == "LSTM" and len(inputs) > LSTM_PROJECTION:
        return inputs[LSTM_PROJECTION].shape[0]
    return node.attrs["hidden_size"]


def _infer(node, inputs):
    n, t, _ = inputs[0].shape
    h = output_size(node, inputs)
    shape = (n, t, h) if node.attrs["output"] == "sequence" else (n, h)
    return [(shape, inputs[0].dtype)]


def lstm_step(xw: np.ndarray, h: np.ndarray, c: np.ndarray, r: np.ndarray, p: np.ndarray,
              cell_clip: float | None, proj: np.ndarray | None = None,
              proj_clip: float | None = None, gate_clip: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step from xw = x W^T + B (the input's part of the four gates), float64: (h', c')."""
    hs = c.shape[-1]
    z = xw + h @ r.T
    i = sigmoid(_clip(z[:, :hs] + p[:hs] * c, gate_clip))
    f = sigmoid(_clip(z[:, 2 * hs:3 * hs] + p[2 * hs:] * c, gate_clip))
    c = f * c + i * np.tanh(_clip(z[:, 3 * hs:], gate_clip))
    if cell_clip:
        c = np.clip(c, -cell_clip, cell_clip)
    o = sigmoid(_clip(z[:, hs:2 * hs] + p[hs:2 * hs] * c, gate_clip))
    h = o * np.tanh(c)
    if proj is not None:
        h = h @ proj.T
        if proj_clip:
            h = np.clip(h, -proj_clip, proj_clip)
    return h, c


def gru_step(xw: np.ndarray, h: np.ndarray, r: np.ndarray, rb: np.ndarray,
             linear_before_reset: bool, gate_clip: float | None = None) -> np.ndarray:
    """One GRU step from xw = x W^T + Wb, float64."""
    hs = h.shape[-1]
    hr = h @ r[:2 * hs].T + rb[:2 * hs]
    z = sigmoid(_clip(xw[:, :hs] + hr[:, :hs], gate_clip))
    reset = sigmoid(_clip(xw[:, hs:2 * hs] + hr[:, hs:], gate_clip))
    if linear_before_reset:
        n = np.tanh(_clip(xw[:, 2 * hs:] + reset * (h @ r[2 * hs:].T + rb[2 * hs:]), gate_clip))
    else:
        n = np.tanh(_clip(xw[:, 2 * hs:] + (reset * h) @ r[2 * hs:].T + rb[2 * hs:], gate_clip))
    return (1 - z) * n + z * h


def _clip(z: np.ndarray, bound: float | None) -> np.ndarray:
    return z if bound is None else np.clip(z, -bound, bound)


def _run_lstm(node, xs):
    x, w, r, b, p, h0, c0, *proj = (np.asarray(v, np.float64) for v in xs)
    xw = x @ w.T + b  # [N, T, 4H]: the input's share of every step at once
    h = np.broadcast_to(h0, (x.shape[0], h0.shape[-1]))
    c = np.broadcast_to(c0, (x.shape[0], c0.shape[-1]))
    hs = []
    for t in range(x.shape[1]):
        h, c = lstm_step(xw[:, t], h, c, r, p, node.attrs.get("cell_clip"), proj[0] if proj else None,
                         node.attrs.get("proj_clip"), node.attrs.get("gate_clip"))
        hs.append(h)
    return [_output(node, hs)]


def _run_gru(node, xs):
    x, w, r, wb, rb, h0 = (np.asarray(v, np.float64) for v in xs)
    xw = x @ w.T + wb
    h = np.broadcast_to(h0, (x.shape[0], h0.shape[-1]))
    hs = []
    for t in range(x.shape[1]):
        h = gru_step(xw[:, t], h, r, rb, node.attrs.get("linear_before_reset", False), node.attrs.get("gate_clip"))
        hs.append(h)
    return [_output(node, hs)]


def states_span_steps(node) -> bool:
    """Whether the node's output format is calibrated (an LSTM's projected state) while the node keeps
    only the last step: calibration must then see every step's state, which shares that format."""
    return node.op == "LSTM" and len(node.inputs) > LSTM_PROJECTION and node.attrs["output"] == "last"


def every_step(node, xs: list[np.ndarray]) -> np.ndarray:
    """The float output of every time step [N, T, O], whatever the node's output mode."""
    run = _run_lstm if node.op == "LSTM" else _run_gru
    return run(replace(node, attrs={**node.attrs, "output": "sequence"}), xs)[0]


def _output(node, hs: list[np.ndarray]) -> np.ndarray:
    out = np.stack(hs, axis=1) if node.attrs["output"] == "sequence" else hs[-1]
    return out.astype(np.float32)


register("LSTM", _infer, _run_lstm)
register("GRU", _infer, _run_gru)
