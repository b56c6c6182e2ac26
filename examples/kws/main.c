/*
 * Firmware-style use of a kwscc-compiled keyword spotter: quantize the MFCC features, run the
 * network in its static arena, read the class scores. Builds unchanged for the host (with kwscc's
 * host kernels) and for a Cortex-M (with CMSIS-NN); printf is the only host-specific part.
 */
#include <stdint.h>
#include <stdio.h>

#include "ds_cnn_s.h"
#include "sample_yes.h"

static const char *const labels[DS_CNN_S_OUTPUT_SIZE] = {
    "_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"};

int main(void)
{
    int8_t features[DS_CNN_S_QUANTIZED_INPUT_SIZE];
    int8_t scores[DS_CNN_S_OUTPUT_SIZE];
    float probabilities[DS_CNN_S_OUTPUT_SIZE];
    int i, best = 0;

    ds_cnn_s_quantize_input(sample_yes, features);
    if (ds_cnn_s_run(features, scores) != 0) {
        printf("inference failed\n");
        return 1;
    }
    ds_cnn_s_dequantize_output(scores, probabilities);
    for (i = 1; i < DS_CNN_S_OUTPUT_SIZE; ++i) {
        if (scores[i] > scores[best]) {
            best = i;
        }
    }
    printf("arena %d bytes; heard \"%s\" (p = %.3f), expected \"%s\"\n", DS_CNN_S_ARENA_SIZE, labels[best],
           (double)probabilities[best], SAMPLE_LABEL);
    return 0;
}
