/*
 * kwscc host implementation of CMSIS-NN v7 arm_convolve_wrapper_s8 and
 * arm_convolve_wrapper_s8_get_buffer_size;
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * CMSIS-NN v7.0.0's wrapper dispatches to one of four internal kernels
 * (arm_convolve_1x1_s8_fast, arm_convolve_1x1_s8, arm_convolve_1_x_n_s8,
 * arm_convolve_s8). They all compute the same numbers:
 *
 *   acc = bias[oc] + sum over in-image taps of (x + input_offset) * w
 *   out = clamp(requantize(acc, M[oc], S[oc]) + output_offset, act.min, act.max)
 *
 * Taps that fall into the (top/left explicit, bottom/right implicit) padding
 * contribute nothing. So this file has a single direct convolution and
 * reproduces the dispatch only where it is visible to the caller: the im2col
 * kernels (1_x_n and the generic one) refuse to run without a scratch buffer.
 * This implementation itself needs no scratch memory.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

/*
 * True when v7.0.0's wrapper sends the layer to one of the 1x1 kernels, which
 * are the only ones that run without a scratch buffer: 1x1 filter, no padding,
 * no dilation and no grouping (any stride).
 */
static int conv_uses_1x1_kernel(const cmsis_nn_conv_params *conv_params,
                                const cmsis_nn_dims *input_dims,
                                const cmsis_nn_dims *filter_dims)
{
    return conv_params->padding.w == 0 && conv_params->padding.h == 0 && filter_dims->w == 1 &&
        filter_dims->h == 1 && conv_params->dilation.w == 1 && conv_params->dilation.h == 1 &&
        input_dims->c == filter_dims->c;
}

/* Accumulator of one output element: bias plus the dot product over all in-image taps. */
static int32_t conv_accumulate(const cmsis_nn_conv_params *conv_params,
                               const cmsis_nn_dims *input_dims,
                               const int8_t *input_batch,
                               const cmsis_nn_dims *filter_dims,
                               const int8_t *filter_row,
                               int32_t first_input_channel,
                               int32_t out_y,
                               int32_t out_x,
                               int32_t bias)
{
    const int32_t kernel_channels = filter_dims->c;
    /* Accumulate in 64 bits and wrap once at the end: the library's int32
     * sum wraps the same way (addition is exact modulo 2^32). */
    int64_t acc = bias;
    int32_t ky;
    int32_t kx;
    int32_t ic;

    for (ky = 0; ky < filter_dims->h; ky++)
    {
        const int32_t in_y = out_y * conv_params->stride.h - conv_params->padding.h + ky * conv_params->dilation.h;
        if (in_y < 0 || in_y >= input_dims->h)
        {
            continue; /* padding row: contributes nothing */
        }
        for (kx = 0; kx < filter_dims->w; kx++)
        {
            const int32_t in_x = out_x * conv_params->stride.w - conv_params->padding.w + kx * conv_params->dilation.w;
            const int8_t *in_px;
            const int8_t *w_px;
            if (in_x < 0 || in_x >= input_dims->w)
            {
                continue; /* padding column */
            }
            in_px = input_batch + ((size_t)in_y * (size_t)input_dims->w + (size_t)in_x) * (size_t)input_dims->c +
                (size_t)first_input_channel;
            w_px = filter_row + ((size_t)ky * (size_t)filter_dims->w + (size_t)kx) * (size_t)kernel_channels;
            for (ic = 0; ic < kernel_channels; ic++)
            {
                acc += (int64_t)((int32_t)in_px[ic] + conv_params->input_offset) * w_px[ic];
            }
        }
    }
    return kw_wrap_s32(acc);
}

arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context *ctx,
                                            const cmsis_nn_conv_params *conv_params,
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
    int32_t groups;
    int32_t out_ch_per_group;
    int32_t batch;
    size_t input_batch_size;
    size_t filter_row_size;
    (void)bias_dims;

    /* v7.0.0: arm_convolve_s8 and arm_convolve_1_x_n_s8 return ARG_ERROR when
     * ctx->buf is NULL, even in the pure-C build, before writing anything. */
    if (!conv_uses_1x1_kernel(conv_params, input_dims, filter_dims) && (ctx == NULL || ctx->buf == NULL))
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    /* Grouped convolution: filter.c input channels per group; the groups must
     * split both the input and the output channels evenly. */
    if (filter_dims->c <= 0 || input_dims->c % filter_dims->c != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    groups = input_dims->c / filter_dims->c;
    if (output_dims->c % groups != 0)
    {
        return ARM_CMSIS_NN_ARG_ERROR;
    }
    out_ch_per_group = output_dims->c / groups;

    input_batch_size = (size_t)input_dims->h * (size_t)input_dims->w * (size_t)input_dims->c;
    filter_row_size = (size_t)filter_dims->h * (size_t)filter_dims->w * (size_t)filter_dims->c;

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
                        (size_t)output_dims->c;
                int32_t oc;
                for (oc = 0; oc < output_dims->c; oc++)
                {
                    const int32_t group = oc / out_ch_per_group;
                    const int32_t acc = conv_accumulate(conv_params,
                                                        input_dims,
                                                        input_batch,
                                                        filter_dims,
                                                        filter_data + (size_t)oc * filter_row_size,
                                                        group * filter_dims->c,
                                                        out_y,
                                                        out_x,
                                                        bias_data != NULL ? bias_data[oc] : 0);
                    out_px[oc] = kw_nn_requantize_to_s8(acc,
                                                        quant_params->multiplier[oc],
                                                        quant_params->shift[oc],
                                                        conv_params->output_offset,
                                                        conv_params->activation.min,
                                                        conv_params->activation.max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/*
 * v7.0.0 pure-C answer. The 1x1 branch of the size function tests padding,
 * filter size and dilation but, unlike the wrapper, not input.c == filter.c:
 * a grouped 1x1 pad-0 conv is sized 0 although the wrapper then needs a
 * buffer (fixed upstream after v7.0.0). The 1x1 kernels need no scratch in the
 * pure-C build. Everything else uses im2col of KH*KW*Cin int16 values with
 * the column count rounded up to a multiple of 4 (note: input.c, not
 * filter.c, so grouped convs are over-sized).
 */
int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims)
{
    int32_t cols;
    (void)output_dims;

    if (conv_params->padding.w == 0 && conv_params->padding.h == 0 && filter_dims->w == 1 && filter_dims->h == 1 &&
        conv_params->dilation.w == 1 && conv_params->dilation.h == 1)
    {
        return 0;
    }
    cols = filter_dims->h * filter_dims->w * input_dims->c;
    cols = (cols + 3) / 4 * 4;
    return 2 * cols * (int32_t)sizeof(int16_t);
}
