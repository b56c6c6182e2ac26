/*
 * kwscc host implementation of CMSIS-NN v7 arm_max_pool_s8, arm_avgpool_s8 and
 * arm_avgpool_s8_get_buffer_size;
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Both pools only look at the taps of a window that lie inside the image:
 * padding is neither a value for max pooling nor counted by average pooling.
 * Neither requantizes (input and output share one scale); the result is
 * clamped to the activation range.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

/* The in-image part [start, end) of the window of one output coordinate along one axis. */
typedef struct
{
    int32_t start; /* first input coordinate */
    int32_t end;   /* one past the last input coordinate */
} pool_span;

static pool_span pool_window(int32_t out_coord, int32_t stride, int32_t pad, int32_t kernel, int32_t in_size)
{
    pool_span span;
    const int32_t first = out_coord * stride - pad;
    const int32_t last = first + kernel; /* exclusive */
    span.start = first < 0 ? 0 : first;
    span.end = last > in_size ? in_size : last;
    return span;
}

/* Offset of element (y, x, c) in one HWC image. */
static size_t hwc_index(const cmsis_nn_dims *dims, int32_t y, int32_t x, int32_t c)
{
    return ((size_t)y * (size_t)dims->w + (size_t)x) * (size_t)dims->c + (size_t)c;
}

/* TFLite average: sum / count rounded half away from zero (C division truncates). */
static int32_t rounded_average(int32_t sum, int32_t count)
{
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data)
{
    const int32_t channels = input_dims->c;
    const size_t in_image = (size_t)input_dims->h * (size_t)input_dims->w * (size_t)channels;
    const size_t out_image = (size_t)output_dims->h * (size_t)output_dims->w * (size_t)channels;
    int32_t batch;
    (void)ctx;

    for (batch = 0; batch < input_dims->n; batch++)
    {
        const int8_t *src = input_data + (size_t)batch * in_image;
        int8_t *dst = output_data + (size_t)batch * out_image;
        int32_t oy;
        for (oy = 0; oy < output_dims->h; oy++)
        {
            const pool_span ys =
                pool_window(oy, pool_params->stride.h, pool_params->padding.h, filter_dims->h, input_dims->h);
            int32_t ox;
            for (ox = 0; ox < output_dims->w; ox++)
            {
                const pool_span xs =
                    pool_window(ox, pool_params->stride.w, pool_params->padding.w, filter_dims->w, input_dims->w);
                int32_t c;
                for (c = 0; c < channels; c++)
                {
                    int8_t *out = dst + hwc_index(output_dims, oy, ox, c);
                    int found = 0;
                    int32_t max = NN_Q7_MIN;
                    int32_t y;
                    for (y = ys.start; y < ys.end; y++)
                    {
                        int32_t x;
                        for (x = xs.start; x < xs.end; x++)
                        {
                            const int32_t v = src[hwc_index(input_dims, y, x, c)];
                            if (!found || v > max)
                            {
                                max = v;
                                found = 1;
                            }
                        }
                    }
                    /* A window entirely in padding has no value: v7.0.0 leaves
                     * that output element as it was and only clamps it (not
                     * covered by the golden vectors; never emitted by kwscc). */
                    if (!found)
                    {
                        max = *out;
                    }
                    *out = (int8_t)kw_clamp_s32(max, pool_params->activation.min, pool_params->activation.max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx,
                                   const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims,
                                   const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int8_t *output_data)
{
    const int32_t channels = input_dims->c;
    const size_t in_image = (size_t)input_dims->h * (size_t)input_dims->w * (size_t)channels;
    const size_t out_image = (size_t)output_dims->h * (size_t)output_dims->w * (size_t)channels;
    int32_t batch;
    (void)ctx; /* scratch is only used by the DSP build */

    for (batch = 0; batch < input_dims->n; batch++)
    {
        const int8_t *src = input_data + (size_t)batch * in_image;
        int8_t *dst = output_data + (size_t)batch * out_image;
        int32_t oy;
        for (oy = 0; oy < output_dims->h; oy++)
        {
            const pool_span ys =
                pool_window(oy, pool_params->stride.h, pool_params->padding.h, filter_dims->h, input_dims->h);
            int32_t ox;
            for (ox = 0; ox < output_dims->w; ox++)
            {
                const pool_span xs =
                    pool_window(ox, pool_params->stride.w, pool_params->padding.w, filter_dims->w, input_dims->w);
                int32_t c;
                for (c = 0; c < channels; c++)
                {
                    int32_t sum = 0; /* |sum| <= 128 * count: no overflow for any sane window */
                    int32_t count = 0;
                    int32_t y;
                    for (y = ys.start; y < ys.end; y++)
                    {
                        int32_t x;
                        for (x = xs.start; x < xs.end; x++)
                        {
                            sum += src[hwc_index(input_dims, y, x, c)];
                            count++;
                        }
                    }
                    /* v7.0.0 rejects a window entirely in padding (it would
                     * divide by zero), having written the outputs before it. */
                    if (count == 0)
                    {
                        return ARM_CMSIS_NN_ARG_ERROR;
                    }
                    dst[hwc_index(output_dims, oy, ox, c)] = (int8_t)kw_clamp_s32(
                        rounded_average(sum, count), pool_params->activation.min, pool_params->activation.max);
                }
            }
        }
    }
    return ARM_CMSIS_NN_SUCCESS;
}

/* v7.0.0 pure-C answer: 0 (the DSP build wants 4 * ch_src bytes). */
int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src)
{
    (void)dim_dst_width;
    (void)ch_src;
    return 0;
}
