/* kws_lstm (--streaming: KWS_LSTM_CLIP_FRAMES / KWS_LSTM_STREAM_FRAMES calls per clip, its state reset between
 * clips) and gru in ONE caller-provided arena, the GRU run between the LSTM's calls of a clip (the arena need not
 * be kept between streaming calls); gru_run (its static arena) must agree.
 * Usage: recurrent lstm_calls.f32 gru.f32 lstm.i8 gru.i8 */
#include <stdio.h>
#include <string.h>

#include "gru.h"
#include "kws_lstm.h"

#define CALLS (KWS_LSTM_CLIP_FRAMES / KWS_LSTM_STREAM_FRAMES)
#define SHARED_ARENA_SIZE (KWS_LSTM_ARENA_SIZE > GRU_ARENA_SIZE ? KWS_LSTM_ARENA_SIZE : GRU_ARENA_SIZE)

static int32_t shared_arena[(SHARED_ARENA_SIZE + 3) / 4] __attribute__((aligned(16)));

int main(int argc, char **argv)
{
    static float xl[KWS_LSTM_INPUT_SIZE], xg[GRU_INPUT_SIZE];
    static int8_t ql[KWS_LSTM_QUANTIZED_INPUT_SIZE], qg[GRU_QUANTIZED_INPUT_SIZE];
    int8_t yl[KWS_LSTM_OUTPUT_SIZE], yg[GRU_OUTPUT_SIZE], yg_static[GRU_OUTPUT_SIZE];
    FILE *inl, *ing, *outl, *outg;
    int clips = 0, call;

    if (argc != 5 || !(inl = fopen(argv[1], "rb")) || !(ing = fopen(argv[2], "rb")) ||
        !(outl = fopen(argv[3], "wb")) || !(outg = fopen(argv[4], "wb"))) {
        fprintf(stderr, "usage: recurrent lstm_calls.f32 gru.f32 lstm.i8 gru.i8\n");
        return 2;
    }
    while (fread(xg, sizeof xg, 1, ing) == 1) {
        gru_quantize_input(xg, qg);
        kws_lstm_reset_state();
        for (call = 0; call < CALLS; ++call) {
            if (fread(xl, sizeof xl, 1, inl) != 1) {
                return 2;
            }
            kws_lstm_quantize_input(xl, ql);
            if (kws_lstm_run_with_arena(ql, yl, shared_arena) != 0) {
                return 3;
            }
            fwrite(yl, 1, sizeof yl, outl);
            if (call == 0 && gru_run_with_arena(qg, yg, shared_arena) != 0) { /* overwrites the arena */
                return 3;
            }
        }
        if (gru_run(qg, yg_static) != 0 || memcmp(yg, yg_static, sizeof yg) != 0) {
            fprintf(stderr, "gru: static and caller arena differ on clip %d\n", clips);
            return 4;
        }
        fwrite(yg, 1, sizeof yg, outg);
        ++clips;
    }
    fclose(inl);
    fclose(ing);
    fclose(outl);
    fclose(outg);
    printf("%d clips\n", clips);
    return 0;
}
