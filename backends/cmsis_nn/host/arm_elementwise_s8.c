/*
 * kwscc host implementation of CMSIS-NN v7 arm_elementwise_add_s8 and arm_elementwise_mul_s8;
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Both read the two inputs element by element before writing the output element, so the output
 * may be either input (in place).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_1_mult,
                                           const int32_t input_1_shift,
                                           const int32_t input_2_offset,
                                           const int32_t input_2_mult,
                                           const int32_t input_2_shift,
                                           const int32_t left_shift,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
    int32_t i;
    for (i = 0; i < block_size; ++i)
    {
        /* (x + offset) << left_shift is an int32 shift in the library: wrap like it */
        const int32_t a = kw_wrap_s32((int64_t)(input_1_vect[i] + input_1_offset) * ((int64_t)1 << left_shift));
        const int32_t b = kw_wrap_s32((int64_t)(input_2_vect[i] + input_2_offset) * ((int64_t)1 << left_shift));
        const int32_t sum = kw_wrap_s32((int64_t)arm_nn_requantize(a, input_1_mult, input_1_shift) +
                                        arm_nn_requantize(b, input_2_mult, input_2_shift));
        output[i] = kw_nn_requantize_to_s8(sum, out_mult, out_shift, out_offset, out_activation_min,
                                           out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_2_offset,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size)
{
    int32_t i;
    for (i = 0; i < block_size; ++i)
    {
        const int32_t product = (input_1_vect[i] + input_1_offset) * (input_2_vect[i] + input_2_offset);
        output[i] = kw_nn_requantize_to_s8(product, out_mult, out_shift, out_offset, out_activation_min,
                                           out_activation_max);
    }
    return ARM_CMSIS_NN_SUCCESS;
}
