"""Conv: 2-D convolution with groups, in NCHW (ONNX) or NHWC (after the layout pass) form.

attrs: layout, strides (h, w), pads (top, left, bottom, right), dilations (h, w), group,
act (lo, hi) or None. Weights are OIHW in NCHW form and OHWI (O, KH, KW, I/group) in NHWC form.
"""
from __future__ import annotations

import numpy as np

from kwscc.ops import register
from kwscc.ops.activation import apply_act


def conv_out_hw(in_hw, kernel_hw, strides, pads, dilations) -> tuple[int, int]:
    out = []
    for i in range(2):
        span = (kernel_hw[i] - 1) * dilations[i] + 1
        out.append((in_hw[i] + pads[i] + pads[i + 2] - span) // strides[i] + 1)
    return out[0], out[1]


def kernel_hw(node, weight_shape) -> tuple[int, int]:
    return (weight_shape[2], weight_shape[3]) if node.attrs["layout"] == "NCHW" else (weight_shape[1], weight_shape[2])


def _infer(node, inputs):
    x, w = inputs[0].shape, inputs[1].shape
    nchw = node.attrs["layout"] == "NCHW"
    in_hw = (x[2], x[3]) if nchw else (x[1], x[2])
    oh, ow = conv_out_hw(in_hw, kernel_hw(node, w), node.attrs["strides"], node.attrs["pads"], node.attrs["dilations"])
    shape = (x[0], w[0], oh, ow) if nchw else (x[0], oh, ow, w[0])
    return [(shape, inputs[0].dtype)]


def patches_nhwc(x: np.ndarray, khw, strides, pads, dilations, out_hw, fill=0.0) -> np.ndarray:
    """im2col: [N, OH, OW, KH, KW, C] windows of an NHWC tensor, padding filled with `fill`."""
    n, h, w, c = x.shape
    t, l = pads[0], pads[1]
    need_h = (out_hw[0] - 1) * strides[0] + (khw[0] - 1) * dilations[0] + 1
    need_w = (out_hw[1] - 1) * strides[1] + (khw[1] - 1) * dilations[1] + 1
    padded = np.full((n, max(need_h, h + t), max(need_w, w + l), c), fill, dtype=x.dtype)
    padded[:, t:t + h, l:l + w, :] = x
    rows = (np.arange(out_hw[0]) * strides[0])[:, None] + np.arange(khw[0]) * dilations[0]
    cols = (np.arange(out_hw[1]) * strides[1])[:, None] + np.arange(khw[1]) * dilations[1]
    return padded[:, rows[:, None, :, None], cols[None, :, None, :], :]


def conv_nhwc_float(x, w, b, strides, pads, dilations, group, out_hw) -> np.ndarray:
    """Float reference convolution; x NHWC, w OHWI (O, KH, KW, C/group)."""
    cols = patches_nhwc(x.astype(np.float64), w.shape[1:3], strides, pads, dilations, out_hw)
    cin_g, cout_g = w.shape[3], w.shape[0] // group
    outs = []
    for g in range(group):
        xg = cols[..., g * cin_g:(g + 1) * cin_g].reshape(*cols.shape[:3], -1)
        wg = w[g * cout_g:(g + 1) * cout_g].reshape(cout_g, -1).astype(np.float64)
        outs.append(xg @ wg.T)
    y = np.concatenate(outs, axis=-1)
    if b is not None:
        y = y + b
    return y


def _run(node, xs):
    x, w = xs[0], xs[1]
    b = xs[2] if len(xs) > 2 else None
    a = node.attrs
    nchw = a["layout"] == "NCHW"
    if nchw:
        x, w = x.transpose(0, 2, 3, 1), w.transpose(0, 2, 3, 1)
    out_hw = conv_out_hw(x.shape[1:3], w.shape[1:3], a["strides"], a["pads"], a["dilations"])
    y = conv_nhwc_float(x, w, b, a["strides"], a["pads"], a["dilations"], a["group"], out_hw)
    y = apply_act(y, a.get("act")).astype(np.float32)
    return [y.transpose(0, 3, 1, 2) if nchw else y]


register("Conv", _infer, _run)
