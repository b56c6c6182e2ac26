"""Bit-exact, batch-vectorised numpy models of what the cmsis-nn-legacy backend emits.

CMSIS_5 5.9.0 q7 functions (pure-C arithmetic; the backend only emits calls whose DSP path agrees):
  conv / depthwise / FC: y = sat8(((b << bias_shift) + NN_ROUND(out_shift) + sum x*w) >> out_shift), taps
      outside the image skipped, >> = floor, NN_ROUND(s) = (1 << s) >> 1: floor((acc + 2^(s-1)) / 2^s)
  arm_relu_q7: max(x, 0); arm_maxpool_q7_HWC: max over in-image taps
  arm_softmax_q7 (5.9.0): S = sum 2^clamp(x - m + 8, 0, 7), y = min(127, floor(2^20 / S) >> min(5 + m - x, 31))
kwscc's own kernels (templates/cmsis_nn_legacy/kernels), identical on every core:
  kwscc_clamp_q7: clip(x, lo, hi)
  kwscc_avepool_q7_HWC: t = sum * 2^lshift over in-image taps, y = clamp(sign(t) * ((|t| + count/2) / count))
  kwscc_maxpool_q7_HWC: max over in-image taps, then clamp
  kwscc_softmax_q7: e = T[m - x] (0 past the table), S = sum e, y = clamp((e * 256 + S / 2) / S - 128)
All divisions truncate (operands are non-negative where it matters).
"""
from __future__ import annotations

import numpy as np

from kwscc.ir import Node
from kwscc.ops.conv import conv_out_hw
from kwscc.quant.kernels import _chunks, _matmul_dtype, _padded, _pool_counts, _span, _taps, max_pool_s8
from kwscc.quant.quantize import QuantModel

Pair = tuple[int, int]


def _sat8(acc: np.ndarray, out_shift: int) -> np.ndarray:
    """int32 accumulator (already holding bias and NN_ROUND) >> out_shift, saturated to q7."""
    acc32 = np.asarray(acc, np.int64).astype(np.int32).astype(np.int64)  # the C accumulator is int32
    return np.clip(acc32 >> out_shift, -128, 127).astype(np.int8)


def _start(bias: np.ndarray | None, bias_shift: int, out_shift: int, channels: int) -> np.ndarray:
    b = np.zeros(channels, np.int64) if bias is None else np.asarray(bias, np.int64)
    return (b << bias_shift) + ((1 << out_shift) >> 1)


def conv_hwc_q7(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, bias_shift: int, out_shift: int, *,
                stride: Pair, padding: Pair, out_hw: Pair) -> np.ndarray:
    """Every arm_convolve_HWC_q7_* (basic, fast, RGB, 1x1, square or not): x [N,H,W,Cin], w OHWI, (h, w) pairs."""
    n, _, _, cin = x.shape
    cout = w.shape[0]
    kernel = (w.shape[1], w.shape[2])
    w2 = w.reshape(cout, -1)
    dtype, _ = _matmul_dtype(128, w2)
    w2 = w2.astype(dtype)
    start = _start(bias, bias_shift, out_shift, cout)
    span = _span(out_hw, kernel, stride, (1, 1))
    oh, ow = out_hw
    out = np.empty((n, oh, ow, cout), np.int8)
    per_sample = oh * ow * (kernel[0] * kernel[1] * cin * 2 + cout * 2) * np.dtype(dtype).itemsize + span[0] * span[1] * cin * 8
    for sl in _chunks(n, per_sample):
        buf = _padded(x[sl], 0, 0, padding, span, dtype)
        cols = np.empty((buf.shape[0], oh, ow, kernel[0] * kernel[1], cin), dtype)
        for t, tap in enumerate(_taps(buf, out_hw, kernel, stride, (1, 1))):
            cols[:, :, :, t, :] = tap
        acc = (cols.reshape(-1, w2.shape[1]) @ w2.T).astype(np.int64) + start
        out[sl] = _sat8(acc, out_shift).reshape(-1, oh, ow, cout)
    return out


