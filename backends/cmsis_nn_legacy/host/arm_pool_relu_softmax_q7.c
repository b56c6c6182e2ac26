/*
 * kwscc host implementation of the CMSIS_5 5.9.0 arm_maxpool_q7_HWC, arm_relu_q7 and arm_softmax_q7.
 * Same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stddef.h>

#include "arm_nnfunctions.h"

/* Max over the in-image taps; padding is no value. The library starts from -129 and stores it as a
 * q7, so a window lying entirely in padding gives 127 (kwscc never emits one). */
void arm_maxpool_q7_HWC(q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in, const uint16_t dim_kernel,
                        const uint16_t padding, const uint16_t stride, const uint16_t dim_im_out, q7_t *bufferA,
                        q7_t *Im_out)
{
    int32_t oy, ox, c, iy, ix;
    (void)bufferA;
    for (oy = 0; oy < dim_im_out; ++oy) {
        for (ox = 0; ox < dim_im_out; ++ox) {
            for (c = 0; c < ch_im_in; ++c) {
                int32_t max = -129;
                for (iy = oy * stride - padding; iy < oy * stride - padding + dim_kernel; ++iy) {
                    for (ix = ox * stride - padding; ix < ox * stride - padding + dim_kernel; ++ix) {
                        if (iy >= 0 && iy < dim_im_in && ix >= 0 && ix < dim_im_in) {
                            const int32_t v = Im_in[(iy * dim_im_in + ix) * ch_im_in + c];
                            max = v > max ? v : max;
                        }
                    }
                }
                Im_out[(oy * dim_im_out + ox) * ch_im_in + c] = (q7_t)(max == -129 ? 127 : max);
            }
        }
    }
}

void arm_relu_q7(q7_t *data, uint16_t size)
{
    uint16_t i;
    for (i = 0; i < size; ++i) {
        if (data[i] < 0) {
            data[i] = 0;
        }
    }
}

/* With m = max(x): S = sum 2^clamp(x - m + 8, 0, 7), y = min(127, floor(2^20 / S) >> min(5 + m - x, 31)). */
void arm_softmax_q7(const q7_t *vec_in, const uint16_t dim_vec, q7_t *p_out)
{
    int32_t m = -128;
    uint32_t sum = 0;
    uint32_t ob;
    int32_t i;
    if (dim_vec == 0) {
        return;
    }
    for (i = 0; i < dim_vec; ++i) {
        m = vec_in[i] > m ? vec_in[i] : m;
    }
    for (i = 0; i < dim_vec; ++i) {
        int32_t e = vec_in[i] - m + 8;
        e = e < 0 ? 0 : (e > 7 ? 7 : e);
        sum += 1u << e;
    }
    ob = (1u << 20) / sum;
    for (i = 0; i < dim_vec; ++i) {
        int32_t sh = 5 + m - vec_in[i];
        uint32_t y = ob >> (sh > 31 ? 31 : sh);
        p_out[i] = (q7_t)(y > 127u ? 127 : y);
    }
}
