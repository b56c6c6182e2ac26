"""A Conv / Dense layer that keeps the int8 weights a quantized model was written with.

Requantizing such weights onto power-of-two steps rounds them a second time: on MLPerf Tiny's ResNet-8
that alone costs 3 to 6 dB at every layer against the runtime that runs the file (LiteRT). Instead the
int8 values stay exactly as the file has them, with their scale s[c] per output channel (or one for the
tensor), and the ratio of scales goes into CMSIS-NN's per-channel requantization, which takes a
multiplier as well as a shift: the accumulator, in units 2^-n_in * s[c], becomes the output (step 2^-n_out)
by the real factor r[c] = 2^-n_in * s[c] * 2^n_out = (m[c] / 2^30) * 2^-k[c] with m[c] in [2^30, 2^31).
Activations keep their power-of-two formats.

The scales are not read from the file but recovered from the weights: a symmetric int8 quantization
writes w = q * s with max |q| = 127, so s = max |w| / 127 and every w / s is an integer. Weights that fail
this test (a float model, an asymmetric or a differently scaled quantization) get power-of-two steps.
"""
from __future__ import annotations

import numpy as np

from kwscc.quant.kernels import quantize_multiplier

INT8_MAX = 127
INTEGRAL_TOLERANCE = 1e-3  # float32 weights q * s come back within ~1e-5 of q


def recorded_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(int8 weights, float64 scale per output channel (axis 0)) of weights a symmetric int8 quantization
    wrote, per channel or per tensor; None if they are not such weights."""
    w2 = np.asarray(w, np.float64).reshape(w.shape[0], -1)
    absmax = np.abs(w2).max(axis=1)
    if not absmax.max() > 0 or not np.isfinite(absmax).all():
        return None
    per_tensor = np.full_like(absmax, absmax.max() / INT8_MAX)
    # an all-zero channel has any scale: the tensor's keeps its accumulator units ordinary
    for scale in (np.where(absmax > 0, absmax / INT8_MAX, per_tensor), per_tensor):
        q = w2 / scale[:, None]
        r = np.round(q)
        if np.abs(q - r).max() <= INTEGRAL_TOLERANCE:
            return r.reshape(w.shape).astype(np.int8), scale
    return None


def multiplier_shift(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, k) with real = (m / 2^30) * 2^-k and m in [2^30, 2^31): TFLite's QuantizeMultiplier, whose
    CMSIS-NN shift is 1 - k."""
    m, exponent = quantize_multiplier(real)  # real = (m / 2^31) * 2^exponent
    return m, 1 - exponent
