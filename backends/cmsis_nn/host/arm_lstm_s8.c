/*
 * kwscc host implementation of CMSIS-NN v7 arm_lstm_unidirectional_s8;
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * One step t, per gate g (forget, input, cell, output), all int16:
 *   z_g = sat16(requantize(bias_g + x_t . W_g, M_x, S_x)) then, from t = 1 on,
 *   z_g = sat16(z_g + requantize(h_{t-1} . R_g, M_h, S_h)); g = sigmoid or tanh of z_g read as Q3.12, in Q0.15;
 *   c = sat16(requantize(f * c, forget_to_cell)); c = clamp(c + requantize(i * g), +-cell_clip);
 *   h_t = sat8(requantize(o * tanh(c read with shift cell_scale_power + 12), output) + output_offset).
 * The sigmoid/tanh use the library's method: its 256-entry table of sigmoid(i / 24) in 0.16,
 * linearly interpolated, with tanh(x) = 2 sigmoid(2x) - 1.
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

#define KW_Q15_MIN (-32768)
#define KW_Q15_MAX 32767

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

static int16_t kw_sat16(int32_t v)
{
    return (int16_t)(v < KW_Q15_MIN ? KW_Q15_MIN : (v > KW_Q15_MAX ? KW_Q15_MAX : v));
}

/* sigmoid or tanh of int16 values read as Q3.12 after a shift by left_shift; result in Q0.15 */
static void kw_activation_s16(const int16_t *in, int16_t *out, int32_t size, int32_t left_shift,
                              arm_nn_activation_type type)
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
}

/* dst[j] = sat16(dst[j] + requantize(bias[j] + lhs . rhs row j)) */
static void kw_mat_mul_acc_s8_s16(const int8_t *lhs, const int8_t *rhs, const int32_t *bias, int16_t *dst,
                                  int32_t multiplier, int32_t shift, int32_t cols, int32_t rows)
{
    int32_t j, k;
    for (j = 0; j < rows; j++)
    {
        int32_t acc = bias[j];
        for (k = 0; k < cols; k++)
        {
            acc += (int32_t)lhs[k] * (int32_t)rhs[j * cols + k];
        }
        dst[j] = kw_sat16(arm_nn_requantize(acc, multiplier, shift) + dst[j]);
    }
}

static void kw_gate(const int8_t *x, const int8_t *h, const cmsis_nn_lstm_gate *gate,
                    const cmsis_nn_lstm_params *p, int16_t *out)
{
    int32_t j;
    for (j = 0; j < p->hidden_size; j++)
    {
        out[j] = 0;
    }
    kw_mat_mul_acc_s8_s16(x, (const int8_t *)gate->input_weights, (const int32_t *)gate->input_effective_bias, out,
                          gate->input_multiplier, gate->input_shift, p->input_size, p->hidden_size);
    if (h != NULL)
    {
        kw_mat_mul_acc_s8_s16(h, (const int8_t *)gate->hidden_weights, (const int32_t *)gate->hidden_effective_bias,
                              out, gate->hidden_multiplier, gate->hidden_shift, p->hidden_size, p->hidden_size);
    }
    kw_activation_s16(out, out, p->hidden_size, 0, gate->activation_type);
}

static void kw_lstm_step(const int8_t *x, const int8_t *h_in, int8_t *h_out, const cmsis_nn_lstm_params *p,
                         cmsis_nn_lstm_context *buffers)
{
    int16_t *gate_a = (int16_t *)buffers->temp1;
    int16_t *gate_b = (int16_t *)buffers->temp2;
    int16_t *cell = (int16_t *)buffers->cell_state;
    const int32_t size = p->hidden_size;
    int32_t j;

    kw_gate(x, h_in, &p->forget_gate, p, gate_a);
    for (j = 0; j < size; j++)
    {
        const int32_t v = arm_nn_requantize(gate_a[j] * cell[j], p->forget_to_cell_multiplier,
                                            p->forget_to_cell_shift);
        cell[j] = kw_sat16(v);
    }
    kw_gate(x, h_in, &p->input_gate, p, gate_a);
    kw_gate(x, h_in, &p->cell_gate, p, gate_b);
    for (j = 0; j < size; j++)
    {
        int32_t v = arm_nn_requantize(gate_a[j] * gate_b[j], p->input_to_cell_multiplier, p->input_to_cell_shift);
        v += cell[j];
        v = v < -p->cell_clip ? -p->cell_clip : (v > p->cell_clip ? p->cell_clip : v);
        cell[j] = (int16_t)v;
    }
    kw_gate(x, h_in, &p->output_gate, p, gate_a);
    kw_activation_s16(cell, gate_b, size, p->cell_scale_power + 12, ARM_TANH);
    for (j = 0; j < size; j++)
    {
        int32_t v = arm_nn_requantize(gate_a[j] * gate_b[j], p->output_multiplier, p->output_shift);
        v += p->output_offset;
        h_out[j] = (int8_t)(v < NN_Q7_MIN ? NN_Q7_MIN : (v > NN_Q7_MAX ? NN_Q7_MAX : v));
    }
}

arm_cmsis_nn_status arm_lstm_unidirectional_s8(const int8_t *input,
                                               int8_t *output,
                                               const cmsis_nn_lstm_params *params,
                                               cmsis_nn_lstm_context *buffers)
{
    const int8_t *h_in = NULL;
    int16_t *cell = (int16_t *)buffers->cell_state;
    int32_t t, j;
    if (params->batch_size != 1)
    {
        return ARM_CMSIS_NN_ARG_ERROR; /* kwscc compiles batch 1 only */
    }
    for (j = 0; j < params->hidden_size; j++)
    {
        cell[j] = 0;
    }
    for (t = 0; t < params->time_steps; t++)
    {
        int8_t *h_out = output + t * params->hidden_size;
        kw_lstm_step(input + t * params->input_size, h_in, h_out, params, buffers);
        h_in = h_out;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
