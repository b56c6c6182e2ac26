"""Power-of-two (Qm.n) int8 formats.

A tensor in format (frac=n, zero_point=z) stores q = clamp(round(x * 2^n) + z, -128, 127) and
means x = (q - z) * 2^-n. Most tensors have z = 0; softmax outputs have n = 8, z = -128 (fixed by
arm_softmax_s8), and kwscc.quant.refine gives ReLU outputs z = -128 and the model input any z
that fits its range best (see kwscc.quant.quantize).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_FRAC, MAX_FRAC = -16, 24
ZERO_TENSOR_FRAC = 7  # any format represents an all-zero tensor exactly; Q0.7 keeps shifts small


@dataclass(frozen=True, slots=True)
class Format:
    frac: int
    zero_point: int = 0

    @property
    def scale(self) -> float:
        return 2.0 ** -self.frac

    def __str__(self) -> str:
        return f"Q{7 - self.frac}.{self.frac}" + (f" zp={self.zero_point}" if self.zero_point else "")


SOFTMAX_OUTPUT = Format(8, -128)


def frac_bits_for(absmax: float) -> int:
    """Fractional bits n with absmax * 2^n <= 128 (the ML-KWS rule n = 7 - ceil(log2 absmax)).

    An all-zero (or non-finite) range has no magnitude to fit, so it gets ZERO_TENSOR_FRAC: never log2(0).
    """
    if not (absmax > 0 and math.isfinite(absmax)):
        return ZERO_TENSOR_FRAC
    return int(np.clip(7 - math.ceil(math.log2(absmax)), MIN_FRAC, MAX_FRAC))


def round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, np.float64) + 0.5)


def quantize_weights(w: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """int8 weights, one frac per output channel (axis 0), clipped: round(w * 2^n) can reach 128."""
    scale = np.exp2(np.asarray(frac, np.float64)).reshape((-1,) + (1,) * (w.ndim - 1))
    return np.clip(round_half_up(w * scale), -128, 127).astype(np.int8)


def quantize_bias(b: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """int32 bias at the accumulator's scale 2^-(n_in + n_w[c])."""
    q = round_half_up(np.asarray(b, np.float64) * np.exp2(np.asarray(frac, np.float64)))
    return np.clip(q, -(2**31 - 1), 2**31 - 1).astype(np.int32)


def quantize_input(x: np.ndarray, fmt: Format) -> np.ndarray:
    """What the generated <name>_quantize_input computes, in float32 exactly as the C does.

    s = x * 2^n (exact in float32), then round half away from zero by truncating s +- 0.5,
    plus the zero point, saturated to int8; NaN becomes the zero point (a real 0).
    """
    s = np.asarray(x, np.float32) * np.float32(2.0**fmt.frac)
    with np.errstate(invalid="ignore"):
        r = np.where(s >= 0, s + np.float32(0.5), s - np.float32(0.5)).astype(np.float32)
        r = np.where(np.isnan(s), 0, np.clip(np.trunc(r), -128 - fmt.zero_point, 127 - fmt.zero_point))
    return (r + fmt.zero_point).astype(np.int8)


def dequantize(q: np.ndarray, fmt: Format) -> np.ndarray:
    return ((q.astype(np.float32) - np.float32(fmt.zero_point)) * np.float32(fmt.scale)).astype(np.float32)


def act_limits(act: tuple[float, float] | None, fmt: Format) -> tuple[int, int]:
    """A fused activation interval as int8 clamp limits in the output format."""
    lo, hi = act if act is not None else (-math.inf, math.inf)
    qlo = -128 if lo == -math.inf else max(-128, math.ceil(lo * 2.0**fmt.frac) + fmt.zero_point)
    qhi = 127 if hi == math.inf else min(127, math.floor(hi * 2.0**fmt.frac) + fmt.zero_point)
    return int(qlo), int(max(qlo, qhi))
