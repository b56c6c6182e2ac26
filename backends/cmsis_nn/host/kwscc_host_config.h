/*
 * Build configuration of kwscc's host CMSIS-NN kernels. kwscc rewrites this file in OUT/cmsis_nn_host
 * to define CMSIS_NN_USE_SINGLE_ROUNDING when a model was compiled with --rounding single, so the
 * host program computes what the simulator computed without extra compiler flags.
 */
#ifndef KWSCC_HOST_CONFIG_H
#define KWSCC_HOST_CONFIG_H
#endif
