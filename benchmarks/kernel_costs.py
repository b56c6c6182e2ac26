"""Measure the cost table kwscc's per-layer kernel choice reads (backends/cmsis_nn/kernel_costs.json).

    python benchmarks/kernel_costs.py --cmsis-nn DIR [--targets cortex-m4,cortex-m55] [--samples 1]
                                      [--models dnn_s,cnn_s,ds_cnn_s,ds_cnn_m] [--rows FILE] [--write]
    python benchmarks/kernel_costs.py --from-rows FILE [FILE ...] [--write]

Every shipped model is compiled for each core three times, with every layer on CMSIS-NN's call (--kernels
cmsis-nn), with every layer kwscc's own kernel applies to on that kernel (--kernels kwscc) and the same with the
wide kernels --optimize speed adds (--kernels kwscc --optimize speed), and run under QEMU with
the real library; kwscc's TCG plugin counts the instructions of each layer. Per core and kernel (for
CMSIS-NN: the function its wrapper dispatches to) a non-negative least-squares fit of the relative error
gives instructions = per_mac * MACs + per_output * outputs + per_call. --rows keeps the measured layers
(--from-rows fits them again without running anything); --write replaces the checked-in table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kwscc.backends.cmsis_nn import kernel_choice  # noqa: E402
from kwscc.backends.cmsis_nn.backend import CPU_BUILDS  # noqa: E402
from kwscc.driver import CompileOptions, compile_model  # noqa: E402
from kwscc.validate.target import run_on_target  # noqa: E402

MODELS = ("dnn_s", "cnn_s", "ds_cnn_s", "ds_cnn_m")
FEATURES = {"dnn_s": "x250", "cnn_s": "x490", "ds_cnn_s": "x490", "ds_cnn_m": "x490"}
CHOOSABLE = ("Conv", "Dense")  # the ops with more than one candidate kernel


RUNS = (("cmsis-nn", "balanced"), ("kwscc", "balanced"), ("kwscc", "speed"))  # (--kernels, --optimize)


def measure(model: str, target: str, kernels: str, optimize: str, samples: int, cmsis_nn: str) -> list[dict]:
    """(kernel, MACs, outputs, instructions) of every choosable layer of one model on one core."""
    npz_path = ROOT / "examples" / "kws" / "kws_synth.npz"
    options = CompileOptions(calib=f"{npz_path}:calib_{FEATURES[model]}", cpu=target, kernels=kernels,
                             optimize=optimize)
    compiled = compile_model(ROOT / "examples" / "kws" / f"{model}.onnx", options)
    x = np.load(npz_path)[f"test_{FEATURES[model]}"][:samples]
    _, m = run_on_target(compiled, x.reshape(len(x), -1).astype(np.float32), target, cmsis_nn)
    rows = []
    for call, layer in zip(compiled.calls, m["instructions_per_layer"]):
        if call.node.op not in CHOOSABLE:
            continue
        kernel = call.function
        if not kernel.startswith("kwscc_"):
            kernel = kernel_choice.cmsis_kernel(call, CPU_BUILDS[target])
        rows.append({"target": target, "kernel": kernel, "macs": int(call.macs),
                     "outputs": compiled.graph.tensors[call.node.outputs[0]].size,
                     "instructions": int(layer["instructions"]), "model": model, "layer": call.node.name})
    return rows


def fit(rows: list[dict]) -> dict:
    """Non-negative least squares over (MACs, outputs, 1) of the error relative to each layer's count (small
    layers count as much as large ones): drop the most negative term until none is."""
    b = np.array([r["instructions"] for r in rows], float)
    a = np.array([[r["macs"], r["outputs"], 1.0] for r in rows], float) / b[:, None]
    b = np.ones_like(b)
    active = [0, 1, 2]
    while True:
        coef = np.zeros(3)
        coef[active] = np.linalg.lstsq(a[:, active], b, rcond=None)[0]
        if (coef >= 0).all() or len(active) == 1:
            break
        active.remove(int(np.argmin(np.where(np.isin(np.arange(3), active), coef, np.inf))))
    coef = np.maximum(coef, 0)
    return {"per_mac": round(float(coef[0]), 4), "per_output": round(float(coef[1]), 3),
            "per_call": round(float(coef[2]), 1), "layers": len(rows)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cmsis-nn", metavar="DIR", help="CMSIS-NN checkout (v7.0.0 for the table)")
    p.add_argument("--rows", metavar="FILE", help="also write the measured layers as JSON")
    p.add_argument("--from-rows", metavar="FILE", nargs="+", help="fit layers measured before instead of measuring")
    p.add_argument("--targets", default="cortex-m4,cortex-m55")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--write", action="store_true", help=f"write {kernel_choice.COSTS_FILE.relative_to(ROOT)}")
    args = p.parse_args(argv)
    if args.from_rows:
        rows = [row for path in args.from_rows for row in json.loads(Path(path).read_text())]
    else:
        if not args.cmsis_nn:
            p.error("--cmsis-nn DIR is needed to measure")
        measured = [row for target in args.targets.split(",") for model in args.models.split(",")
                    for kernels, optimize in RUNS
                    for row in measure(model, target, kernels, optimize, args.samples, args.cmsis_nn)]
        # a layer on the same kernel in two runs (the depthwise and dense ones without a wide variant) counts once
        rows = list({(r["target"], r["model"], r["layer"], r["kernel"]): r for r in measured}.values())
        if args.rows:
            Path(args.rows).write_text(json.dumps(rows, indent=1) + "\n")
    table = {}
    for target in sorted({r["target"] for r in rows}):
        table[target] = {}
        for kernel in sorted({r["kernel"] for r in rows if r["target"] == target}):
            mine = [r for r in rows if r["kernel"] == kernel and r["target"] == target]
            table[target][kernel] = fit(mine)
            worst = max(abs(kernel_choice_estimate(table[target][kernel], r) - r["instructions"]) / r["instructions"]
                        for r in mine)
            print(f"{target:11s} {kernel:28s} {table[target][kernel]}  worst fit error {100 * worst:.1f} %", flush=True)
    if args.write:
        kernel_choice.COSTS_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return 0


def kernel_choice_estimate(cost: dict, row: dict) -> float:
    return cost["per_mac"] * row["macs"] + cost["per_output"] * row["outputs"] + cost["per_call"]


if __name__ == "__main__":
    sys.exit(main())