def depthwise_hwc_q7(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, bias_shift: int, out_shift: int, *,
                     stride: Pair, padding: Pair, out_hw: Pair) -> np.ndarray:
    """arm_depthwise_separable_conv_HWC_q7(_nonsquare): x [N,H,W,C], w [KH,KW,C]."""
    n, _, _, c = x.shape
    kernel = (w.shape[0], w.shape[1])
    wt = w.reshape(-1, c).astype(np.int32)
    start = _start(bias, bias_shift, out_shift, c)
    span = _span(out_hw, kernel, stride, (1, 1))
    out = np.empty((n, out_hw[0], out_hw[1], c), np.int8)
    for sl in _chunks(n, span[0] * span[1] * c * 4 + out_hw[0] * out_hw[1] * c * 24):
        buf = _padded(x[sl], 0, 0, padding, span, np.int32)
        acc = np.zeros((buf.shape[0], out_hw[0], out_hw[1], c), np.int64)
        for t, tap in enumerate(_taps(buf, out_hw, kernel, stride, (1, 1))):
            acc += tap * wt[t]
        out[sl] = _sat8(acc + start, out_shift)
    return out


def fully_connected_q7(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, bias_shift: int,
                       out_shift: int) -> np.ndarray:
    """arm_fully_connected_q7 and _opt (same arithmetic): x [N, dim_vec], w [rows, dim_vec]."""
    dtype, _ = _matmul_dtype(128, w)
    start = _start(bias, bias_shift, out_shift, w.shape[0])
    out = np.empty((x.shape[0], w.shape[0]), np.int8)
    wf = w.astype(dtype)
    for sl in _chunks(x.shape[0], x.shape[1] * 8 + w.shape[0] * 24):
        acc = (x[sl].astype(dtype) @ wf.T).astype(np.int64) + start
        out[sl] = _sat8(acc, out_shift)
    return out


def fc_opt_interleave(w: np.ndarray) -> np.ndarray:
    """Weights [rows, cols] in arm_fully_connected_q7_opt's order (CMSIS convert_to_x4_q7_weights)."""
    rows, cols = w.shape
    r4, c4 = rows // 4 * 4, cols // 4 * 4
    # within a 4x4 block, (row r, col c) goes to 8*(c&1) + 4*(r>=2) + 2*(c>=2) + (r&1)
    r = np.arange(4)[:, None]
    c = np.arange(4)[None, :]
    pos = 8 * (c & 1) + 4 * (r >= 2) + 2 * (c >= 2) + (r & 1)
    parts = []
    for r0 in range(0, r4, 4):
        block = w[r0:r0 + 4]
        for c0 in range(0, c4, 4):
            tile = np.empty(16, w.dtype)
            tile[pos.reshape(-1)] = block[:, c0:c0 + 4].reshape(-1)
            parts.append(tile)
        parts.append(block[:, c4:].T.reshape(-1))  # leftover columns: r0c, r1c, r2c, r3c
    parts.append(w[r4:].reshape(-1))  # leftover rows, row-major
    return np.concatenate(parts) if parts else w.reshape(-1)


def maxpool_q7(x: np.ndarray, *, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair,
               act: Pair = (-128, 127)) -> np.ndarray:
    """arm_maxpool_q7_HWC (C path, no all-padding window) and kwscc_maxpool_q7_HWC."""
    return max_pool_s8(x, kernel=kernel, stride=stride, padding=padding, out_hw=out_hw, act=act)


