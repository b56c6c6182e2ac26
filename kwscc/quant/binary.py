"""Integer parameters of the ops that read two activations (Add, Sub, Mul, Max, Min) and of Concat.

Every format is a power of two, so each rescaling is a shift; CMSIS-NN's (multiplier, shift) pairs
use the multiplier 2^30 (one half) with shift 1 - k for a scale 2^-k, as the conv layers do.

Add / Sub (arm_elementwise_add_s8): each input q_i - z_i is shifted left by ADD_LEFT_SHIFT, then
requantized to the unit of the coarser input, 2^-(n_c + L) with n_c = min(n_a, n_b): a scale of
2^-(n_i - n_c), exact for n_i - n_c < L. Sub negates the second input's multiplier (-2^30: exact on
the even values the left shift makes). The sum is requantized by 2^-(n_c + L - n_o) to the output.
L = 20 as TFLite uses: at least 16, because the library's DSP path shifts 16-bit lanes (a smaller
shift gives wrong results for negative inputs on Cortex-M4), and at most 22 to keep 255 * 2^L * 2
inside int32.

Mul (arm_elementwise_mul_s8): (q_a - z_a) * (q_b - z_b) is in units 2^-(n_a + n_b); requantized by
2^-(n_a + n_b - n_o).

Max / Min (kwscc_maximum_s8 / kwscc_minimum_s8, kwscc's own kernel: arm_maximum_s8 in v7.0.0 takes
no scales): both inputs are shifted left to the finer format f = max(n_a, n_b), compared, and
divided by 2^(f - n_o) with rounding (monotonic, so it commutes with the max).

Concat (kwscc_concat_s8): inputs already in the output's format are copied; the others are divided
by 2^(n_i - n_o) with rounding into it. Inputs that all share one format keep it; inputs that are all
unsigned (zero point -128) stay unsigned at the coarsest step.

Constant operands (an unrolled cell's forget bias, its 1 - z, a folded zero state; broadcast to the
output's shape by kwscc.passes.broadcast_constants) are int8 arrays in flash, each in the finest
format that holds its values (constant_format: 1.0 is 64 in Q1.6, not a saturated 127 in Q0.7). A
constant a Concat copies takes the format of the activations beside it when its values fit there, so
the copy needs no rescaling and does not coarsen the output.
"""
from __future__ import annotations

import numpy as np

from kwscc.errors import UnsupportedError
from kwscc.ir import Node
from kwscc.quant.formats import MAX_FRAC, MIN_FRAC, ZERO_TENSOR_FRAC, Format, act_limits, round_half_up

ADD_LEFT_SHIFT = 20
UNSIGNED_ZERO_POINT = -128
HALF = 1 << 30  # CMSIS-NN multiplier for one half: (2^30, shift 1 - k) means 2^-k
MAX_RIGHT_SHIFT = 31
MUL_MAX_LEFT_SHIFT = 14  # |product| <= 255 * 255 < 2^16: 2^14 more stays inside int32 after the 1-bit shift
MAX_MIN_MAX_LEFT_SHIFT = 23  # 255 * 2^23 < 2^31

BINARY_OPS = ("Add", "Sub", "Mul", "Max", "Min")


def _clamp_frac(n_out: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, n_out))


def binary_output_format(node: Node, wanted: Format, fa: Format, fb: Format) -> Format:
    """The output format closest to `wanted` (from the output's range) that the op's kernel can reach."""
    if node.op in ("Add", "Sub"):
        coarse = min(fa.frac, fb.frac)
        n = _clamp_frac(wanted.frac, coarse + ADD_LEFT_SHIFT - MAX_RIGHT_SHIFT, coarse + ADD_LEFT_SHIFT)
    elif node.op == "Mul":
        acc = fa.frac + fb.frac
        n = _clamp_frac(wanted.frac, acc - MAX_RIGHT_SHIFT, acc + MUL_MAX_LEFT_SHIFT)
    else:
        fine = max(fa.frac, fb.frac)
        if fine - min(fa.frac, fb.frac) > MAX_MIN_MAX_LEFT_SHIFT:
            raise UnsupportedError(f"node '{node.name}' ({node.op}): its inputs' scales differ by more than "
                                   f"2^{MAX_MIN_MAX_LEFT_SHIFT} ({fa} and {fb})")
        n = _clamp_frac(wanted.frac, fine - MAX_RIGHT_SHIFT, fine)
    return Format(n, wanted.zero_point if n == wanted.frac else 0)


