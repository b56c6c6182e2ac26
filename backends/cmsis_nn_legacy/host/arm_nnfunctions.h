/*
 * kwscc host implementation of the CMSIS_5 5.9.0 legacy q7 API (arm_nnfunctions.h): the functions
 * kwscc's cmsis-nn-legacy backend calls, with the 5.9.0 signatures, so generated code compiles
 * unchanged against the real CMSIS_5 5.9.0 CMSIS/NN (its Include folder plus CMSIS-Core and CMSIS-DSP).
 * Same arithmetic as the library's pure-C path; written for kwscc from the documented behaviour,
 * not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Conv, depthwise and fully connected layers compute, per output,
 *   sat8(((bias << bias_shift) + NN_ROUND(out_shift) + sum x * w) >> out_shift)
 * with NN_ROUND(s) = (1 << s) >> 1, >> rounding toward minus infinity, an int32 accumulator that
 * wraps, and image taps outside the image skipped (zero padding; only the top/left padding is passed).
 * bufferA / vec_buffer / bufferB are only used by the library's DSP paths: the host ignores them.
 */
#ifndef ARM_NNFUNCTIONS_H
#define ARM_NNFUNCTIONS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int8_t q7_t;
typedef int16_t q15_t;
typedef int32_t q31_t;
typedef int64_t q63_t;

typedef enum
{
    ARM_MATH_SUCCESS = 0,
    ARM_MATH_ARGUMENT_ERROR = -1,
    ARM_MATH_LENGTH_ERROR = -2,
    ARM_MATH_SIZE_MISMATCH = -3,
    ARM_MATH_NANINF = -4,
    ARM_MATH_SINGULAR = -5,
    ARM_MATH_TEST_FAILURE = -6
} arm_status;

/* ------------------------------------------------------------------ convolutions (HWC, OHWI weights) */

/* Any geometry. */
arm_status arm_convolve_HWC_q7_basic(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                     const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                     const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                     const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                     const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB);

/* ARM_MATH_SIZE_MISMATCH unless ch_im_in % 4 == 0 and ch_im_out % 2 == 0. */
arm_status arm_convolve_HWC_q7_fast(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                    const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                    const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                    const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                    const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB);

/* ARM_MATH_SIZE_MISMATCH unless ch_im_in == 3. */
arm_status arm_convolve_HWC_q7_RGB(const q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in,
                                   const q7_t *wt, const uint16_t ch_im_out, const uint16_t dim_kernel,
                                   const uint16_t padding, const uint16_t stride, const q7_t *bias,
                                   const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                   const uint16_t dim_im_out, q15_t *bufferA, q7_t *bufferB);

/* x = width (innermost spatial axis), y = height. Any geometry. */
arm_status arm_convolve_HWC_q7_basic_nonsquare(const q7_t *Im_in, const uint16_t dim_im_in_x,
                                               const uint16_t dim_im_in_y, const uint16_t ch_im_in,
                                               const q7_t *wt, const uint16_t ch_im_out,
                                               const uint16_t dim_kernel_x, const uint16_t dim_kernel_y,
                                               const uint16_t padding_x, const uint16_t padding_y,
                                               const uint16_t stride_x, const uint16_t stride_y, const q7_t *bias,
                                               const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                               const uint16_t dim_im_out_x, const uint16_t dim_im_out_y,
                                               q15_t *bufferA, q7_t *bufferB);

/* ARM_MATH_SIZE_MISMATCH unless ch_im_in % 4 == 0 and ch_im_out % 2 == 0. */
arm_status arm_convolve_HWC_q7_fast_nonsquare(const q7_t *Im_in, const uint16_t dim_im_in_x,
                                              const uint16_t dim_im_in_y, const uint16_t ch_im_in,
                                              const q7_t *wt, const uint16_t ch_im_out,
                                              const uint16_t dim_kernel_x, const uint16_t dim_kernel_y,
                                              const uint16_t padding_x, const uint16_t padding_y,
                                              const uint16_t stride_x, const uint16_t stride_y, const q7_t *bias,
                                              const uint16_t bias_shift, const uint16_t out_shift, q7_t *Im_out,
                                              const uint16_t dim_im_out_x, const uint16_t dim_im_out_y,
                                              q15_t *bufferA, q7_t *bufferB);

