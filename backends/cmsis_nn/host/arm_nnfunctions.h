/*
 * kwscc host implementation of CMSIS-NN v7 public function declarations (arm_nnfunctions.h);
 * same arithmetic as the library's pure-C path; written for kwscc, not derived from CMSIS source.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Only the s8 entry points that kwscc-generated code calls are declared here.
 * The signatures are those of CMSIS-NN v7.0.0, so generated code compiles
 * unchanged against the real library (-I CMSIS-NN/Include).
 *
 * The get_buffer_size functions answer what the pure-C (non-DSP, non-MVE)
 * build of CMSIS-NN v7.0.0 answers.
 */
#ifndef ARM_NNFUNCTIONS_H
#define ARM_NNFUNCTIONS_H

#include <stdint.h>

#include "arm_nn_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ conv */

/**
 * s8 convolution (HWC input, OHWI filter, per-channel requantization).
 * filter_dims->c < input_dims->c means a grouped convolution.
 * Returns ARM_CMSIS_NN_ARG_ERROR, without touching the output, when the layer
 * needs the im2col kernels (anything but an ungrouped 1x1 pad-0 conv) and
 * ctx->buf is NULL, as v7.0.0 does.
 */
arm_cmsis_nn_status arm_convolve_wrapper_s8(const cmsis_nn_context *ctx,
                                            const cmsis_nn_conv_params *conv_params,
                                            const cmsis_nn_per_channel_quant_params *quant_params,
                                            const cmsis_nn_dims *input_dims,
                                            const int8_t *input_data,
                                            const cmsis_nn_dims *filter_dims,
                                            const int8_t *filter_data,
                                            const cmsis_nn_dims *bias_dims,
                                            const int32_t *bias_data,
                                            const cmsis_nn_dims *output_dims,
                                            int8_t *output_data);

/** Scratch bytes arm_convolve_wrapper_s8 needs (pure-C v7.0.0 answer). */
int32_t arm_convolve_wrapper_s8_get_buffer_size(const cmsis_nn_conv_params *conv_params,
                                                const cmsis_nn_dims *input_dims,
                                                const cmsis_nn_dims *filter_dims,
                                                const cmsis_nn_dims *output_dims);

/* ------------------------------------------------------------- depthwise */

/** s8 depthwise convolution; filter {1, KH, KW, Cin * ch_mult}. */
arm_cmsis_nn_status arm_depthwise_conv_wrapper_s8(const cmsis_nn_context *ctx,
                                                  const cmsis_nn_dw_conv_params *dw_conv_params,
                                                  const cmsis_nn_per_channel_quant_params *quant_params,
                                                  const cmsis_nn_dims *input_dims,
                                                  const int8_t *input_data,
                                                  const cmsis_nn_dims *filter_dims,
                                                  const int8_t *filter_data,
                                                  const cmsis_nn_dims *bias_dims,
                                                  const int32_t *bias_data,
                                                  const cmsis_nn_dims *output_dims,
                                                  int8_t *output_data);

/** Scratch bytes arm_depthwise_conv_wrapper_s8 needs (pure-C v7.0.0 answer: 0). */
int32_t arm_depthwise_conv_wrapper_s8_get_buffer_size(const cmsis_nn_dw_conv_params *dw_conv_params,
                                                      const cmsis_nn_dims *input_dims,
                                                      const cmsis_nn_dims *filter_dims,
                                                      const cmsis_nn_dims *output_dims);

/* ------------------------------------------------------- fully connected */

/**
 * s8 fully connected layer, per-tensor requantization.
 * filter_dims->n = accumulation depth, output_dims->c = outputs,
 * input_dims->n = batches; weights are [out][in] row-major.
 */
arm_cmsis_nn_status arm_fully_connected_s8(const cmsis_nn_context *ctx,
                                           const cmsis_nn_fc_params *fc_params,
                                           const cmsis_nn_per_tensor_quant_params *quant_params,
                                           const cmsis_nn_dims *input_dims,
                                           const int8_t *input_data,
                                           const cmsis_nn_dims *filter_dims,
                                           const int8_t *filter_data,
                                           const cmsis_nn_dims *bias_dims,
                                           const int32_t *bias_data,
                                           const cmsis_nn_dims *output_dims,
                                           int8_t *output_data);

