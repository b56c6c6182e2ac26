/* Portable C models of the ACLE SIMD intrinsics kwscc's own kernels use, so that the host build runs their
 * SIMD path (tests/backends/test_own_kernels.py compiles with -DKWSCC_SIMD_HEADER="acle_emulation.h"). */
#ifndef KWSCC_ACLE_EMULATION_H
#define KWSCC_ACLE_EMULATION_H

#include <stdint.h>

static inline int32_t emu_half(int32_t v, int top) /* signed 16-bit half of v */
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v >> (top ? 16 : 0));
}

static inline int32_t emu_pack(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}

static inline int32_t __sxtb16(int32_t v) /* bytes 0 and 2 sign-extended to halves */
{
    return emu_pack((int8_t)(uint8_t)(uint32_t)v, (int8_t)(uint8_t)((uint32_t)v >> 16));
}

static inline int32_t __sxtab16(int32_t a, int32_t v) /* a + bytes 0 and 2, per half, wrapping */
{
    const int32_t b = __sxtb16(v);
    return emu_pack(emu_half(a, 0) + emu_half(b, 0), emu_half(a, 1) + emu_half(b, 1));
}

static inline int32_t __smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((int64_t)acc + emu_half(a, 0) * emu_half(b, 0) + emu_half(a, 1) * emu_half(b, 1));
}

static inline int32_t __smlabb(int32_t a, int32_t b, int32_t acc)
{
    return acc + emu_half(a, 0) * emu_half(b, 0);
}

static inline int32_t __smlatt(int32_t a, int32_t b, int32_t acc)
{
    return acc + emu_half(a, 1) * emu_half(b, 1);
}

static inline int32_t __ssat(int32_t v, int bits) /* saturate to a signed `bits`-bit value */
{
    const int32_t max = (int32_t)((1u << (bits - 1)) - 1u);
    return v > max ? max : v < -max - 1 ? -max - 1 : v;
}

#endif
