/*
 * kwscc host implementation of CMSIS-NN v7 arm_depthwise_conv_wrapper_s8 and
 * arm_depthwise_conv_wrapper_s8_get_buffer_size;
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * v7.0.0 dispatches to arm_depthwise_conv_3x3_s8, arm_depthwise_conv_s8_opt
 * or arm_depthwise_conv_s8. In the pure-C build none of them needs scratch
 * memory and all compute, for output channel oc = ic * ch_mult + m:
 *
 *   acc = bias[oc] + sum over in-image taps of (x[ic] + input_offset) * w[ky][kx][oc]
 *   out = clamp(requantize(acc, M[oc], S[oc]) + output_offset, act.min, act.max)
 *
 * so a single direct implementation covers every case.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

/* Accumulator of output channel out_ch (reading input channel in_ch) at one output pixel. */
static int32_t dw_accumulate(const cmsis_nn_dw_conv_params *params,
                             const cmsis_nn_dims *input_dims,
                             const int8_t *input_batch,
                             const cmsis_nn_dims *filter_dims,
                             const int8_t *filter_data,
                             int32_t out_channels,
                             int32_t in_ch,
                             int32_t out_ch,
                             int32_t out_y,
                             int32_t out_x,
                             int32_t bias)
{
    /* 64-bit sum wrapped once at the end == the library's wrapping int32 sum. */
    int64_t acc = bias;
    int32_t ky;
    int32_t kx;

    for (ky = 0; ky < filter_dims->h; ky++)
    {
        const int32_t in_y = out_y * params->stride.h - params->padding.h + ky * params->dilation.h;
        if (in_y < 0 || in_y >= input_dims->h)
        {
            continue; /* padding contributes nothing */
        }
        for (kx = 0; kx < filter_dims->w; kx++)
        {
            const int32_t in_x = out_x * params->stride.w - params->padding.w + kx * params->dilation.w;
            int32_t x;
            int32_t w;
            if (in_x < 0 || in_x >= input_dims->w)
            {
                continue;
            }
            x = input_batch[((size_t)in_y * (size_t)input_dims->w + (size_t)in_x) * (size_t)input_dims->c +
                            (size_t)in_ch];
            w = filter_data[((size_t)ky * (size_t)filter_dims->w + (size_t)kx) * (size_t)out_channels +
                            (size_t)out_ch];
            acc += (int64_t)(x + params->input_offset) * w;
        }
    }
    return kw_wrap_s32(acc);
}

arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params *quant_params,
                                                  const cmsis_nn_dims *input_dims,
                                                  const int8_t *input_data,
                                                  const cmsis_nn_dims *filter_dims,
                                                  const int8_t *filter_data,
                                                  const cmsis_nn_dims *bias_dims,
                                                  const int32_t *bias_data,
                                                  const cmsis_nn_dims *output_dims,
                                                  int8_t *output_data)
{
    const int32_t ch_mult = dw_conv_params->ch_mult;
    const int32_t out_channels = output_dims->c;
    size_t input_batch_size;
    int32_t batch;
    (void)ctx; /* no scratch needed in the pure-C build */
    (void)bias_dims;

    /* Output channel ic * ch_mult + m must exist for every input channel. */
    if (ch_mult < 1 || out_channels != input_dims->c * ch_mult)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    input_batch_size = (size_t)input_dims->h * (size_t)input_dims->w * (size_t)input_dims->c;

    for (batch = 0; batch < input_dims->n; batch++)
    {
        const int8_t *input_batch = input_data + (size_t)batch * input_batch_size;
        int32_t out_y;
        for (out_y = 0; out_y < output_dims->h; out_y++)
        {
            int32_t out_x;
            for (out_x = 0; out_x < output_dims->w; out_x++)
            {
                int8_t *out_px = output_data +
                    (((size_t)batch * (size_t)output_dims->h + (size_t)out_y) * (size_t)output_dims->w +
                     (size_t)out_x) *
                        (size_t)out_channels;
                int32_t in_ch;
                for (in_ch = 0; in_ch < input_dims->c; in_ch++)
                {
                    int32_t m;
                    for (m = 0; m < ch_mult; m++)
                    {
                        const int32_t oc = in_ch * ch_mult + m;
                        const int32_t acc = dw_accumulate(dw_conv_params,
                                                          input_dims,
                                                          input_batch,
                                                          filter_dims,
                                                          filter_data,
                                                          out_channels,
                                                          in_ch,
                                                          oc,
                                                          out_y,
                                                          out_x,
                                                          bias_data != NULL ? bias_data[oc] : 0);
                        out_px[oc] = kw_nn_requantize_to_s8(acc,
                                                            quant_params->multiplier[oc],
                                                            quant_params->shift[oc],
                                                            dw_conv_params->output_offset,
                                                            dw_conv_params->activation.min,
                                                            dw_conv_params->activation.max);
                    }
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* v7.0.0 pure-C answer: 0 for every kernel (only the DSP/MVE builds of
 * arm_depthwise_conv_s8_opt use scratch). */
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims)
{
    (void)dw_conv_params;
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}