/** Scratch bytes arm_fully_connected_s8 needs (pure-C v7.0.0 answer: 0). */
int32_t arm_fully_connected_s8_get_buffer_size(const cmsis_nn_dims *filter_dims);

/* --------------------------------------------------------------- pooling */

/** s8 max pooling; filter_dims carries the window {., KH, KW, .}. */
arm_cmsis_nn_status arm_max_pool_s8(const cmsis_nn_context *ctx,
                                    const cmsis_nn_pool_params *pool_params,
                                    const cmsis_nn_dims *input_dims,
                                    const int8_t *input_data,
                                    const cmsis_nn_dims *filter_dims,
                                    const cmsis_nn_dims *output_dims,
                                    int8_t *output_data);

/** s8 average pooling (padding excluded from the count, round half away from zero). */
arm_cmsis_nn_status arm_avgpool_s8(const cmsis_nn_context *ctx,
                                   const cmsis_nn_pool_params *pool_params,
                                   const cmsis_nn_dims *input_dims,
                                   const int8_t *input_data,
                                   const cmsis_nn_dims *filter_dims,
                                   const cmsis_nn_dims *output_dims,
                                   int8_t *output_data);

/** Scratch bytes arm_avgpool_s8 needs (pure-C v7.0.0 answer: 0). */
int32_t arm_avgpool_s8_get_buffer_size(const int dim_dst_width, const int ch_src);

/* --------------------------------------------------------------- softmax */

/**
 * s8 softmax over num_rows rows of row_size elements (TFLM integer softmax).
 * mult/shift/diff_min come from TFLM PreprocessSoftmaxScaling (5 integer bits);
 * the output has scale 1/256 and zero point -128.
 */
void arm_softmax_s8(const int8_t *input,
                    const int32_t num_rows,
                    const int32_t row_size,
                    const int32_t mult,
                    const int32_t shift,
                    const int32_t diff_min,
                    int8_t *output);

/* ----------------------------------------------------------- elementwise */

/**
 * s8 elementwise add of block_size elements: each input (x + offset) << left_shift,
 * requantized by its (mult, shift); the sum requantized by (out_mult, out_shift),
 * plus out_offset, clamped to the activation range.
 */
arm_cmsis_nn_status arm_elementwise_add_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_1_mult,
                                           const int32_t input_1_shift,
                                           const int32_t input_2_offset,
                                           const int32_t input_2_mult,
                                           const int32_t input_2_shift,
                                           const int32_t left_shift,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size);

/**
 * s8 elementwise multiply of block_size elements: (x1 + offset_1) * (x2 + offset_2)
 * requantized by (out_mult, out_shift), plus out_offset, clamped.
 */
arm_cmsis_nn_status arm_elementwise_mul_s8(const int8_t *input_1_vect,
                                           const int8_t *input_2_vect,
                                           const int32_t input_1_offset,
                                           const int32_t input_2_offset,
                                           int8_t *output,
                                           const int32_t out_offset,
                                           const int32_t out_mult,
                                           const int32_t out_shift,
                                           const int32_t out_activation_min,
                                           const int32_t out_activation_max,
                                           const int32_t block_size);

/* --------------------------------------------------------------- LSTM */

/**
 * sigmoid or tanh of size int16 values read as Q3.12 after a shift by left_shift; output Q0.15.
 */
arm_cmsis_nn_status arm_nn_activation_s16(const int16_t *input,
                                          int16_t *output,
                                          const int32_t size,
                                          const int32_t left_shift,
                                          const arm_nn_activation_type type);

/**
 * s8 LSTM over time_steps steps (int16 gates and cell state), from a zero state.
 * output holds the hidden state of every step.
 */
arm_cmsis_nn_status arm_lstm_unidirectional_s8(const int8_t *input,
                                               int8_t *output,
                                               const cmsis_nn_lstm_params *params,
                                               cmsis_nn_lstm_context *buffers);

#ifdef __cplusplus
}
#endif

#endif /* ARM_NNFUNCTIONS_H */
