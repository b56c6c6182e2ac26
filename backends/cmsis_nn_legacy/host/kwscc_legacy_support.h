/*
 * Helpers shared by kwscc's host implementation of the CMSIS_5 q7 functions.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The accumulator is kept as uint32_t so that it wraps modulo 2^32 like the library's int32 sum on
 * gcc, without signed overflow (undefined behaviour) and without shifting negative values.
 */
#ifndef KWSCC_LEGACY_SUPPORT_H
#define KWSCC_LEGACY_SUPPORT_H

#include <stdint.h>

#include "arm_nnfunctions.h"

/* The int32 value of a uint32 bit pattern (two's complement), without implementation-defined casts. */
static inline int32_t kwscc_legacy_to_int32(uint32_t u)
{
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* (bias << bias_shift) + NN_ROUND(out_shift) as the accumulator's starting bit pattern. */
static inline uint32_t kwscc_legacy_start(const q7_t *bias, int32_t index, uint16_t bias_shift, uint16_t out_shift)
{
    const uint32_t b = bias != 0 ? (uint32_t)(int32_t)bias[index] : 0u;
    return (b << bias_shift) + ((1u << out_shift) >> 1);
}

/* floor(acc / 2^out_shift) saturated to q7 (an arithmetic right shift, written portably). */
static inline q7_t kwscc_legacy_sat8(uint32_t acc, uint16_t out_shift)
{
    const int32_t s = kwscc_legacy_to_int32(acc);
    const int32_t q = s >= 0 ? (s >> out_shift) : ~((~s) >> out_shift);
    return (q7_t)(q > 127 ? 127 : (q < -128 ? -128 : q));
}

#endif /* KWSCC_LEGACY_SUPPORT_H */
