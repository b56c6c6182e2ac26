"""The recurrent keyword spotters (examples/kws/recurrent, ../shared's) on emulated Cortex-M4 and M55, real CMSIS-NN.

    python benchmarks/recurrent.py --cmsis-nn ../shared/third_party/CMSIS-NN-v7.0.0 [--json FILE]
                                   [--models keras_lstm.onnx,...] [--targets cortex-m4,cortex-m55]

Per model and core, what `kwscc report MODEL --calib ...:calib_xN --cpu CORE` and `kwscc validate MODEL --calib
...:calib_xN --data ...:test50_xN --target CORE --cpu CORE --cmsis-nn DIR` give: the report's arena, flash (weights,
biases, quantization parameters and model code; the library not included) and MACs, and the instructions per
inference QEMU counted (exactly: instructions, not cycles; mean over the 50 clips) with every run checked bit for bit
against the simulator (`c_vs_simulator_mismatches`). The README's recurrent table is this output.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kwscc.driver import CompileOptions, compile_model  # noqa: E402
from kwscc.errors import KwsccError  # noqa: E402
from kwscc.report.report import build_report  # noqa: E402
from kwscc.validate.validate import validate  # noqa: E402

# the repository's recurrent examples, then the shared model set beside the checkout (models not copied here)
FOLDERS = (ROOT / "examples" / "kws" / "recurrent", ROOT.parent / "shared" / "models" / "kws" / "recurrent")
NPZ = ROOT / "examples" / "kws" / "kws_synth.npz"
# model file: the feature set it reads (int8 files carry their own ranges: no calibration)
MODELS = {"keras_lstm.onnx": "x490", "keras_lstm.tflite": "x490", "keras_lstm_int8.tflite": "x490",
          "basic_lstm_s_rnnop.onnx": "x490", "keras_gru.onnx": "x490", "gru_s_rnnop.onnx": "x250",
          "basic_lstm_s_unrolled.tflite": "x490", "gru_s_int8.tflite": "x250", "crnn_s_unrolled.tflite": "x490",
          "lstm_s.onnx": "x250", "keras_gru.tflite": "x490", "basic_lstm_s_int8.tflite": "x490",
          "lstm_s_int8.tflite": "x250", "crnn_s_int8.tflite": "x490", "keras_gru_int8.tflite": "x490",
          "basic_lstm_s.onnx": "x490", "basic_lstm_s.tflite": "x490", "lstm_s.tflite": "x250",
          "lstm_s_unrolled.tflite": "x250", "gru_s.onnx": "x250", "gru_s.tflite": "x250",
          "gru_s_unrolled.tflite": "x250", "crnn_s.onnx": "x490", "crnn_s.tflite": "x490",
          "keras_gru_unrolled.tflite": "x490"}


def model_path(model: str) -> Path:
    for folder in FOLDERS:
        if (folder / model).is_file():
            return folder / model
    raise SystemExit(f"{model}: in none of {', '.join(str(f) for f in FOLDERS)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cmsis-nn", metavar="DIR", required=True, help="CMSIS-NN checkout to build against")
    p.add_argument("--models", default=",".join(MODELS),
                   help="model files of examples/kws/recurrent (or ../shared/models/kws/recurrent)")
    p.add_argument("--targets", default="cortex-m4,cortex-m55")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = p.parse_args(argv)
    rows, failed = [], False
    print(f"{'model':26s} {'core':10s} {'MACs':>9s} {'arena':>7s} {'flash':>8s} {'instructions':>12s} "
          f"{'per MAC':>7s} {'mismatches':>10s}")
    for model in args.models.split(","):
        features = MODELS[model]
        calib = None if model.endswith("_int8.tflite") else f"{NPZ}:calib_{features}"
        for core in args.targets.split(","):
            try:
                compiled = compile_model(model_path(model), CompileOptions(calib=calib, cpu=core))
            except KwsccError as exc:  # a form kwscc does not compile (yet): say so, measure the others
                print(f"{model:26s} {core:10s} refused: {exc}", flush=True)
                failed = True
                continue
            report = build_report(compiled)
            result = validate(compiled, f"{NPZ}:test50_{features}", target=core, cmsis_nn_dir=args.cmsis_nn)
            row = {"model": model, "core": core, "macs": report["macs"], "arena_bytes": report["arena_bytes"],
                   "flash_bytes": report["flash_bytes"], "instructions": result["instructions_per_inference"],
                   "instructions_per_mac": result["instructions_per_mac"], "library": result["kernels"],
                   "mismatches": result["c_vs_simulator_mismatches"], "clips": result["samples"]}
            rows.append(row)
            print(f"{model:26s} {core:10s} {row['macs']:>9,d} {row['arena_bytes']:>7,d} {row['flash_bytes']:>8,d} "
                  f"{row['instructions']:>12,d} {row['instructions_per_mac']:>7.2f} {row['mismatches']:>10d}",
                  flush=True)
    print(f"\nlibrary: {rows[0]['library'] if rows else '-'}; instructions counted by QEMU, mean over the clips")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["mismatches"] == 0 for r in rows) and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
