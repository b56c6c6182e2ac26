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
 * The sigmoid/tanh are arm_nn_activation_s16 (arm_nn_activation_s16.c).
 */
#include "arm_nnfunctions.h"
#include "arm_nnsupportfunctions.h"

#include <stddef.h>

#define KW_Q15_MIN (-32768)
#define KW_Q15_MAX 32767

static int16_t kw_sat16(int32_t v)
{
    return (int16_t)(v < KW_Q15_MIN ? KW_Q15_MIN : (v > KW_Q15_MAX ? KW_Q15_MAX : v));
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
    arm_nn_activation_s16(out, out, p->hidden_size, 0, gate->activation_type);
}

/* One step of batch 1 (batch_offset unused); h_out may be h_in (it is written after every gate read h_in). */
arm_cmsis_nn_status arm_nn_lstm_step_s8(const int8_t *x, const int8_t *h_in, int8_t *h_out,
                                        const cmsis_nn_lstm_params *p, cmsis_nn_lstm_context *buffers,
                                        const int32_t batch_offset)
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
    arm_nn_activation_s16(cell, gate_b, size, p->cell_scale_power + 12, ARM_TANH);
    for (j = 0; j < size; j++)
    {
        int32_t v = arm_nn_requantize(gate_a[j] * gate_b[j], p->output_multiplier, p->output_shift);
        v += p->output_offset;
        h_out[j] = (int8_t)(v < NN_Q7_MIN ? NN_Q7_MIN : (v > NN_Q7_MAX ? NN_Q7_MAX : v));
    }
    (void)batch_offset;
    return ARM_CMSIS_NN_SUCCESS;
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
        (void)arm_nn_lstm_step_s8(input + t * params->input_size, h_in, h_out, params, buffers, 1);
        h_in = h_out;
    }
    return ARM_CMSIS_NN_SUCCESS;
}
