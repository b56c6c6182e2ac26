/* Runs dnn_s on every sample of a float file. Usage: dnn_s_demo in.f32 out.i8 */
#include <stdio.h>

#include "dnn_s.h"

int main(int argc, char **argv)
{
    static float x[DNN_S_INPUT_SIZE];
    static int8_t q[DNN_S_QUANTIZED_INPUT_SIZE];
    int8_t y[DNN_S_OUTPUT_SIZE];
    FILE *in, *out;

    if (argc != 3 || !(in = fopen(argv[1], "rb")) || !(out = fopen(argv[2], "wb"))) {
        fprintf(stderr, "usage: dnn_s_demo in.f32 out.i8\n");
        return 2;
    }
    while (fread(x, sizeof x, 1, in) == 1) {
        dnn_s_quantize_input(x, q);
        if (dnn_s_run(q, y) != 0) {
            return 3;
        }
        fwrite(y, 1, sizeof y, out);
    }
    fclose(in);
    fclose(out);
    return 0;
}