def avepool_q7(x: np.ndarray, *, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, lshift: int,
               act: Pair = (-128, 127)) -> np.ndarray:
    """kwscc_avepool_q7_HWC: sum * 2^lshift / count rounded half away from zero, count = in-image taps."""
    count = _pool_counts(x.shape[1:3], out_hw, kernel, stride, padding)[:, :, None].astype(np.int64)
    span = _span(out_hw, kernel, stride, (1, 1))
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], x.shape[3]), np.int8)
    for sl in _chunks(x.shape[0], span[0] * span[1] * x.shape[3] * 4 + out[0].size * 32):
        buf = _padded(x[sl], 0, 0, padding, span, np.int32)
        taps = _taps(buf, out_hw, kernel, stride, (1, 1))
        total = next(taps).astype(np.int64)
        for tap in taps:
            total += tap
        total <<= lshift
        avg = np.sign(total) * ((np.abs(total) + count // 2) // count)
        out[sl] = np.clip(avg, act[0], act[1])
    return out


def softmax_q7(x: np.ndarray) -> np.ndarray:
    """arm_softmax_q7 of CMSIS_5 5.7.0-5.9.0 over the rows of x [rows, dim_vec]."""
    x = np.asarray(x, np.int64)
    m = x.max(axis=-1, keepdims=True)
    total = (np.int64(1) << np.clip(x - m + 8, 0, 7)).sum(axis=-1, keepdims=True)
    ob = (1 << 20) // total
    return np.minimum(127, ob >> np.minimum(5 + m - x, 31)).astype(np.int8)


def softmax_kwscc(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """kwscc_softmax_q7 over the rows of x [rows, n]: probabilities at 1/256, zero point -128."""
    x = np.asarray(x, np.int64)
    d = x.max(axis=-1, keepdims=True) - x
    t = np.asarray(table, np.int64)
    e = np.where(d < t.size, t[np.minimum(d, t.size - 1)], 0)
    total = e.sum(axis=-1, keepdims=True)
    return np.clip((e * 256 + total // 2) // total - 128, -128, 127).astype(np.int8)


# ----------------------------------------------------------------------------- model level


def block_diagonal(w: np.ndarray, groups: int) -> np.ndarray:
    """Grouped OHWI weights [Cout, KH, KW, Cin/groups] as a dense conv's [Cout, KH, KW, Cin] (zeros elsewhere)."""
    if groups == 1:
        return w
    cout, kh, kw, kc = w.shape
    full = np.zeros((cout, kh, kw, kc * groups), w.dtype)
    per_group = cout // groups
    for g in range(groups):
        full[g * per_group:(g + 1) * per_group, :, :, g * kc:(g + 1) * kc] = w[g * per_group:(g + 1) * per_group]
    return full


def is_depthwise_q7(node: Node, in_channels: int, out_channels: int) -> bool:
    """What arm_depthwise_separable_conv_HWC_q7 computes: one group per channel, depth multiplier 1."""
    return node.attrs["group"] == in_channels == out_channels and in_channels > 1


def _act(y: np.ndarray, act: Pair) -> np.ndarray:
    return y if tuple(act) == (-128, 127) else np.clip(y, act[0], act[1]).astype(np.int8)


def _conv(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    layer, a = qm.layers[node.name], node.attrs
    w = layer.weights
    out_hw = conv_out_hw(x.shape[1:3], w.shape[1:3], a["strides"], a["pads"], a["dilations"])
    geo = dict(stride=a["strides"], padding=a["pads"][:2], out_hw=out_hw)
    if is_depthwise_q7(node, x.shape[3], w.shape[0]):
        y = depthwise_hwc_q7(x, w[:, :, :, 0].transpose(1, 2, 0), layer.bias_q7, layer.bias_shift,
                             layer.out_shift, **geo)
    else:
        y = conv_hwc_q7(x, block_diagonal(w, a["group"]), layer.bias_q7, layer.bias_shift, layer.out_shift, **geo)
    return _act(y, layer.act)


def _dense(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    layer = qm.layers[node.name]
    y = fully_connected_q7(x.reshape(x.shape[0], -1), layer.weights, layer.bias_q7, layer.bias_shift,
                           layer.out_shift)
    return _act(y, layer.act)


def _pool(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    layer, a = qm.layers[node.name], node.attrs
    geo = dict(kernel=a["kernel"], stride=a["strides"], padding=a["pads"][:2],
               out_hw=conv_out_hw(x.shape[1:3], a["kernel"], a["strides"], a["pads"], (1, 1)), act=layer.act)
    if node.op == "MaxPool":
        return maxpool_q7(x, **geo)
    return avepool_q7(x, lshift=layer.lshift, **geo)


def _softmax(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    layer = qm.layers[node.name]
    rows = x.reshape(-1, x.shape[-1])
    y = softmax_q7(rows) if layer.softmax == "cmsis" else softmax_kwscc(rows, layer.table)
    return y.reshape(x.shape)


def _reshape(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    return x.reshape((x.shape[0],) + tuple(node.attrs["shape"][1:]))


def _transpose(qm: QuantModel, node: Node, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, node.attrs["perm"]))  # only the input's (constraints.py)


SIMULATORS = {"Conv": _conv, "Dense": _dense, "MaxPool": _pool, "AveragePool": _pool, "Softmax": _softmax,
              "Reshape": _reshape, "Transpose": _transpose}


def simulate_legacy(qm: QuantModel, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int8 value of every activation tensor for a batch of int8 inputs, as the emitted C computes it."""
    values = {name: np.asarray(x, np.int8) for name, x in inputs.items()}
    for node in qm.graph.nodes():
        values[node.outputs[0]] = SIMULATORS[node.op](qm, node, values[node.inputs[0]])
    return values
