/* Runs dense and dense_out (one model, two names) on every sample. Usage: both in.f32 dense.i8 dense_out.i8 */
#include <stdio.h>

#include "dense.h"
#include "dense_out.h"

int main(int argc, char **argv)
{
    static float x[DENSE_INPUT_SIZE];
    static int8_t q[DENSE_QUANTIZED_INPUT_SIZE], q_out[DENSE_OUT_QUANTIZED_INPUT_SIZE];
    int8_t y[DENSE_OUTPUT_SIZE], y_out[DENSE_OUT_OUTPUT_SIZE];
    FILE *in, *out, *out2;

    if (argc != 4 || !(in = fopen(argv[1], "rb")) || !(out = fopen(argv[2], "wb")) || !(out2 = fopen(argv[3], "wb"))) {
        fprintf(stderr, "usage: both in.f32 dense.i8 dense_out.i8\n");
        return 2;
    }
    while (fread(x, sizeof x, 1, in) == 1) {
        dense_quantize_input(x, q);
        dense_out_quantize_input(x, q_out);
        if (dense_run(q, y) != 0 || dense_out_run(q_out, y_out) != 0) {
            return 3;
        }
        fwrite(y, 1, sizeof y, out);
        fwrite(y_out, 1, sizeof y_out, out2);
    }
    fclose(in);
    fclose(out);
    fclose(out2);
    return 0;
}
