/*
 * kwscc host implementation of the CMSIS_5 5.9.0 arm_fully_connected_q7 and arm_fully_connected_q7_opt.
 * Same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * out[r] = sat8(((bias[r] << bias_shift) + NN_ROUND(out_shift) + sum_j pV[j] * W[r][j]) >> out_shift)
 *
 * _opt reads W interleaved: for each block of 4 rows r0..r3 and each group of 4 columns c..c+3 the 16 bytes
 *   r0c r1c r0c+2 r1c+2 r2c r3c r2c+2 r3c+2 r0c+1 r1c+1 r0c+3 r1c+3 r2c+1 r3c+1 r2c+3 r3c+3,
 * then the block's leftover columns as r0j r1j r2j r3j, and after all blocks the leftover rows row-major.
 */
#include <stddef.h>

#include "arm_nnfunctions.h"
#include "kwscc_legacy_support.h"

static uint32_t mac(uint32_t acc, q7_t x, q7_t w)
{
    return acc + (uint32_t)((int32_t)x * (int32_t)w);
}

arm_status arm_fully_connected_q7(const q7_t *pV, const q7_t *pM, const uint16_t dim_vec, const uint16_t num_of_rows,
                                  const uint16_t bias_shift, const uint16_t out_shift, const q7_t *bias, q7_t *pOut,
                                  q15_t *vec_buffer)
{
    int32_t r, j;
    (void)vec_buffer;
    for (r = 0; r < num_of_rows; ++r) {
        uint32_t acc = kwscc_legacy_start(bias, r, bias_shift, out_shift);
        const q7_t *w = pM + (int32_t)r * dim_vec;
        for (j = 0; j < dim_vec; ++j) {
            acc = mac(acc, pV[j], w[j]);
        }
        pOut[r] = kwscc_legacy_sat8(acc, out_shift);
    }
    return ARM_MATH_SUCCESS;
}

arm_status arm_fully_connected_q7_opt(const q7_t *pV, const q7_t *pM, const uint16_t dim_vec,
                                      const uint16_t num_of_rows, const uint16_t bias_shift,
                                      const uint16_t out_shift, const q7_t *bias, q7_t *pOut, q15_t *vec_buffer)
{
    const int32_t blocks = num_of_rows / 4;
    const int32_t groups = dim_vec / 4;
    const q7_t *w = pM;
    int32_t b, g, j, r;
    (void)vec_buffer;
    for (b = 0; b < blocks; ++b) {
        uint32_t a0 = kwscc_legacy_start(bias, 4 * b, bias_shift, out_shift);
        uint32_t a1 = kwscc_legacy_start(bias, 4 * b + 1, bias_shift, out_shift);
        uint32_t a2 = kwscc_legacy_start(bias, 4 * b + 2, bias_shift, out_shift);
        uint32_t a3 = kwscc_legacy_start(bias, 4 * b + 3, bias_shift, out_shift);
        for (g = 0; g < groups; ++g) {
            const q7_t *x = pV + 4 * g;
            a0 = mac(a0, x[0], w[0]);
            a1 = mac(a1, x[0], w[1]);
            a0 = mac(a0, x[2], w[2]);
            a1 = mac(a1, x[2], w[3]);
            a2 = mac(a2, x[0], w[4]);
            a3 = mac(a3, x[0], w[5]);
            a2 = mac(a2, x[2], w[6]);
            a3 = mac(a3, x[2], w[7]);
            a0 = mac(a0, x[1], w[8]);
            a1 = mac(a1, x[1], w[9]);
            a0 = mac(a0, x[3], w[10]);
            a1 = mac(a1, x[3], w[11]);
            a2 = mac(a2, x[1], w[12]);
            a3 = mac(a3, x[1], w[13]);
            a2 = mac(a2, x[3], w[14]);
            a3 = mac(a3, x[3], w[15]);
            w += 16;
        }
        for (j = 4 * groups; j < dim_vec; ++j) {
            a0 = mac(a0, pV[j], w[0]);
            a1 = mac(a1, pV[j], w[1]);
            a2 = mac(a2, pV[j], w[2]);
            a3 = mac(a3, pV[j], w[3]);
            w += 4;
        }
        pOut[4 * b] = kwscc_legacy_sat8(a0, out_shift);
        pOut[4 * b + 1] = kwscc_legacy_sat8(a1, out_shift);
        pOut[4 * b + 2] = kwscc_legacy_sat8(a2, out_shift);
        pOut[4 * b + 3] = kwscc_legacy_sat8(a3, out_shift);
    }
    for (r = 4 * blocks; r < num_of_rows; ++r) {
        uint32_t acc = kwscc_legacy_start(bias, r, bias_shift, out_shift);
        for (j = 0; j < dim_vec; ++j) {
            acc = mac(acc, pV[j], w[j]);
        }
        w += dim_vec;
        pOut[r] = kwscc_legacy_sat8(acc, out_shift);
    }
    return ARM_MATH_SUCCESS;
}
