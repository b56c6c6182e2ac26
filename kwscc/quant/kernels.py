"""Bit-exact, batch-vectorised numpy models of the CMSIS-NN v7.0.0 s8 kernels (pure-C arithmetic)."""
from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# Working-memory budget for one batch chunk (im2col, accumulators, requantization temporaries).
_CHUNK_BYTES = 64 * 2**20
# Working set of the elementwise passes (taps, requantization): within a core's L2 cache they run 2-3x faster.
_CACHE_BYTES = 2**20
# float32 sums of integers are exact while every partial sum stays below 2**24.
_F32_EXACT = 2**24

# gemmlowp exp(-2^-k) multipliers for remainder bits 24..30 of a Q5.26 value (exp(-1/4) .. exp(-16)).
_EXP_BARREL = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)
_SOFTMAX_ACCUM_BITS = 12
_SCALED_DIFF_INTEGER_BITS = 5

Pair = tuple[int, int]


# ----------------------------------------------------------------------------- int32 helpers


def _wrap32(v: np.ndarray) -> np.ndarray:
    """Reduce int64 values modulo 2**32 into int32 range, as a C int32 store does (gcc wraps)."""
    return np.asarray(v, dtype=np.int64).astype(np.int32).astype(np.int64)


def _rounding_divide_by_pow2(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """arm_nn_divide_by_power_of_two: x / 2^e rounded half away from zero.

    C adds 1 to floor(x / 2^e) when the remainder exceeds (2^e - 1) >> 1, one more for negative x; for e >= 1
    that is floor((x + 2^(e-1) - [x < 0]) / 2^e), computed here in fewer passes; e = 0 returns x.
    """
    e = np.asarray(exponent, dtype=np.int64)
    t = x + ((np.int64(1) << e) >> 1)
    t -= (x < 0) if np.all(e > 0) else (x < 0) & (e > 0)
    t >>= e
    return t


def _doubling_high_mult(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """arm_nn_doubling_high_mult (gemmlowp SaturatingRoundingDoublingHighMul): round(a*b / 2^31), ties away."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    nudge = np.where((a < 0) ^ (b < 0), 1 - 2**30, 2**30)
    t = a * b + nudge
    # C divides the 64-bit value by 2^31, truncating toward zero.
    q = np.where(t >= 0, t >> 31, -((-t) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, _wrap32(q))


def _mult_by_pow2_sat(v: np.ndarray, exponent: int) -> np.ndarray:
    """arm_nn_mult_by_power_of_two: v * 2^e saturated to int32."""
    threshold = (1 << (31 - exponent)) - 1
    r = _wrap32(v << exponent)
    r = np.where(v > threshold, INT32_MAX, r)
    return np.where(v < -threshold, INT32_MIN, r)


# ----------------------------------------------------------------------------- requantization


def requantize(acc, multiplier, shift, rounding: str) -> np.ndarray:
    """arm_nn_requantize(acc, M, S) as int64; M and S are scalars or arrays broadcasting on the last axis."""
    acc32 = np.asarray(acc).astype(np.int32, copy=False)  # the C accumulator is int32 (wraps)
    m = np.asarray(multiplier, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if rounding == "default":
        return _requantize_double(acc32, m, s)
    if rounding == "single":
        return _requantize_single(acc32, m, s)
    raise ValueError(f"rounding must be 'default' or 'single', got {rounding!r}")


def _requantize_double(acc32: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """TFLM double rounding: round-half-up high multiply, then round-half-away right shift."""
    left = np.maximum(s, 0)
    a = (acc32 << left).astype(np.int32) if np.any(left) else acc32  # int32 multiply by 2^left wraps in C
    h = a * m  # int32 x int64 -> int64: exact 64-bit product
    h += 2**30
    h >>= 31
    if np.any(m == INT32_MIN):  # only then can the high word leave int32 range
        h = _wrap32(h)
    return _rounding_divide_by_pow2(h, np.maximum(-s, 0))


def _requantize_single(acc32: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """CMSIS_NN_USE_SINGLE_ROUNDING: ((acc*M >> (30-S)) + 1) >> 1, the first result truncated to int32 (v7)."""
    r = acc32 * m
    r >>= 30 - s
    r32 = r.astype(np.int32)
    r32 += 1  # int32 add: wraps like the C
    r32 >>= 1
    return r32.astype(np.int64)


POW2_MULTIPLIER = 1 << 30  # with CMSIS shift 1 - k: the real scale 2^-k (TFLite's QuantizeMultiplier(2^-k))


def pow2_multiplier_shift(k):
    """Real scale 2^-k as CMSIS (multiplier, shift) = (2^30, 1-k), TFLite's QuantizeMultiplier(2^-k)."""
    if np.ndim(k) == 0:
        return POW2_MULTIPLIER, 1 - int(k)
    k = np.asarray(k, dtype=np.int64)
    return np.full(k.shape, POW2_MULTIPLIER, dtype=np.int32), (1 - k).astype(np.int32)


def _output_stage(acc: np.ndarray, multiplier, shift, output_offset: int, act: Pair, rounding: str) -> np.ndarray:
    """requantize + output offset + activation clamp, as every conv/FC kernel ends."""
    y = _pow2_output_stage(acc, multiplier, shift, output_offset, act) if rounding == "default" else None
    if y is not None:
        return y
    y = requantize(acc, multiplier, shift, rounding)
    y += output_offset
    return np.clip(y, act[0], act[1]).astype(np.int8)


def _pow2_output_stage(acc: np.ndarray, multiplier, shift, output_offset: int, act: Pair) -> np.ndarray | None:
    """_output_stage with double rounding for kwscc's power-of-two scales (M = 2^30, S = -e <= 0) in int32:
    six passes over the accumulator instead of about twelve in int64. None for other scales, or where an
    int32 intermediate could overflow.

    (a * 2^30 + 2^30) >> 31 is h = floor((a + 1) / 2); for e >= 1 the rounding shift then gives
    floor((h + 2^(e-1) - [h < 0]) / 2^e) = floor((a + 1 + 2^e - 2 [a < 0]) / 2^(e+1)) (at a = -1, the one
    value where [a < 0] and [h < 0] differ, both are 0). Adding offset * 2^(e+1) inside adds the output
    offset: y = (a + 2 (a >> 31) + c) >> (e + 1) with one constant c per channel (for e = 0: (a + 1 + ...) >> 1)."""
    e = -np.asarray(shift, dtype=np.int64)
    if not (np.all(np.asarray(multiplier) == 2**30) and np.all(e >= 0) and np.all(e <= 29)):
        return None
    a = np.asarray(acc).astype(np.int32, copy=False)  # the C accumulator is int32 (wraps)
    c = np.where(e > 0, 1 + (np.int64(1) << e), 1) + np.int64(output_offset) * (np.int64(1) << (e + 1))
    bound = INT32_MAX - 2 - int(np.abs(c).max())
    if a.size and (int(a.max()) > bound or int(a.min()) < -bound):
        return None
    t = a >> 31
    if np.all(e > 0):
        t <<= 1
    else:
        t *= np.where(e > 0, 2, 0).astype(np.int32)
    t += a
    t += c.astype(np.int32)
    t >>= (e + 1).astype(np.int32)
    np.clip(t, act[0], act[1], out=t)
    return t.astype(np.int8)


# ----------------------------------------------------------------------------- geometry helpers


def _chunks(n: int, bytes_per_sample: int, budget: int = _CHUNK_BYTES) -> Iterator[slice]:
    """Batch slices whose working set stays within `budget` bytes."""
    step = max(1, budget // max(1, bytes_per_sample))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _padded(x: np.ndarray, fill, offset: int, padding: Pair, span: Pair, dtype) -> np.ndarray:
    """(x + offset) placed at (pad_top, pad_left) in a `fill` canvas covering the `span` rows/cols windows touch."""
    n, h, w, c = x.shape
    buf = np.full((n, span[0], span[1], c), fill, dtype=dtype)
    h1 = min(h, span[0] - padding[0])
    w1 = min(w, span[1] - padding[1])
    if h1 > 0 and w1 > 0:
        view = buf[:, padding[0] : padding[0] + h1, padding[1] : padding[1] + w1, :]
        view[...] = x[:, :h1, :w1, :]
        if offset:
            view += offset
    return buf


def _span(out_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Pair:
    """Extent of the padded input that the output windows read, per axis."""
    return tuple((o - 1) * s + (k - 1) * d + 1 for o, k, s, d in zip(out_hw, kernel, stride, dilation))


def _taps(buf: np.ndarray, out_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Iterator[np.ndarray]:
    """Strided views [N, OH, OW, C] of the padded input, one per kernel tap in (kh, kw) order."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, stride, dilation
    for kh in range(kernel[0]):
        for kw in range(kernel[1]):
            y0, x0 = kh * dh, kw * dw
            yield buf[:, y0 : y0 + (oh - 1) * sh + 1 : sh, x0 : x0 + (ow - 1) * sw + 1 : sw, :]


def _matmul_dtype(max_abs_lhs: int, rhs: np.ndarray) -> tuple[type, int]:
    """float32 when no partial dot-product sum can reach 2^24 (then exact), else float64; plus that bound."""
    worst = max_abs_lhs * int(np.abs(rhs.astype(np.int64)).sum(axis=-1).max(initial=0))
    return (np.float32 if worst < _F32_EXACT else np.float64), worst


def _accumulator(dot: np.ndarray, worst: int, bias: np.ndarray | None) -> np.ndarray:
    """int32 bias + dot from an exact float dot product, wrapping like the C int32 accumulator."""
    acc = dot.astype(np.int32) if worst <= INT32_MAX else dot.astype(np.int64).astype(np.int32)
    if bias is not None:
        acc += np.asarray(bias).astype(np.int32)  # numpy int32 array addition wraps, as gcc's does
    return acc


def _offset_range(offset: int) -> int:
    """Largest |x + offset| over int8 x."""
    return max(abs(-128 + offset), abs(127 + offset))


# ----------------------------------------------------------------------------- convolution


def conv_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    multiplier: np.ndarray,
    shift: np.ndarray,
    *,
    stride: Pair,
    padding: Pair,
    dilation: Pair = (1, 1),
    out_hw: Pair,
    input_offset: int = 0,
    output_offset: int = 0,
    act: Pair = (-128, 127),
    rounding: str = "default",
) -> np.ndarray:
    """arm_convolve_wrapper_s8 (all its kernels share this arithmetic): NHWC x, OHWI w, grouped when w.c < x.c."""
    n, _, _, cin = x.shape
    cout, kh, kw, kc = w.shape
    if cin % kc or cout % (cin // kc):
        raise ValueError(f"bad grouped conv: Cin={cin}, filter.c={kc}, Cout={cout}")
    groups = cin // kc
    oh, ow = out_hw
    w2 = w.reshape(cout, kh * kw * kc)
    dtype, worst = _matmul_dtype(_offset_range(input_offset), w2)
    isz = np.dtype(dtype).itemsize
    per_sample = oh * ow * (kh * kw * cin * isz * 2 + cout * (isz + 32))
    out = np.empty((n, oh, ow, cout), dtype=np.int8)
    for sl in _chunks(n, per_sample):
        cols = _im2col(x[sl], (kh, kw), stride, padding, dilation, out_hw, input_offset, dtype)
        dot = _grouped_matmul(cols, w2.astype(dtype), groups, kh * kw)
        rows = out[sl].reshape(-1, cout)  # a view: the output stage writes into `out`
        for block in _chunks(len(rows), cout * 16, _CACHE_BYTES):
            acc = _accumulator(dot[block], worst, bias)
            rows[block] = _output_stage(acc, multiplier, shift, output_offset, act, rounding)
    return out


def _im2col(x, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair, offset: int, dtype) -> np.ndarray:
    """[P, KH*KW*Cin] patches of (x + input_offset); padded taps hold 0, like CMSIS's -input_offset fill."""
    n, _, _, cin = x.shape
    span = _span(out_hw, kernel, stride, dilation)
    buf = _padded(x, 0, offset, padding, span, dtype)
    p = n * out_hw[0] * out_hw[1]
    if kernel == (1, 1) and tuple(stride) == (1, 1):
        return buf.reshape(p, cin)  # 1x1 stride 1: the padded canvas already is the patch matrix
    cols = np.empty((n, out_hw[0], out_hw[1], kernel[0] * kernel[1], cin), dtype=dtype)
    for t, tap in enumerate(_taps(buf, out_hw, kernel, stride, dilation)):
        cols[:, :, :, t, :] = tap
    return cols.reshape(p, -1)


def _grouped_matmul(cols: np.ndarray, w2: np.ndarray, groups: int, taps: int) -> np.ndarray:
    """[P, Cout] = patches x weights^T, group g using channel slice g of every tap."""
    if groups == 1:
        return cols @ w2.T
    p = cols.shape[0]
    cout = w2.shape[0]
    cg = cout // groups
    kc = w2.shape[1] // taps
    per_tap = cols.reshape(p, taps, groups, kc)
    acc = np.empty((p, cout), dtype=cols.dtype)
    for g in range(groups):
        lhs = per_tap[:, :, g, :].reshape(p, taps * kc)
        acc[:, g * cg : (g + 1) * cg] = lhs @ w2[g * cg : (g + 1) * cg].T
    return acc


def depthwise_conv_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    multiplier: np.ndarray,
    shift: np.ndarray,
    *,
    ch_mult: int = 1,
    stride: Pair,
    padding: Pair,
    dilation: Pair = (1, 1),
    out_hw: Pair,
    input_offset: int = 0,
    output_offset: int = 0,
    act: Pair = (-128, 127),
    rounding: str = "default",
) -> np.ndarray:
    """arm_depthwise_conv_wrapper_s8: w [1,KH,KW,Cin*ch_mult]; output channel ic*ch_mult+m reads input channel ic."""
    n, _, _, cin = x.shape
    _, kh, kw, cout = w.shape
    if cout != cin * ch_mult:
        raise ValueError(f"depthwise filter has {cout} channels, expected {cin}*{ch_mult}")
    oh, ow = out_hw
    span = _span(out_hw, (kh, kw), stride, dilation)
    # |x + off| <= 255 and |w| <= 128 for valid offsets, so every product fits int16 (half the memory traffic).
    prod_dtype = np.int16 if _offset_range(input_offset) * 128 <= 2**15 - 1 else np.int32
    wt = w.reshape(kh * kw, cout).astype(prod_dtype)
    per_sample = span[0] * span[1] * cout * 4 + oh * ow * cout * 16
    out = np.empty((n, oh, ow, cout), dtype=np.int8)
    for sl in _chunks(n, per_sample, _CACHE_BYTES):
        xs = x[sl] if ch_mult == 1 else np.repeat(x[sl], ch_mult, axis=-1)
        buf = _padded(xs, 0, input_offset, padding, span, prod_dtype)
        acc = np.zeros((xs.shape[0], oh, ow, cout), dtype=np.int32)
        if bias is not None:
            acc += np.asarray(bias).astype(np.int32)
        tmp = np.empty(acc.shape, dtype=prod_dtype)  # the int32 sum below is the C accumulator
        for t, tap in enumerate(_taps(buf, out_hw, (kh, kw), stride, dilation)):
            np.multiply(tap, wt[t], out=tmp)
            acc += tmp
        out[sl] = _output_stage(acc, multiplier, shift, output_offset, act, rounding)
    return out


def fully_connected_s8(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    multiplier: int,
    shift: int,
    *,
    input_offset: int = 0,
    filter_offset: int = 0,
    output_offset: int = 0,
    act: Pair = (-128, 127),
    rounding: str = "default",
) -> np.ndarray:
    """arm_fully_connected_s8: acc = bias + (x + in_off) . (w + filter_off) per row of w, per-tensor (M, S)."""
    n, k = x.shape
    nout = w.shape[0]
    wf = w.astype(np.int64) + filter_offset
    dtype, worst = _matmul_dtype(_offset_range(input_offset), wf)
    wf = wf.astype(dtype)
    out = np.empty((n, nout), dtype=np.int8)
    for sl in _chunks(n, k * 8 + nout * 48):
        xs = x[sl].astype(dtype)
        if input_offset:
            xs += input_offset
        acc = _accumulator(xs @ wf.T, worst, bias)
        out[sl] = _output_stage(acc, multiplier, shift, output_offset, act, rounding)
    return out


# ----------------------------------------------------------------------------- pooling


def max_pool_s8(x: np.ndarray, *, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, act: Pair = (-128, 127)) -> np.ndarray:
    """arm_max_pool_s8: max over in-image taps, then clamp."""
    _pool_counts(x.shape[1:3], out_hw, kernel, stride, padding)
    span = _span(out_hw, kernel, stride, (1, 1))
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], x.shape[3]), dtype=np.int8)
    per_sample = span[0] * span[1] * x.shape[3] * 2 + out[0].size * 2
    for sl in _chunks(x.shape[0], per_sample):
        # -129 lies below every int8, so padded taps never win.
        buf = _padded(x[sl], -129, 0, padding, span, np.int16)
        taps = _taps(buf, out_hw, kernel, stride, (1, 1))
        m = next(taps).copy()
        for tap in taps:
            np.maximum(m, tap, out=m)
        out[sl] = np.clip(m, act[0], act[1])
    return out


def avgpool_s8(x: np.ndarray, *, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair, act: Pair = (-128, 127)) -> np.ndarray:
    """arm_avgpool_s8: sum / count rounded half away from zero, count = in-image taps only, then clamp."""
    count = _pool_counts(x.shape[1:3], out_hw, kernel, stride, padding)[:, :, None].astype(np.int32)
    half = count // 2
    span = _span(out_hw, kernel, stride, (1, 1))
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], x.shape[3]), dtype=np.int8)
    per_sample = span[0] * span[1] * x.shape[3] * 4 + out[0].size * 16
    for sl in _chunks(x.shape[0], per_sample):
        buf = _padded(x[sl], 0, 0, padding, span, np.int32)
        taps = _taps(buf, out_hw, kernel, stride, (1, 1))
        total = next(taps).copy()
        for tap in taps:
            total += tap
        # C: sum > 0 ? (sum + count/2) / count : (sum - count/2) / count, with truncating division.
        avg = np.where(total > 0, (total + half) // count, -((half - total) // count))
        out[sl] = np.clip(avg, act[0], act[1])
    return out


def _pool_counts(in_hw: Pair, out_hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> np.ndarray:
    """[OH, OW] number of in-image taps per window; refuses windows lying entirely in padding.

    CMSIS has no defined result there: avgpool returns ARM_CMSIS_NN_ARG_ERROR and max pool leaves the output
    element as it found it, so such a layer must be rejected rather than simulated.
    """
    count = np.outer(*(_valid_taps(*axis) for axis in zip(in_hw, out_hw, kernel, stride, padding)))
    if (count == 0).any():
        raise ValueError("pooling window lies entirely in padding: CMSIS-NN output is undefined there")
    return count


def _valid_taps(size: int, out: int, k: int, s: int, p: int) -> np.ndarray:
    """Per output position along one axis, how many of the k taps fall inside [0, size)."""
    start = np.arange(out) * s - p
    return np.clip(np.minimum(start + k, size) - np.maximum(start, 0), 0, None)


# ----------------------------------------------------------------------------- softmax


def softmax_params(input_frac_bits: int, beta: float = 1.0) -> tuple[int, int, int]:
    """(mult, shift, diff_min) from TFLM PreprocessSoftmaxScaling for input scale 2^-k (kScaledDiffIntegerBits=5)."""
    real = min(beta * 2.0**-input_frac_bits * 2.0 ** (31 - _SCALED_DIFF_INTEGER_BITS), 2.0**31 - 1)
    mult, shift = (int(v) for v in quantize_multiplier(real))
    # CalculateInputRadius(5, shift, 31): the largest |diff| whose rescaled value still fits Q5.26.
    radius = ((1 << _SCALED_DIFF_INTEGER_BITS) - 1) * 2.0 ** (31 - _SCALED_DIFF_INTEGER_BITS) / 2.0**shift
    return mult, shift, -math.floor(radius)


def quantize_multiplier(real) -> tuple[np.ndarray, np.ndarray]:
    """TFLite QuantizeMultiplier, elementwise: real = q * 2^shift with q in [0.5, 1) stored as round(q * 2^31)."""
    q, shift = np.frexp(np.asarray(real, np.float64))
    q_fixed = (np.sign(q) * np.floor(np.abs(q) * 2.0**31 + 0.5)).astype(np.int64)  # std::round: half away from zero
    carry = np.abs(q_fixed) == 1 << 31  # q rounded up to 1
    return np.where(carry, q_fixed // 2, q_fixed), (shift + carry).astype(np.int64)


def softmax_s8(x: np.ndarray, mult: int, shift: int, diff_min: int) -> np.ndarray:
    """arm_softmax_s8 over the rows of x [rows, row_size]; output scale 1/256, zero point -128."""
    x = np.asarray(x, dtype=np.int64)
    diff = x - x.max(axis=1, keepdims=True)
    valid = diff >= diff_min
    exp = _exp_on_negative_values(_doubling_high_mult(_wrap32(diff * (1 << shift)), mult))
    total = _wrap32(np.where(valid, _rounding_divide_by_pow2(exp, _SOFTMAX_ACCUM_BITS), 0).sum(axis=1, keepdims=True))
    headroom = _clz32(total)
    # (sum << headroom) has its top bit set; subtracting 2^31 leaves the fraction x of 1 + x in [0, 1).
    shifted_scale = _one_over_one_plus_x_for_x_in_0_1(_wrap32(_wrap32(total << headroom) + 2**31))
    bits_over_unit = _SOFTMAX_ACCUM_BITS - headroom + 23
    y = _rounding_divide_by_pow2(_doubling_high_mult(shifted_scale, exp), bits_over_unit) - 128
    return np.where(valid, np.clip(y, -128, 127), -128).astype(np.int8)


def _clz32(v: np.ndarray) -> np.ndarray:
    """Count leading zeros of v read as uint32 (exact via frexp: v < 2^53)."""
    u = np.asarray(v, dtype=np.int64) & 0xFFFFFFFF
    return 32 - np.frexp(u.astype(np.float64))[1].astype(np.int64)


def _exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """gemmlowp exp_on_negative_values: a in Q5.26 (a <= 0), result exp(a) in Q0.31."""
    quarter_bits = 24  # 1/4 in Q5.26
    a_mod_quarter_minus_quarter = (a & ((1 << quarter_bits) - 1)) - (1 << quarter_bits)
    remainder = _wrap32(a_mod_quarter_minus_quarter - a)
    # exp on [-1/4, 0) via a Taylor series around -1/8, in Q0.31.
    x = _wrap32((a_mod_quarter_minus_quarter << 5) + (1 << 28))
    x2 = _doubling_high_mult(x, x)
    x3 = _doubling_high_mult(x2, x)
    x4 = _doubling_high_mult(x2, x2)
    poly = _doubling_high_mult(_wrap32(_rounding_divide_by_pow2(x4, 2) + x3), 715827883)  # (x^4/4 + x^3) / 3
    poly = _rounding_divide_by_pow2(_wrap32(poly + x2), 1)
    result = _wrap32(1895147668 + _doubling_high_mult(1895147668, _wrap32(x + poly)))  # exp(-1/8) * (1 + ...)
    # Multiply in exp(-2^(bit-26)) for every whole multiple of 1/4 .. 16 in the remainder.
    for bit, factor in enumerate(_EXP_BARREL, start=quarter_bits):
        result = np.where(remainder & (1 << bit), _doubling_high_mult(result, factor), result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Newton-Raphson for 1/(1+a), a and result in Q0.31."""
    s = a + INT32_MAX
    # (s + sign) / 2 with C's truncating division.
    t = s + np.where(s >= 0, 1, -1)
    half_denominator = _wrap32(np.where(t >= 0, t // 2, -((-t) // 2)))
    x = _wrap32(1515870810 + _doubling_high_mult(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    one_q2 = 1 << 29  # 1.0 with 2 integer bits
    for _ in range(3):
        err = _wrap32(one_q2 - _doubling_high_mult(half_denominator, x))
        x = _wrap32(x + _mult_by_pow2_sat(_doubling_high_mult(x, err), 2))
    return _mult_by_pow2_sat(x, 1)


# ----------------------------------------------------------------------------- elementwise (two activations)


def elementwise_add_s8(a: np.ndarray, b: np.ndarray, *, input_1_offset: int, input_1_mult: int, input_1_shift: int,
                       input_2_offset: int, input_2_mult: int, input_2_shift: int, left_shift: int, out_offset: int,
                       out_mult: int, out_shift: int, act: Pair, rounding: str) -> np.ndarray:
    """arm_elementwise_add_s8 (pure-C path; the DSP path agrees while left_shift >= 16)."""
    x1 = _wrap32((np.asarray(a, np.int64) + input_1_offset) << left_shift)
    x2 = _wrap32((np.asarray(b, np.int64) + input_2_offset) << left_shift)
    total = _wrap32(requantize(x1, input_1_mult, input_1_shift, rounding)
                    + requantize(x2, input_2_mult, input_2_shift, rounding))
    return _output_stage(total, out_mult, out_shift, out_offset, act, rounding)


def elementwise_mul_s8(a: np.ndarray, b: np.ndarray, *, input_1_offset: int, input_2_offset: int, out_offset: int,
                       out_mult: int, out_shift: int, act: Pair, rounding: str) -> np.ndarray:
    """arm_elementwise_mul_s8: (a + offset_1) * (b + offset_2), requantized."""
    prod = (np.asarray(a, np.int64) + input_1_offset) * (np.asarray(b, np.int64) + input_2_offset)
    return _output_stage(prod, out_mult, out_shift, out_offset, act, rounding)


def max_min_s8(a: np.ndarray, b: np.ndarray, *, take_max: bool, input_1_offset: int, input_1_left: int,
               input_2_offset: int, input_2_left: int, out_right: int, out_offset: int, act: Pair) -> np.ndarray:
    """kwscc_maximum_s8 / kwscc_minimum_s8: both inputs shifted left to one scale, the larger (smaller)
    one divided by 2^out_right (rounded half away from zero, arm_nn_divide_by_power_of_two), offset, clamped."""
    x1 = (np.asarray(a, np.int64) + input_1_offset) << input_1_left
    x2 = (np.asarray(b, np.int64) + input_2_offset) << input_2_left
    y = _rounding_divide_by_pow2(np.maximum(x1, x2) if take_max else np.minimum(x1, x2), out_right) + out_offset
    return np.clip(y, act[0], act[1]).astype(np.int8)


def rescale_s8(x: np.ndarray, *, input_offset: int, right_shift: int, out_offset: int) -> np.ndarray:
    """kwscc_concat_s8's copy of one input: (x + input_offset) / 2^right_shift rounded half away from zero,
    plus out_offset, saturated to int8 (an exact copy when offsets and shift are 0)."""
    y = _rounding_divide_by_pow2(np.asarray(x, np.int64) + input_offset, right_shift) + out_offset
    return np.clip(y, -128, 127).astype(np.int8)
