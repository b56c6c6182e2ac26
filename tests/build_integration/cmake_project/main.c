/* Runs ds_cnn_s and dnn_s in turn on every sample, both in ONE caller-provided arena, and checks that
 * ds_cnn_s_run (its static arena) gives the same output. Usage: two_models a.f32 b.f32 a.i8 b.i8 */
#include <stdio.h>
#include <string.h>

#include "dnn_s.h"
#include "ds_cnn_s.h"

#define SHARED_ARENA_SIZE (DS_CNN_S_ARENA_SIZE > DNN_S_ARENA_SIZE ? DS_CNN_S_ARENA_SIZE : DNN_S_ARENA_SIZE)

static int32_t shared_arena[(SHARED_ARENA_SIZE + 3) / 4] __attribute__((aligned(16)));

static int read_sample(FILE *f, float *x, int n)
{
    return fread(x, sizeof(float), (size_t)n, f) == (size_t)n;
}

int main(int argc, char **argv)
{
    static float xa[DS_CNN_S_INPUT_SIZE], xb[DNN_S_INPUT_SIZE];
    static int8_t qa[DS_CNN_S_QUANTIZED_INPUT_SIZE], qb[DNN_S_QUANTIZED_INPUT_SIZE];
    int8_t ya[DS_CNN_S_OUTPUT_SIZE], yb[DNN_S_OUTPUT_SIZE], ya_static[DS_CNN_S_OUTPUT_SIZE];
    FILE *ina, *inb, *outa, *outb;
    int samples = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: %s a.f32 b.f32 a.i8 b.i8\n", argv[0]);
        return 2;
    }
    ina = fopen(argv[1], "rb");
    inb = fopen(argv[2], "rb");
    outa = fopen(argv[3], "wb");
    outb = fopen(argv[4], "wb");
    if (!ina || !inb || !outa || !outb) {
        fprintf(stderr, "cannot open the files\n");
        return 2;
    }
    while (read_sample(ina, xa, DS_CNN_S_INPUT_SIZE) && read_sample(inb, xb, DNN_S_INPUT_SIZE)) {
        ds_cnn_s_quantize_input(xa, qa);
        dnn_s_quantize_input(xb, qb);
        if (ds_cnn_s_run_with_arena(qa, ya, shared_arena) != 0 || dnn_s_run_with_arena(qb, yb, shared_arena) != 0 ||
            ds_cnn_s_run(qa, ya_static) != 0) {
            fprintf(stderr, "a model failed on sample %d\n", samples);
            return 3;
        }
        if (memcmp(ya, ya_static, sizeof ya) != 0) {
            fprintf(stderr, "static and caller arena differ on sample %d\n", samples);
            return 4;
        }
        fwrite(ya, 1, sizeof ya, outa);
        fwrite(yb, 1, sizeof yb, outb);
        ++samples;
    }
    fclose(ina);
    fclose(inb);
    fclose(outa);
    fclose(outb);
    printf("%d samples\n", samples);
    return 0;
}
