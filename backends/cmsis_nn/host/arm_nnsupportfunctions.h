/*
 * kwscc host implementation of CMSIS-NN v7 internal support functions (arm_nnsupportfunctions.h);
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Fixed-point helpers shared by the kwscc host kernels: requantization (both
 * CMSIS-NN rounding builds), the gemmlowp-style saturating doubling high
 * multiply, rounding division by a power of two, and the gemmlowp fixed-point
 * exp / reciprocal used by the TFLM integer softmax.
 *
 * Every helper is free of undefined behaviour for all int32 inputs: where the
 * library relies on int32 wrap-around or on shifting negative numbers, the
 * helpers compute in 64 bits or on unsigned values and reproduce the result
 * GCC gives for the library code (two's complement wrap, arithmetic >>).
 */
#ifndef ARM_NNSUPPORTFUNCTIONS_H
#define ARM_NNSUPPORTFUNCTIONS_H

#include <stdint.h>

#include "arm_nn_types.h"
#include "kwscc_host_config.h" /* may define CMSIS_NN_USE_SINGLE_ROUNDING, like a -D flag */

#ifdef __cplusplus
extern "C" {
#endif

#define NN_Q31_MAX ((int32_t)0x7FFFFFFF)
#define NN_Q31_MIN ((int32_t)(-NN_Q31_MAX - 1))
#define NN_Q7_MAX ((int32_t)127)
#define NN_Q7_MIN ((int32_t)-128)

/* ------------------------------------------------------------------------
 * Plain integer helpers
 * ---------------------------------------------------------------------- */

/** Two's complement wrap of v to int32, without implementation-defined conversions. */
static inline int32_t kw_wrap_s32(int64_t v)
{
    const uint32_t u = (uint32_t)(uint64_t)v; /* unsigned conversion is modulo 2^32 */
    if (u <= 0x7FFFFFFFu)
    {
        return (int32_t)u;
    }
    return -(int32_t)(0xFFFFFFFFu - u) - 1;
}

/**
 * Flooring (arithmetic) right shift of a 64-bit value.
 * C leaves >> of a negative number implementation-defined, so negative values
 * are shifted as their bitwise complement, which is non-negative:
 * floor(v / 2^n) == ~(~v >> n) for v < 0.
 * n <= 0 returns v; n >= 63 returns the sign (0 or -1).
 */
static inline int64_t kw_asr64(int64_t v, int32_t n)
{
    if (n <= 0)
    {
        return v;
    }
    if (n > 62)
    {
        return v < 0 ? -1 : 0;
    }
    return v >= 0 ? (v >> n) : ~((~v) >> n);
}

/** Flooring right shift of an int32 value (see kw_asr64). */
static inline int32_t kw_asr32(int32_t v, int32_t n)
{
    return (int32_t)kw_asr64(v, n);
}

/** Clamp v to [lo, hi]; max first, then min, as the library does. */
static inline int32_t kw_clamp_s32(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/** Number of leading zero bits of a 32-bit word; 32 for 0 (like __CLZ). */
static inline int32_t kw_clz_u32(uint32_t v)
{
    int32_t n = 0;
    if (v == 0u)
    {
        return 32;
    }
    while ((v & 0x80000000u) == 0u)
    {
        v <<= 1;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------
 * Fixed-point primitives
 * ---------------------------------------------------------------------- */

/**
 * round(m1 * m2 / 2^31) with ties rounded up, not saturated: the high half of
 * the 64-bit product plus 2^30, shifted right by 31 (floor), truncated to int32.
 */
static inline int32_t arm_nn_doubling_high_mult_no_sat(const int32_t m1, const int32_t m2)
{
    /* |m1*m2| <= 2^62, so adding 2^30 cannot overflow int64. */
    const int64_t prod = (int64_t)m1 * m2 + ((int64_t)1 << 30);
    return kw_wrap_s32(kw_asr64(prod, 31));
}

/**
 * gemmlowp SaturatingRoundingDoublingHighMul: round(m1 * m2 / 2^31) with ties
 * away from zero; the single overflowing case INT32_MIN * INT32_MIN saturates
 * to INT32_MAX.
 */
static inline int32_t arm_nn_doubling_high_mult(const int32_t m1, const int32_t m2)
{
    int64_t prod;
    int64_t nudge;

    if (m1 == NN_Q31_MIN && m2 == NN_Q31_MIN)
    {
        return NN_Q31_MAX;
    }
    prod = (int64_t)m1 * m2;
    nudge = prod >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, which with the signed nudge gives
     * round-half-away; the quotient always fits in int32 here. */
    return (int32_t)((prod + nudge) / ((int64_t)1 << 31));
}

/**
 * gemmlowp RoundingDivideByPOT: dividend / 2^exponent rounded half away from
 * zero. Defined for 0 <= exponent <= 62 (the library itself needs <= 31; the
 * softmax can ask for a little more with very long rows, see arm_softmax_s8.c).
 */
static inline int32_t arm_nn_divide_by_power_of_two(const int32_t dividend, const int32_t exponent)
{
    int64_t mask;
    int64_t remainder;
    int64_t threshold;
    int64_t result;

    if (exponent <= 0)
    {
        return dividend;
    }
    if (exponent > 62)
    {
        return 0; /* |dividend| < 2^31 is far below half of 2^exponent */
    }
    mask = ((int64_t)1 << exponent) - 1;
    /* The low bits of a two's complement number are those of its value mod 2^exponent. */
    remainder = (int64_t)((uint64_t)(int64_t)dividend & (uint64_t)mask);
    result = kw_asr64(dividend, exponent);
    threshold = (mask >> 1) + (result < 0 ? 1 : 0);
    if (remainder > threshold)
    {
        result++;
    }
    return (int32_t)result;
}

/**
 * gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent:
 * val * 2^exp, saturated to [INT32_MIN, INT32_MAX]. 1 <= exp <= 31.
 */
static inline int32_t arm_nn_mult_by_power_of_two(const int32_t val, const int32_t exp)
{
    const int32_t thresh = (int32_t)(((uint32_t)1 << (31 - exp)) - 1u);
    if (val > thresh)
    {
        return NN_Q31_MAX;
    }
    if (val < -thresh)
    {
        return NN_Q31_MIN;
    }
    /* |val| <= 2^(31-exp) - 1, so the product fits. Multiplying instead of
     * shifting keeps negative values defined. */
    return (int32_t)((int64_t)val * ((int64_t)1 << exp));
}

/* ------------------------------------------------------------------------
 * Requantization
 * ---------------------------------------------------------------------- */

/**
 * Requantize an int32 accumulator by (multiplier, shift), i.e. approximately
 * val * multiplier * 2^(shift - 31).
 *
 * Default build (TFLM "double rounding"): val is first multiplied by
 * 2^max(shift, 0) in int32 (wrapping, as GCC does for the library code), then
 * rounded-doubling-high-multiplied by multiplier, then divided by
 * 2^max(-shift, 0) with round-half-away.
 *
 * CMSIS_NN_USE_SINGLE_ROUNDING: (val * multiplier) >> (30 - shift) in 64 bits,
 * truncated to int32 as in v4..v7.0.0, then (x + 1) >> 1.
 *
 * Valid ranges: multiplier in [INT32_MIN + 1, INT32_MAX], shift in [-31, 30].
 */
static inline int32_t arm_nn_requantize(const int32_t val, const int32_t multiplier, const int32_t shift)
{
#ifdef CMSIS_NN_USE_SINGLE_ROUNDING
    const int64_t prod = (int64_t)val * multiplier;
    /* v7.0.0 keeps only 32 bits after the first shift. */
    const int32_t half = kw_wrap_s32(kw_asr64(prod, 30 - shift));
    /* (half + 1) >> 1 with the int32 wrap GCC produces for half == INT32_MAX. */
    return kw_asr32(kw_wrap_s32((int64_t)half + 1), 1);
#else
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    /* val * (1 << left_shift) is an int32 product in the library; wrap like it. */
    const int32_t scaled = kw_wrap_s32((int64_t)val * ((int64_t)1 << (left_shift > 31 ? 31 : left_shift)));
    return arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult_no_sat(scaled, multiplier), right_shift);
#endif
}

/**
 * Output stage shared by conv, depthwise and FC: requantize, add the output
 * offset (int32, wrapping like the library), clamp to the activation range.
 */
static inline int8_t kw_nn_requantize_to_s8(const int32_t acc,
                                            const int32_t multiplier,
                                            const int32_t shift,
                                            const int32_t output_offset,
                                            const int32_t act_min,
                                            const int32_t act_max)
{
    int32_t y = arm_nn_requantize(acc, multiplier, shift);
    y = kw_wrap_s32((int64_t)y + output_offset);
    return (int8_t)kw_clamp_s32(y, act_min, act_max);
}

/* ------------------------------------------------------------------------
 * gemmlowp fixed-point functions used by the TFLM integer softmax
 * ---------------------------------------------------------------------- */

/**
 * exp(x) for x in [-1/4, 0), x and the result in Q0.31 (gemmlowp
 * exp_on_interval_between_negative_one_quarter_and_0_excl): a 4th-order
 * Taylor expansion around -1/8.
 */
static inline int32_t kw_nn_exp_on_interval_between_negative_one_quarter_and_0_excl(const int32_t val)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* round(exp(-1/8) * 2^31) */
    const int32_t one_third = 715827883;             /* round(2^31 / 3) */
    /* x = val + 1/8; val in [-2^29, 0) so x in [-2^28, 2^28). */
    const int32_t x = val + (1 << 28);
    const int32_t x2 = arm_nn_doubling_high_mult(x, x);
    const int32_t x3 = arm_nn_doubling_high_mult(x2, x);
    const int32_t x4 = arm_nn_doubling_high_mult(x2, x2);
    const int32_t x4_over_4 = arm_nn_divide_by_power_of_two(x4, 2);
    const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 =
        arm_nn_divide_by_power_of_two(arm_nn_doubling_high_mult(x4_over_4 + x3, one_third) + x2, 1);
    /* All terms are tiny (|x| <= 1/8), so these int32 additions cannot overflow. */
    return exp_minus_one_eighth +
        arm_nn_doubling_high_mult(exp_minus_one_eighth, x + x4_over_24_plus_x3_over_6_plus_x2_over_2);
}

/**
 * gemmlowp exp_on_negative_values for an input with 5 integer bits (Q5.26,
 * val <= 0); result in Q0.31. exp(0) is returned as INT32_MAX.
 *
 * The input is split as val = r - q with r in [-1/4, 0) and q a non-negative
 * multiple of 1/4 below 32; exp(r) comes from the Taylor expansion and each set
 * bit of q multiplies in the constant exp(-2^k / 4).
 */
static inline int32_t arm_nn_exp_on_negative_values(const int32_t val)
{
    /* round(exp(-2^k / 4) * 2^31) for k = 0..6, i.e. exp(-1/4) .. exp(-16). */
    static const int32_t exp_of_minus_pow2_quarter[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const uint32_t quarter_mask = (1u << 24) - 1u; /* 1/4 in Q5.26 is 2^24 */
    /* r = (val mod 1/4) - 1/4, in [-1/4, 0) */
    const int32_t r = (int32_t)((uint32_t)val & quarter_mask) - (1 << 24);
    /* q = r - val >= 0 (at most 2^31 - 2^24, so it fits), a multiple of 2^24. */
    const uint32_t q = (uint32_t)((int64_t)r - val);
    int32_t result;
    int32_t k;

    /* Rescale r from Q5.26 to Q0.31: multiply by 2^5 (r is negative: no shift). */
    result = kw_nn_exp_on_interval_between_negative_one_quarter_and_0_excl(r * 32);

    for (k = 0; k < 7; k++)
    {
        if ((q & (1u << (24 + k))) != 0u)
        {
            result = arm_nn_doubling_high_mult(result, exp_of_minus_pow2_quarter[k]);
        }
    }
    if (val == 0)
    {
        result = NN_Q31_MAX; /* exp(0) = 1, the largest Q0.31 value */
    }
    return result;
}

/**
 * gemmlowp one_over_one_plus_x_for_x_in_0_1: 1 / (1 + x) for x in [0, 1) in
 * Q0.31; result in Q0.31. Newton-Raphson on the half denominator
 * (1 + x) / 2 in [1/2, 1), starting from 48/17 - 32/17 * d, three iterations
 * in Q2.29.
 */
static inline int32_t arm_nn_one_over_one_plus_x_for_x_in_0_1(const int32_t val)
{
    const int32_t constant_48_over_17 = 1515870810;      /* round(48/17 * 2^29) */
    const int32_t constant_neg_32_over_17 = -1010580540; /* round(-32/17 * 2^29) */
    const int32_t one_q2_29 = 1 << 29;
    /* Rounding half sum of val and 1.0 (INT32_MAX), ties away from zero. */
    const int64_t sum = (int64_t)val + NN_Q31_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = kw_wrap_s32((int64_t)constant_48_over_17 +
                            arm_nn_doubling_high_mult(half_denominator, constant_neg_32_over_17));
    int32_t i;

    for (i = 0; i < 3; i++)
    {
        const int32_t half_denominator_times_x = arm_nn_doubling_high_mult(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = kw_wrap_s32((int64_t)one_q2_29 - half_denominator_times_x);
        /* Q2.29 * Q2.29 is Q4.27; rescale to Q2.29 with a saturating x4. */
        const int32_t correction =
            arm_nn_mult_by_power_of_two(arm_nn_doubling_high_mult(x, one_minus_half_denominator_times_x), 2);
        x = kw_wrap_s32((int64_t)x + correction);
    }
    /* x approximates 1/d = 2/(1+x) in Q2.29; 1/(1+x) in Q0.31 is x * 2^1 saturated. */
    return arm_nn_mult_by_power_of_two(x, 1);
}

/* One LSTM step, s8 in and out, int16 gates and cell (arm_lstm_s8.c); --streaming programs call it per frame. */
arm_cmsis_nn_status arm_nn_lstm_step_s8(const int8_t *data_in, const int8_t *hidden_in, int8_t *hidden_out,
                                        const cmsis_nn_lstm_params *params, cmsis_nn_lstm_context *buffers,
                                        const int32_t batch_offset);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNSUPPORTFUNCTIONS_H */
