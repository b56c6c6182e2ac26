"""Instructions per inference and per MAC of the shipped KWS models on emulated Cortex-M cores.

    python benchmarks/instructions.py [--targets cortex-m4,cortex-m55] [--models dnn_s,cnn_s,ds_cnn_s,ds_cnn_m]
                                      [--samples 5] [--cmsis-nn DIR] [--optimize balanced] [--json FILE]

Each model runs twice per core: with every layer on CMSIS-NN's call (kernels "cmsis-nn") and with the kernels
kwscc's cost table picks per layer (kernels "auto": kwscc's own kernels where they are cheaper). For DS_CNN_S
on a Cortex-M4 the published MLPerf Tiny v1.0 figures are printed beside them: 21.8 M cycles for TFLite Micro +
CMSIS-NN and 5.2 M for ST's X-CUBE-AI at 120 MHz (cycles, which are not instructions: a load or a taken
branch takes more than one cycle on a Cortex-M4).

Each model is compiled for the core (--cpu = target), built with arm-none-eabi-gcc -O2 and run under
qemu-system-arm; kwscc's TCG plugin counts every executed instruction (exactly; instructions, not cycles).
Without --cmsis-nn the kernels are kwscc's own pure-C CMSIS-NN implementation, so the numbers measure that
implementation, not Arm's DSP/MVE-optimised library; pass a CMSIS-NN v4-v7 checkout to measure the library.
Every run is also checked bit for bit against kwscc's simulator.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kwscc.driver import CompileOptions, compile_model  # noqa: E402
from kwscc.quant.simulate import simulate_float_inputs  # noqa: E402
from kwscc.validate.target import run_on_target  # noqa: E402

MODELS = ("dnn_s", "cnn_s", "ds_cnn_s", "ds_cnn_m")
MLPERF_M4_CYCLES = {"ds_cnn_s": (("TFLM + CMSIS-NN", 21.8e6), ("X-CUBE-AI", 5.2e6))}  # MLPerf Tiny v1.0, 120 MHz
FEATURES = {"dnn_s": "x250", "cnn_s": "x490", "ds_cnn_s": "x490", "ds_cnn_m": "x490"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--targets", default="cortex-m4,cortex-m55")
    p.add_argument("--models-dir", default=str(ROOT / "examples" / "kws"),
                   help="folder with MODEL.onnx and kws_synth.npz (default examples/kws)")
    p.add_argument("--samples", type=int, default=5, help="test samples per run (instructions are averaged)")
    p.add_argument("--rounding", default="default", choices=("default", "single"))
    p.add_argument("--cmsis-nn", metavar="DIR", help="build against this CMSIS-NN checkout")
    p.add_argument("--optimize", default="balanced", choices=("balanced", "speed", "ram", "accuracy"))
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    models_dir = Path(args.models_dir)
    npz = np.load(models_dir / "kws_synth.npz")
    rows = []
    print(f"{'model':10s} {'target':11s} {'kernels':9s} {'MACs':>10s} {'instructions':>13s} {'instr/MAC':>9s} "
          f"{'flash':>8s} {'weights':>8s} {'RAM':>7s} {'arena':>7s} {'stack':>6s} {'exact':>6s} {'time':>6s}")
    for model, target, kernels in ((m, t, k) for m in args.models.split(",") for t in args.targets.split(",")
                                   for k in ("cmsis-nn", "auto")):
        start = time.time()
        options = CompileOptions(calib=f"{models_dir / 'kws_synth.npz'}:calib_{FEATURES[model]}", cpu=target,
                                 rounding=args.rounding, kernels=kernels, optimize=args.optimize)
        compiled = compile_model(models_dir / f"{model}.onnx", options)
        x = npz[f"test_{FEATURES[model]}"][:args.samples]
        x = x.reshape(len(x), -1).astype(np.float32)
        out, m = run_on_target(compiled, x, target, args.cmsis_nn)
        name = compiled.graph.inputs[0]
        feeds = {name: x.reshape((len(x),) + compiled.graph.tensors[name].shape[1:])}
        sim = simulate_float_inputs(compiled.qm, feeds, compiled.backend.simulate)[compiled.graph.outputs[0]]
        exact = bool(np.array_equal(out, sim.reshape(out.shape)))
        row = {"model": model, "target": target, "kernels": kernels, "optimize": args.optimize,
               "macs": m["macs_per_inference"],
               "instructions_per_inference": m["instructions_per_inference"],
               "instructions_per_mac": m["instructions_per_mac"], "flash_bytes": m["flash_bytes"]["model_total"],
               "weights_bytes": m["flash_bytes"]["weights"], "ram_bytes": m["ram_bytes"]["model_total"],
               "arena_bytes": m["ram_bytes"]["arena"], "stack_bytes": m["stack_bytes"],
               "bit_exact": exact, "library": m["kernels"], "samples": len(x),
               "instructions_per_layer": m["instructions_per_layer"]}
        rows.append(row)
        print(f"{model:10s} {target:11s} {kernels:9s} {row['macs']:>10,d} {row['instructions_per_inference']:>13,d} "
              f"{row['instructions_per_mac']:>9.2f} {row['flash_bytes']:>8,d} {row['weights_bytes']:>8,d} "
              f"{row['ram_bytes']:>7,d} {row['arena_bytes']:>7,d} {row['stack_bytes']:>6,d} "
              f"{'yes' if exact else 'NO':>6s} {time.time() - start:>5.1f}s", flush=True)
        if kernels == "auto" and target == "cortex-m4" and model in MLPERF_M4_CYCLES:
            for who, cycles in MLPERF_M4_CYCLES[model]:
                print(f"{'':10s} {'':11s} MLPerf Tiny v1.0 {who}: {cycles / 1e6:.1f} M cycles "
                      f"({cycles / row['macs']:.2f} per MAC)")
    print(f"\nlibrary: {rows[0]['library'] if rows else '-'}; instructions counted exactly under QEMU (not cycles), "
          f"mean over {args.samples} samples; flash = model code + weights + kernels, RAM = arena + other static data")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