def binary_params(node: Node, fa: Format, fb: Format, fo: Format) -> dict:
    """Kernel arguments of a binary op with input formats fa, fb and output format fo."""
    act = act_limits(node.attrs.get("act"), fo)
    if node.op in ("Add", "Sub"):
        coarse = min(fa.frac, fb.frac)
        sign_b = -1 if node.op == "Sub" else 1
        return {"input_1_offset": -fa.zero_point, "input_1_mult": HALF, "input_1_shift": 1 - (fa.frac - coarse),
                "input_2_offset": -fb.zero_point, "input_2_mult": sign_b * HALF,
                "input_2_shift": 1 - (fb.frac - coarse), "left_shift": ADD_LEFT_SHIFT,
                "out_offset": fo.zero_point, "out_mult": HALF, "out_shift": 1 - (coarse + ADD_LEFT_SHIFT - fo.frac),
                "act": act}
    if node.op == "Mul":
        return {"input_1_offset": -fa.zero_point, "input_2_offset": -fb.zero_point, "out_offset": fo.zero_point,
                "out_mult": HALF, "out_shift": 1 - (fa.frac + fb.frac - fo.frac), "act": act}
    fine = max(fa.frac, fb.frac)
    return {"take_max": node.op == "Max", "input_1_offset": -fa.zero_point, "input_1_left": fine - fa.frac,
            "input_2_offset": -fb.zero_point, "input_2_left": fine - fb.frac, "out_right": fine - fo.frac,
            "out_offset": fo.zero_point, "act": act}


def concat_output_format(inputs: list[Format]) -> Format:
    """One shared format stays; unsigned inputs (zero point -128, never negative) keep an unsigned format
    at the coarsest step; otherwise the coarsest symmetric format that holds every input."""
    if len(set(inputs)) == 1:
        return inputs[0]
    if all(f.zero_point == UNSIGNED_ZERO_POINT for f in inputs):
        return Format(min(f.frac for f in inputs), UNSIGNED_ZERO_POINT)
    return Format(min(f.frac - (1 if f.zero_point else 0) for f in inputs))


def concat_params(inputs: list[Format], fo: Format) -> list[dict]:
    """Per input: the rescaling copy's arguments (all zero for a plain copy)."""
    return [{"input_offset": 0 if f == fo else -f.zero_point, "right_shift": f.frac - fo.frac,
             "out_offset": 0 if f == fo else fo.zero_point} for f in inputs]


def quantize_constant(values: np.ndarray, fmt: Format) -> np.ndarray:
    """int8 values of a constant operand in `fmt` (rounded half up, saturated)."""
    q = round_half_up(np.asarray(values, np.float64) * 2.0**fmt.frac) + fmt.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def fits(values: np.ndarray, fmt: Format) -> bool:
    """True when every value rounds into `fmt` without saturating."""
    q = round_half_up(np.asarray(values, np.float64) * 2.0**fmt.frac) + fmt.zero_point
    return bool(np.all((q >= -128) & (q <= 127)))


def constant_format(values: np.ndarray) -> Format:
    """The finest symmetric format whose int8 range holds every value of a constant operand."""
    absmax = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if absmax == 0.0 or not np.isfinite(absmax):
        return Format(ZERO_TENSOR_FRAC)
    n = int(np.clip(7 - np.ceil(np.log2(absmax)), MIN_FRAC, MAX_FRAC))
    while n > MIN_FRAC and not fits(values, Format(n)):
        n -= 1
    return Format(n)
