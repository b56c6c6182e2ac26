/*
 * kwscc host implementation of CMSIS-NN v7 arm_nn_activation_s16;
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * sigmoid or tanh of int16 values read as Q3.12 after a shift by left_shift, result in Q0.15: the
 * library's 256-entry table of sigmoid(i / 24) in 0.16, linearly interpolated, with
 * tanh(x) = 2 sigmoid(2x) - 1 (kwscc.quant.lstm.activation_s16 is its numpy twin).
 */
#include "arm_nnfunctions.h"

/* sigmoid(i / 24) in unsigned 0.16: CMSIS-NN v7.0.0's sigmoid_table_uint16 values (Apache-2.0), which
 * bit-exact results need (kwscc.quant.lstm.SIGMOID_TABLE holds the same numbers) */
static const uint16_t kw_sigmoid_table[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535
};

/* sigmoid or tanh of int16 values read as Q3.12 after a shift by left_shift; result in Q0.15 */
arm_cmsis_nn_status arm_nn_activation_s16(const int16_t *in, int16_t *out, const int32_t size,
                                          const int32_t left_shift, const arm_nn_activation_type type)
{
    const uint32_t frac_bits = type == ARM_SIGMOID ? 9u : 8u;
    const uint32_t saturated = type == ARM_SIGMOID ? (0x7FFFu << 10) : (0xFFFFu << 8);
    const int32_t multiplier = left_shift < 0 ? 3 : 3 << left_shift;
    const int32_t right_shift = left_shift < 0 ? -left_shift : 0;
    const int32_t half = right_shift > 0 ? 1 << (right_shift - 1) : 0;
    int32_t i;
    for (i = 0; i < size; i++)
    {
        const int32_t v = (in[i] * multiplier + half) >> right_shift;
        const uint32_t mag = (uint32_t)(v > 0 ? v : -v);
        const uint32_t index = mag >> frac_bits;
        uint32_t r = saturated;
        if (index < 255u)
        {
            const uint32_t a = kw_sigmoid_table[index];
            const uint32_t b = kw_sigmoid_table[index + 1u];
            r = (a << frac_bits) + (mag & ((1u << frac_bits) - 1u)) * (b - a);
        }
        if (type == ARM_SIGMOID)
        {
            r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
            r >>= 10;
        }
        else
        {
            r = v >= 0 ? r - (1u << 23) + (1u << 7) : (1u << 23) - r + (1u << 7) - 1u;
            r >>= 8;
        }
        out[i] = (int16_t)r;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
