/*
 * Bare-metal keyword spotting: for each shipped clip, quantize its MFCC features, run the DS-CNN kwscc
 * compiled (its arena in the section the build chose), and print the keyword with the highest score.
 * Exits 0 when every clip is heard as the word said in it.
 */
#include <stdint.h>

#include "ds_cnn_s.h"
#include "samples.h"
#include "semihost.h"

static const char *const labels[DS_CNN_S_OUTPUT_SIZE] = {
    "_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"};

static int same(const char *a, const char *b)
{
    while (*a && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

int main(void)
{
    static int8_t features[DS_CNN_S_QUANTIZED_INPUT_SIZE];
    int8_t scores[DS_CNN_S_OUTPUT_SIZE];
    char digit[2] = {0, 0};
    int clip, i, correct = 0;

    for (clip = 0; clip < SAMPLE_COUNT; ++clip) {
        int best = 0;

        ds_cnn_s_quantize_input(samples[clip], features);
        if (ds_cnn_s_run(features, scores) != 0) {
            semihost_print("inference failed\n");
            return 1;
        }
        for (i = 1; i < DS_CNN_S_OUTPUT_SIZE; ++i) {
            if (scores[i] > scores[best]) {
                best = i;
            }
        }
        digit[0] = (char)('1' + clip);
        semihost_print("clip ");
        semihost_print(digit);
        semihost_print(": heard \"");
        semihost_print(labels[best]);
        semihost_print("\", said \"");
        semihost_print(sample_words[clip]);
        semihost_print("\"\n");
        correct += same(labels[best], sample_words[clip]);
    }
    return correct == SAMPLE_COUNT ? 0 : 1;
}
