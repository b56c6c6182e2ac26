/*
 * kwscc host implementation of CMSIS-NN v7 arm_softmax_s8;
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * This is the TFLM integer softmax (the gemmlowp fixed-point algorithm):
 *
 *   1. d = x - max(row). Elements with d < diff_min are treated as exp = 0
 *      and give -128.
 *   2. The scaled difference d * 2^shift * mult (doubling high multiply) is a
 *      Q5.26 number <= 0; exp of it is a Q0.31 number.
 *   3. The exps, each divided by 2^12 (rounding), are summed in Q12.19
 *      (12 accumulation bits).
 *   4. The sum is normalised to [1, 2), and 1/sum is computed with
 *      one_over_one_plus_x_for_x_in_0_1.
 *   5. out = exp * (1/sum), divided by 2^(12 - headroom + 23) with rounding,
 *      minus 128 and clamped: the output has scale 1/256, zero point -128.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

#define SOFTMAX_ACCUM_BITS 12

/* exp(d * input_beta_scale) in Q0.31 for d = x - max <= 0. */
static int32_t softmax_exp(int32_t diff, int32_t mult, int32_t shift)
{
    /* diff * 2^shift is an int32 product in the library; diff_min is chosen
     * so that it fits for every element that gets here. Compute it in 64
     * bits and wrap like the library would. */
    const int32_t shifted = kw_wrap_s32((int64_t)diff * ((int64_t)1 << shift));
    return arm_nn_exp_on_negative_values(arm_nn_doubling_high_mult(shifted, mult));
}

static int8_t row_max(const int8_t *row, int32_t row_size)
{
    int8_t max = row[0];
    int32_t col;
    for (col = 1; col < row_size; col++)
    {
        max = row[col] > max ? row[col] : max;
    }
    return max;
}

/*
 * Preconditions (as for the library): row_size >= 1, 0 <= shift <= 31.
 */
void arm_softmax_s8(const int8_t *input,
                    const int32_t num_rows,
                    const int32_t row_size,
                    const int32_t mult,
                    const int32_t shift,
                    const int32_t diff_min,
                    int8_t *output)
{
    /* Guard the shift count; TFLM's PreprocessSoftmaxScaling gives 0..31. */
    const int32_t left_shift = shift < 0 ? 0 : (shift > 31 ? 31 : shift);
    int32_t row;

    for (row = 0; row < num_rows; row++)
    {
        const int8_t *in_row = input + (size_t)row * (size_t)row_size;
        int8_t *out_row = output + (size_t)row * (size_t)row_size;
        const int32_t max = row_max(in_row, row_size);
        /* The library sums in int32 and would wrap only for rows of more than
         * 4096 elements near the maximum; a uint32 sum wraps the same way. */
        uint32_t usum = 0;
        int32_t sum;
        int32_t headroom;
        uint32_t normalised;
        int32_t shifted_scale;
        int32_t bits_over_unit;
        int32_t col;

        for (col = 0; col < row_size; col++)
        {
            const int32_t diff = (int32_t)in_row[col] - max;
            if (diff >= diff_min)
            {
                usum += (uint32_t)arm_nn_divide_by_power_of_two(softmax_exp(diff, mult, left_shift),
                                                                SOFTMAX_ACCUM_BITS);
            }
        }
        sum = kw_wrap_s32((int64_t)usum);

        /* Normalise the Q12.19 sum to a Q0.31 value in [1/2, 1) (headroom
         * leading zeros shifted out), then subtract 1.0 to get x in [0, 1)
         * for 1/(1+x). Done on uint32 so the 1 shifted into bit 31 is defined. */
        headroom = kw_clz_u32((uint32_t)sum);
        normalised = sum > 0 ? ((uint32_t)sum << headroom) : 0u;
        shifted_scale = arm_nn_one_over_one_plus_x_for_x_in_0_1(kw_wrap_s32((int64_t)normalised - 0x80000000LL));

        /* 31 - 8 output bits + the accumulation bits not used by the sum. */
        bits_over_unit = SOFTMAX_ACCUM_BITS - headroom + 23;

        for (col = 0; col < row_size; col++)
        {
            const int32_t diff = (int32_t)in_row[col] - max;
            if (diff >= diff_min)
            {
                const int32_t scaled = arm_nn_doubling_high_mult(shifted_scale, softmax_exp(diff, mult, left_shift));
                const int32_t res = arm_nn_divide_by_power_of_two(scaled, bits_over_unit) + NN_Q7_MIN;
                out_row[col] = (int8_t)kw_clamp_s32(res, NN_Q7_MIN, NN_Q7_MAX);
            }
            else
            {
                out_row[col] = (int8_t)NN_Q7_MIN;
            }
        }
    }
}
