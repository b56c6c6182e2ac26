#!/usr/bin/env bash
# Compile, validate and run the DS-CNN keyword spotter shipped in examples/kws.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/bootstrap.sh"
kwscc="$root/.venv/bin/kwscc"
ex="$root/examples/kws"
out="$root/out/ds_cnn_s"

"$kwscc" "$ex/ds_cnn_s.onnx" --calib "$ex/kws_synth.npz:calib_x490" -o "$out" --with-host-kernels
"$kwscc" validate "$ex/ds_cnn_s.onnx" --calib "$ex/kws_synth.npz:calib_x490" \
    --data "$ex/kws_synth.npz:test_x490" --labels test_y --label-names "$ex/labels.txt" --json "$out/validate.json"
cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -I"$out" -I"$out/cmsis_nn_host" -I"$ex" \
    "$out"/*.c "$out"/cmsis_nn_host/*.c "$ex/main.c" -o "$out/kws_demo"
"$out/kws_demo"
