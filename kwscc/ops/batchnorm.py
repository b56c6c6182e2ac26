"""BatchNormalization (inference form); inputs x, scale, bias, mean, var; attrs epsilon, layout."""
from __future__ import annotations

import numpy as np

from kwscc.ops import register, same_as_input


def bn_scale_shift(scale, bias, mean, var, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """BN(x) = x * a + b with a = scale / sqrt(var + eps), b = bias - mean * a (float64)."""
    a = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + float(epsilon))
    b = np.asarray(bias, np.float64) - np.asarray(mean, np.float64) * a
    return a, b


def _run(node, xs):
    x, scale, bias, mean, var = xs
    a, b = bn_scale_shift(scale, bias, mean, var, node.attrs.get("epsilon", 1e-5))
    axis = 1 if node.attrs.get("layout", "NCHW") == "NCHW" else x.ndim - 1
    shape = [1] * x.ndim
    shape[axis] = -1
    return [(x * a.reshape(shape) + b.reshape(shape)).astype(x.dtype)]


register("BatchNormalization", same_as_input, _run)