/* ARM_MATH_SIZE_MISMATCH unless ch_im_in % 4 == 0, ch_im_out % 2 == 0, a 1x1 kernel, no padding, stride 1. */
arm_status arm_convolve_1x1_HWC_q7_fast_nonsquare(const q7_t *Im_in, const uint16_t dim_im_in_x,
                                                  const uint16_t dim_im_in_y, const uint16_t ch_im_in,
                                                  const q7_t *wt, const uint16_t ch_im_out,
                                                  const uint16_t dim_kernel_x, const uint16_t dim_kernel_y,
                                                  const uint16_t padding_x, const uint16_t padding_y,
                                                  const uint16_t stride_x, const uint16_t stride_y,
                                                  const q7_t *bias, const uint16_t bias_shift,
                                                  const uint16_t out_shift, q7_t *Im_out,
                                                  const uint16_t dim_im_out_x, const uint16_t dim_im_out_y,
                                                  q15_t *bufferA, q7_t *bufferB);

/* Depthwise, weights [ky][kx][ch]; ARM_MATH_SIZE_MISMATCH unless ch_im_out == ch_im_in. */
arm_status arm_depthwise_separable_conv_HWC_q7(const q7_t *Im_in, const uint16_t dim_im_in,
                                               const uint16_t ch_im_in, const q7_t *wt, const uint16_t ch_im_out,
                                               const uint16_t dim_kernel, const uint16_t padding,
                                               const uint16_t stride, const q7_t *bias, const uint16_t bias_shift,
                                               const uint16_t out_shift, q7_t *Im_out, const uint16_t dim_im_out,
                                               q15_t *bufferA, q7_t *bufferB);

arm_status arm_depthwise_separable_conv_HWC_q7_nonsquare(const q7_t *Im_in, const uint16_t dim_im_in_x,
                                                         const uint16_t dim_im_in_y, const uint16_t ch_im_in,
                                                         const q7_t *wt, const uint16_t ch_im_out,
                                                         const uint16_t dim_kernel_x, const uint16_t dim_kernel_y,
                                                         const uint16_t padding_x, const uint16_t padding_y,
                                                         const uint16_t stride_x, const uint16_t stride_y,
                                                         const q7_t *bias, const uint16_t bias_shift,
                                                         const uint16_t out_shift, q7_t *Im_out,
                                                         const uint16_t dim_im_out_x, const uint16_t dim_im_out_y,
                                                         q15_t *bufferA, q7_t *bufferB);

/* ------------------------------------------------------------------ fully connected (weights [rows][dim_vec]) */

arm_status arm_fully_connected_q7(const q7_t *pV, const q7_t *pM, const uint16_t dim_vec, const uint16_t num_of_rows,
                                  const uint16_t bias_shift, const uint16_t out_shift, const q7_t *bias, q7_t *pOut,
                                  q15_t *vec_buffer);

/* The same arithmetic with the weights interleaved by blocks of 4 rows x 4 columns
 * (CMSIS convert_to_x4_q7_weights order). */
arm_status arm_fully_connected_q7_opt(const q7_t *pV, const q7_t *pM, const uint16_t dim_vec,
                                      const uint16_t num_of_rows, const uint16_t bias_shift,
                                      const uint16_t out_shift, const q7_t *bias, q7_t *pOut, q15_t *vec_buffer);

/* ------------------------------------------------------------------ pooling, activation, softmax */

/* Max over the in-image taps of each square window (a window lying entirely in padding gives 127).
 * The library's DSP path overwrites Im_in; this host version leaves it intact. */
void arm_maxpool_q7_HWC(q7_t *Im_in, const uint16_t dim_im_in, const uint16_t ch_im_in, const uint16_t dim_kernel,
                        const uint16_t padding, const uint16_t stride, const uint16_t dim_im_out, q7_t *bufferA,
                        q7_t *Im_out);

/* In place: data = max(data, 0). */
void arm_relu_q7(q7_t *data, uint16_t size);

/* CMSIS_5 5.7.0-5.9.0 definition: the input is read in log2 units, the output is Q0.7 in [0, 127]. */
void arm_softmax_q7(const q7_t *vec_in, const uint16_t dim_vec, q7_t *p_out);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNFUNCTIONS_H */
