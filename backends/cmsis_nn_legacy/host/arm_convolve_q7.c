/*
 * kwscc host implementation of the CMSIS_5 5.9.0 q7 convolutions: arm_convolve_HWC_q7_basic, _fast, _RGB,
 * _basic_nonsquare, _fast_nonsquare and arm_convolve_1x1_HWC_q7_fast_nonsquare.
 * Same arithmetic and argument checks as the library's pure-C path; written for kwscc, not derived
 * from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every variant computes the same function; they differ in the argument checks (returning
 * ARM_MATH_SIZE_MISMATCH with the output untouched) and, in the library, in the DSP code path.
 */
#include <stddef.h>

#include "arm_nnfunctions.h"
#include "kwscc_legacy_support.h"

/* y[oy][ox][oc] = sat8((start[oc] + sum over in-image taps of x[iy][ix][ic] * wt[oc][ky][kx][ic]) >> out_shift) */
static void conv_hwc_q7(const q7_t *in, int32_t in_x, int32_t in_y, int32_t ch_in, const q7_t *wt, int32_t ch_out,
                        int32_t k_x, int32_t k_y, int32_t pad_x, int32_t pad_y, int32_t stride_x, int32_t stride_y,
                        const q7_t *bias, uint16_t bias_shift, uint16_t out_shift, q7_t *out, int32_t out_x,
                        int32_t out_y)
{
    int32_t oy, ox, oc, ky, kx, ic;
    for (oy = 0; oy < out_y; ++oy) {
        for (ox = 0; ox < out_x; ++ox) {
            for (oc = 0; oc < ch_out; ++oc) {
                uint32_t acc = kwscc_legacy_start(bias, oc, bias_shift, out_shift);
                for (ky = 0; ky < k_y; ++ky) {
                    const int32_t iy = oy * stride_y + ky - pad_y;
                    if (iy < 0 || iy >= in_y) {
                        continue;
                    }
                    for (kx = 0; kx < k_x; ++kx) {
                        const int32_t ix = ox * stride_x + kx - pad_x;
                        const q7_t *x;
                        const q7_t *w;
                        if (ix < 0 || ix >= in_x) {
                            continue;
                        }
                        x = in + (iy * in_x + ix) * ch_in;
                        w = wt + ((oc * k_y + ky) * k_x + kx) * ch_in;
                        for (ic = 0; ic < ch_in; ++ic) {
                            acc += (uint32_t)((int32_t)x[ic] * (int32_t)w[ic]);
                        }
                    }
                }
                out[(oy * out_x + ox) * ch_out + oc] = kwscc_legacy_sat8(acc, out_shift);
            }
        }
    }
}

arm_status arm_convolve_HWC_q7_basic(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                     const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                     const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                     const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                     const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB)
{
    (void)bufferA;
    (void)bufferB;
    conv_hwc_q7(Im_in, dim_im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, dim_kernel, padding, padding,
                stride, stride, bias, bias_shift, out_shift, Im_out, dim_im_out, dim_im_out);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_fast(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                    const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                    const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                    const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                    const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB)
{
    (void)bufferA;
    (void)bufferB;
    if (ch_im_in % 4 != 0 || ch_im_out % 2 != 0) {
        return ARM_MATH_SIZE_MISMATCH;
    }
    conv_hwc_q7(Im_in, dim_im_in, dim_im_in, ch_im_in, wt, ch_im_out, dim_kernel, dim_kernel, padding, padding,
                stride, stride, bias, bias_shift, out_shift, Im_out, dim_im_out, dim_im_out);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_RGB(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                   const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                   const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                   const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                   const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB)
{
    (void)bufferA;
    (void)bufferB;
    if (ch_im_in != 3) {
        return ARM_MATH_SIZE_MISMATCH;
    }
    conv_hwc_q7(Im_in, dim_im_in, dim_im_in, 3, wt, ch_im_out, dim_kernel, dim_kernel, padding, padding, stride,
                stride, bias, bias_shift, out_shift, Im_out, dim_im_out, dim_im_out);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_basic_nonsquare(const q7_t *Im_in, const uint16_t dim_im_in_x,
                                               const uint16_t dim_im_in_y, const uint16_t ch_im_in,
                                               const q7_t *wt, const uint16_t ch_im_out,
                                               const uint16_t dim_kernel_x, const uint16_t dim_kernel_y,
                                               const uint16_t padding_x, const uint16_t padding_y,
                                               const uint16_t stride_x, const uint16_t stride_y, const q7_t *bias,
                                               const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                               const uint16_t dim_im_out_x, const uint16_t dim_im_out_y,
                                               q15_t *bufferA, q7_t *bufferB)
{
    (void)bufferA;
    (void)bufferB;
    conv_hwc_q7(Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, wt, ch_im_out, dim_kernel_x, dim_kernel_y, padding_x,
                padding_y, stride_x, stride_y, bias, bias_shift, out_shift, Im_out, dim_im_out_x, dim_im_out_y);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_HWC_q7_fast_nonsquare(const q7_t *Im_in, const uint16_t dim_im_in_x,
                                              const uint16_t dim_im_in_y, const uint16_t ch_im_in,
                                              const q7_t *wt, const uint16_t ch_im_out,
                                              const uint16_t dim_kernel_x, const uint16_t dim_kernel_y,
                                              const uint16_t padding_x, const uint16_t padding_y,
                                              const uint16_t stride_x, const uint16_t stride_y, const q7_t *bias,
                                              const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                              const uint16_t dim_im_out_x, const uint16_t dim_im_out_y,
                                              q15_t *bufferA, q7_t *bufferB)
{
    (void)bufferA;
    (void)bufferB;
    if (ch_im_in % 4 != 0 || ch_im_out % 2 != 0) {
        return ARM_MATH_SIZE_MISMATCH;
    }
    conv_hwc_q7(Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, wt, ch_im_out, dim_kernel_x, dim_kernel_y, padding_x,
                padding_y, stride_x, stride_y, bias, bias_shift, out_shift, Im_out, dim_im_out_x, dim_im_out_y);
    return ARM_MATH_SUCCESS;
}

arm_status arm_convolve_1x1_HWC_q7_fast_nonsquare(const q7_t *Im_in, const uint16_t dim_im_in_x,
                                                  const uint16_t dim_im_in_y, const uint16_t ch_im_in,
                                                  const q7_t *wt, const uint16_t ch_im_out,
                                                  const uint16_t dim_kernel_x, const uint16_t dim_kernel_y,
                                                  const uint16_t padding_x, const uint16_t padding_y,
                                                  const uint16_t stride_x, const uint16_t stride_y,
                                                  const q7_t *bias, const uint16_t bias_shift,
                                                  const uint16_t out_shift, q7_t *Im_out,
                                                  const uint16_t dim_im_out_x, const uint16_t dim_im_out_y,
                                                  q15_t *bufferA, q7_t *bufferB)
{
    (void)bufferA;
    (void)bufferB;
    if (ch_im_in % 4 != 0 || ch_im_out % 2 != 0 || dim_kernel_x != 1 || dim_kernel_y != 1 || padding_x != 0 ||
        padding_y != 0 || stride_x != 1 || stride_y != 1) {
        return ARM_MATH_SIZE_MISMATCH;
    }
    conv_hwc_q7(Im_in, dim_im_in_x, dim_im_in_y, ch_im_in, wt, ch_im_out, 1, 1, 0, 0, 1, 1, bias, bias_shift,
                out_shift, Im_out, dim_im_out_x, dim_im_out_y);
    return ARM_MATH_SUCCESS;
}
