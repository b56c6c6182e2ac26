"""MaxPool and AveragePool (padding excluded from the average), NCHW or NHWC.

attrs: layout, kernel (h, w), strides (h, w), pads (top, left, bottom, right), act or None.
"""
from __future__ import annotations

import numpy as np

from kwscc.ops import register
from kwscc.ops.activation import apply_act
from kwscc.ops.conv import conv_out_hw, patches_nhwc


def _infer(node, inputs):
    x = inputs[0].shape
    a = node.attrs
    nchw = a["layout"] == "NCHW"
    in_hw = (x[2], x[3]) if nchw else (x[1], x[2])
    oh, ow = conv_out_hw(in_hw, a["kernel"], a["strides"], a["pads"], (1, 1))
    return [((x[0], x[1], oh, ow) if nchw else (x[0], oh, ow, x[3]), inputs[0].dtype)]


def _pool(node, xs, reduce):
    x = xs[0]
    a = node.attrs
    nchw = a["layout"] == "NCHW"
    if nchw:
        x = x.transpose(0, 2, 3, 1)
    out_hw = conv_out_hw(x.shape[1:3], a["kernel"], a["strides"], a["pads"], (1, 1))
    y = reduce(x.astype(np.float64), a, out_hw)
    y = apply_act(y, a.get("act")).astype(np.float32)
    return [y.transpose(0, 3, 1, 2) if nchw else y]


def _max(x, a, out_hw):
    cols = patches_nhwc(x, a["kernel"], a["strides"], a["pads"], (1, 1), out_hw, fill=-np.inf)
    return cols.max(axis=(3, 4))


def _avg(x, a, out_hw):
    cols = patches_nhwc(x, a["kernel"], a["strides"], a["pads"], (1, 1), out_hw)
    ones = np.ones((1,) + x.shape[1:3] + (1,))
    count = patches_nhwc(ones, a["kernel"], a["strides"], a["pads"], (1, 1), out_hw).sum(axis=(3, 4))
    return cols.sum(axis=(3, 4)) / count


register("MaxPool", _infer, lambda node, xs: _pool(node, xs, _max))
register("AveragePool", _infer, lambda node, xs: _pool(node, xs, _avg))
