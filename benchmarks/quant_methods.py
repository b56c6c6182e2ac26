"""Quantization quality of kwscc on the shared KWS models: every calibration method, per-tensor and
per-channel weights, with and without the data-driven steps, each input/logits step left out, the
seed's weights, and TensorFlow's own int8 quantization (the *_int8.tflite anchor) -- all measured in
one run on the same data.

    .venv/bin/python benchmarks/quant_methods.py [--models dnn_s,cnn_s,...] [--markdown FILE] [--json FILE]
                                                      [--anchors DIR] [--check-c]

Numbers are top-1 agreement with the float model (onnxruntime) on the 2000 test clips, computed with
kwscc's simulator, which is bit-exact with the emitted C (--check-c builds and runs the C of the
default configuration to show it: c_vs_simulator_mismatches must be 0). The anchor is measured here by
running each *_int8.tflite with LiteRT (ai-edge-litert) when it is installed and the files are found,
else it is the value recorded in int8_anchor.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kwscc.data import load_inputs  # noqa: E402
from kwscc.frontends import read_model  # noqa: E402
from kwscc.frontends import reference_runner  # noqa: E402
from kwscc.passes import run_pipeline  # noqa: E402
from kwscc.quant.calibrate import calibrate  # noqa: E402
from kwscc.quant.equalize import equalize  # noqa: E402
from kwscc.quant.refine import QuantOptions, quantize_calibrated, sample_values  # noqa: E402
from kwscc.quant.simulate import simulate_float_inputs  # noqa: E402

KWS = ROOT / "examples" / "kws"
NPZ = KWS / "kws_synth.npz"
FEATURES = {"dnn_s": "x250", "cnn_s": "x490", "ds_cnn_s": "x490", "ds_cnn_m": "x490"}
SHARED = ROOT.parent / "shared" / "models" / "kws"
METHODS = ("max", "percentile", "kl", "mse")


def configs() -> list[tuple[str, QuantOptions]]:
    out = []
    for method in METHODS:
        for pc in (True, False):
            gran = "per-channel" if pc else "per-tensor"
            out.append((f"{method} {gran} plain", QuantOptions.plain(method=method, per_channel=pc)))
            out.append((f"{method} {gran} +steps", QuantOptions(method=method, per_channel=pc)))
    out.append(("seed: max, weights per tensor 7-ceil(log2 max|w|)", QuantOptions.seed()))
    out.append(("default without the split input (input zero point instead)", QuantOptions(split_input=False)))
    out.append(("default without split input and input zero point (Qm.n input)",
                QuantOptions(split_input=False, input_zero_point=False)))
    out.append(("default without the softmax-driven logits format", QuantOptions(softmax_input=False)))
    out.append(("default + logits format search", QuantOptions(search=True)))
    out.append((EQUALIZED, QuantOptions()))
    return out


EQUALIZED = "default + power-of-two equalization"


def anchor(model: str, anchors: Path, test_x: np.ndarray, ref_top: np.ndarray) -> tuple[float, str]:
    path = anchors / f"{model}_int8.tflite"
    try:
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(path))
        interp.allocate_tensors()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        scale, zp = inp["quantization"]
        tops = []
        for row in test_x:
            q = np.clip(np.round(row / scale) + zp, -128, 127).astype(np.int8).reshape(inp["shape"])
            interp.set_tensor(inp["index"], q)
            interp.invoke()
            tops.append(int(np.argmax(interp.get_tensor(out["index"]))))
        return float(np.mean(np.array(tops) == ref_top)), "measured (LiteRT)"
    except Exception as exc:  # LiteRT missing or no anchor file: the recorded value
        recorded = json.loads((anchors / "int8_anchor.json").read_text())[model]["int8_vs_float_top1_agreement"]
        return float(recorded), f"recorded ({type(exc).__name__})"


def run_model(model: str, anchors: Path, check_c: bool) -> dict:
    path = KWS / f"{model}.onnx"
    graph = run_pipeline(read_model(path))
    f = FEATURES[model]
    calib = load_inputs(f"{NPZ}:calib_{f}", graph)
    test = load_inputs(f"{NPZ}:test_{f}", graph)
    out_name = graph.outputs[0]
    ref_top = reference_runner(path, [out_name])(test)[out_name].reshape(len(test[graph.inputs[0]]), -1).argmax(1)
    t0 = time.monotonic()
    summaries = calibrate(graph, calib, path)
    samples = sample_values(graph, calib, path, QuantOptions().samples)
    result = {"model": model, "calibration_s": time.monotonic() - t0, "configs": {}}
    for label, opts in configs():
        t = time.monotonic()
        if label == EQUALIZED:  # equalize a copy, then recalibrate it (kwscc's float execution)
            g2 = graph.copy()
            absmax = {n: np.abs(v).reshape(-1, v.shape[-1]).max(axis=0) for n, v in samples["float"].items()
                      if v.ndim == 4}
            equalize(g2, absmax)
            qm = quantize_calibrated(g2, calibrate(g2, calib, None), opts,
                                     samples=sample_values(g2, calib, None, opts.samples))
        else:
            qm = quantize_calibrated(graph, summaries, opts, samples=samples)
        top = simulate_float_inputs(qm, test)[out_name].reshape(len(ref_top), -1).argmax(1)
        result["configs"][label] = {"top1_agreement": float(np.mean(top == ref_top)),
                                    "seconds": time.monotonic() - t}
        print(f"{model:9s} {label:52s} {result['configs'][label]['top1_agreement']:.4f}", flush=True)
    # the ceiling of any int8 input: the float model with only its input rounded to the input format
    from kwscc.ir.execute import run_float
    from kwscc.quant.formats import Format, dequantize, frac_bits_for, quantize_input

    name = graph.inputs[0]
    fmt = Format(frac_bits_for(float(np.abs(calib[name]).max())))
    rounded = {name: dequantize(quantize_input(test[name], fmt), fmt)}
    chunks = [rounded[name][i:i + 500] for i in range(0, len(ref_top), 500)]
    top = np.concatenate([run_float(graph, {name: c})[out_name].reshape(len(c), -1) for c in chunks]).argmax(1)
    result["input_only"] = {"format": str(fmt), "top1_agreement": float(np.mean(top == ref_top))}
    print(f"{model:9s} {'float model, only the input in ' + str(fmt):52s} "
          f"{result['input_only']['top1_agreement']:.4f}", flush=True)
    result["anchor"], result["anchor_source"] = anchor(model, anchors, test[graph.inputs[0]].reshape(len(ref_top), -1),
                                                       ref_top)
    print(f"{model:9s} {'TFLite int8 anchor':52s} {result['anchor']:.4f} ({result['anchor_source']})", flush=True)
    if check_c:
        from kwscc.driver import CompileOptions, compile_model
        from kwscc.validate.validate import validate

        compiled = compile_model(path, CompileOptions(calib=f"{NPZ}:calib_{f}"))
        v = validate(compiled, f"{NPZ}:test_{f}", "test_y")
        result["c_check"] = {k: v[k] for k in ("c_vs_simulator_mismatches", "top1_agreement", "quantized_accuracy",
                                               "float_accuracy")}
        print(f"{model:9s} C check: {result['c_check']}", flush=True)
    return result


def markdown(results: list[dict]) -> str:
    labels = [label for label, _ in configs()]
    models = [r["model"] for r in results]
    lines = ["| configuration | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for label in labels:
        vals = [r["configs"][label]["top1_agreement"] for r in results]
        lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in vals) + " |")
    lines.append("| float model, only the input rounded to Qm.n int8 (the max rule) | "
                 + " | ".join(f"{r['input_only']['top1_agreement']:.4f}" for r in results) + " |")
    lines.append("| **TFLite int8 (affine) anchor** | " + " | ".join(f"{r['anchor']:.4f}" for r in results) + " |")
    if all("c_check" in r for r in results):
        lines.append("| default, compiled C (validate) | "
                     + " | ".join(f"{r['c_check']['top1_agreement']:.4f}" for r in results) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="dnn_s,cnn_s,ds_cnn_s,ds_cnn_m")
    p.add_argument("--anchors", default=str(SHARED), help="folder with the *_int8.tflite files and int8_anchor.json")
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--check-c", action="store_true", help="also validate the default configuration's C")
    args = p.parse_args()
    results = [run_model(m, Path(args.anchors), args.check_c) for m in args.models.split(",")]
    table = markdown(results)
    print("\n" + table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
