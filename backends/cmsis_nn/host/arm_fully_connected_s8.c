/*
 * kwscc host implementation of CMSIS-NN v7 arm_fully_connected_s8 and
 * arm_fully_connected_s8_get_buffer_size;
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * For every batch b and output o:
 *   acc = bias[o] + sum_j (x[b][j] + input_offset) * (w[o][j] + filter_offset)
 *   out = clamp(requantize(acc, M, S) + output_offset, act.min, act.max)
 * with one (M, S) for the whole tensor.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

/* Dot product of one input vector with one weight row, plus bias. */
static int32_t fc_accumulate(const cmsis_nn_fc_params *fc_params,
                             const int8_t *input_vec,
                             const int8_t *weight_row,
                             int32_t depth,
                             int32_t bias)
{
    /* 64-bit sum wrapped once == the library's wrapping int32 sum. */
    int64_t acc = bias;
    int32_t j;
    for (j = 0; j < depth; j++)
    {
        acc += (int64_t)((int32_t)input_vec[j] + fc_params->input_offset) *
            ((int32_t)weight_row[j] + fc_params->filter_offset);
    }
    return kw_wrap_s32(acc);
}

arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data)
{
    const int32_t depth = filter_dims->n;   /* accumulation depth (inputs per batch) */
    const int32_t outputs = output_dims->c; /* rows of the weight matrix */
    int32_t batch;
    (void)ctx; /* scratch is only used by the MVE build */
    (void)bias_dims;

    for (batch = 0; batch < input_dims->n; batch++)
    {
        const int8_t *input_vec = input_data + (size_t)batch * (size_t)depth;
        int8_t *out_vec = output_data + (size_t)batch * (size_t)outputs;
        int32_t o;
        for (o = 0; o < outputs; o++)
        {
            const int32_t acc = fc_accumulate(fc_params,
                                              input_vec,
                                              filter_data + (size_t)o * (size_t)depth,
                                              depth,
                                              bias_data != NULL ? bias_data[o] : 0);
            out_vec[o] = kw_nn_requantize_to_s8(acc,
                                                quant_params->multiplier,
                                                quant_params->shift,
                                                fc_params->output_offset,
                                                fc_params->activation.min,
                                                fc_params->activation.max);
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* v7.0.0 pure-C answer: 0 (only MVE needs a buffer for precomputed kernel sums). */
int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims)
{
    (void)filter_dims;
    return 0;
}
