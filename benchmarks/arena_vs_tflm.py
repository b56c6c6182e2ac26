#!/usr/bin/env python3
"""kwscc's arena against TensorFlow Lite Micro's arena for the same models, measured in one run.

    python benchmarks/arena_vs_tflm.py [--cpu cortex-m4] [--json FILE] [--only NAME,...]

For every shared model (examples/kws: DNN_S, CNN_S, DS_CNN_S, DS_CNN_M; and MNIST CNN when the
shared model folder is beside the repository), kwscc compiles the ONNX file and reports its arena;
the `tflite-micro` package's interpreter loads the .tflite files of the same model (the int8 one
and the float one), runs one inference, and its RecordingMicroAllocator prints the arena it used
(total = head, the non-persistent tensors and scratch, + tail, the persistent interpreter data).
The tflite-micro package is a benchmark-only requirement (benchmarks/requirements.txt), installed
into the running Python by this script when it is missing.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KWS = ROOT / "examples" / "kws"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
SHARED_CANDIDATES = (ROOT.parent / "shared" / "models", ROOT.parent.parent / "shared" / "models")


def ensure_tflm() -> None:
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        print(f"installing the benchmark's requirements ({REQUIREMENTS.name}) into {sys.executable}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)


# ---- TFLM, in a child process (its allocation print goes to the C stdout) -----------------------------

def tflm_child(path: str) -> None:
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(path, arena_size=8 << 20)
    detail = interp.get_input_details(0)  # every shared model has one input
    interp.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
    interp.invoke()
    sys.stdout.flush()
    interp.print_allocations()


def tflm_arena(path: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--tflm-child", str(path)], capture_output=True, text=True,
                          timeout=600)
    printed = proc.stdout + proc.stderr  # TFLM's MicroPrintf writes to stderr
    found = {k: int(v) for k, v in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", printed)}
    if proc.returncode != 0 or "total" not in found:
        tail = printed.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"TFLM could not run it: {tail[0][:200]}"}
    return found


# ---- kwscc ------------------------------------------------------------------------------------------

def kwscc_arena(onnx: Path, calib: str, cpu: str) -> dict:
    from kwscc.driver import CompileOptions, compile_model

    compiled = compile_model(onnx, CompileOptions(calib=calib, cpu=cpu))
    g = compiled.graph
    return {"arena": compiled.plan.arena_size, "lower_bound": compiled.plan.lower_bound,
            "input": sum(g.tensors[t].size for t in g.inputs), "output": sum(g.tensors[t].size for t in g.outputs)}


def models() -> list[dict]:
    """name, ONNX file, calibration DATA spec and the .tflite files of every shared model found."""
    found = []
    shared = next((p for p in SHARED_CANDIDATES if p.is_dir()), None)
    for onnx in sorted(KWS.glob("*.onnx")):
        import onnx as onnx_lib

        dims = onnx_lib.load(str(onnx), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        features = dims[-1].dim_value
        tflites = []
        for suffix in ("_int8", ""):
            path = KWS / f"{onnx.stem}{suffix}.tflite"
            if not path.exists() and shared is not None:
                path = shared / "kws" / path.name
            if path.exists():
                tflites.append(path)
        found.append({"name": onnx.stem, "onnx": onnx, "calib": f"{KWS / 'kws_synth.npz'}:calib_x{features}",
                      "tflite": tflites})
    if shared is not None and (shared / "mnist" / "mnist_cnn.onnx").exists():
        mnist = shared / "mnist"
        found.append({"name": "mnist_cnn", "onnx": mnist / "mnist_cnn.onnx", "calib": f"{mnist / 'mnist5k.npz'}:calib_x",
                      "tflite": [p for p in (mnist / "mnist_cnn_int8.tflite", mnist / "mnist_cnn.tflite") if p.exists()]})
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", default="cortex-m4", help="kwscc --cpu (sizes the CMSIS-NN scratch buffers)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--only", metavar="NAMES", help="comma-separated model names")
    p.add_argument("--tflm-child", metavar="TFLITE", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tflm_child:
        tflm_child(args.tflm_child)
        return 0
    ensure_tflm()
    sys.path.insert(0, str(ROOT))
    rows = []
    wanted = set(args.only.split(",")) if args.only else None
    start = time.time()
    for model in models():
        if wanted and model["name"] not in wanted:
            continue
        k = kwscc_arena(model["onnx"], model["calib"], args.cpu)
        for tflite in model["tflite"]:
            t = tflm_arena(tflite)
            row = {"model": model["name"], "tflite": tflite.name, "kwscc_onnx": model["onnx"].name,
                   "kwscc_arena": k["arena"], "kwscc_lower_bound": k["lower_bound"],
                   "kwscc_input": k["input"], "kwscc_output": k["output"], **{f"tflm_{n}": v for n, v in t.items()}}
            if "total" in t:
                row["ratio"] = round(k["arena"] / t["total"], 3)
                row["ratio_head"] = round((k["arena"] + k["input"] + k["output"]) / t["head"], 3) if t["head"] else None
            rows.append(row)
    print(format_rows(rows, args.cpu))
    print(f"\n({time.time() - start:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if rows and all("ratio" in r for r in rows if "_int8" in r["tflite"]) else 1


def format_rows(rows: list[dict], cpu: str) -> str:
    head = ("model", "TFLM model", "TFLM arena", "TFLM head", "TFLM tail", f"kwscc arena ({cpu})",
            "kwscc/TFLM", "kwscc+I/O / TFLM head")
    table = [head]
    notes = []
    for r in rows:
        if "total" not in {k.removeprefix("tflm_") for k in r}:
            notes.append(f"{r['model']} ({r['tflite']}): {r.get('tflm_error')}")
            continue
        io = r["kwscc_arena"] + r["kwscc_input"] + r["kwscc_output"]
        table.append((r["model"], r["tflite"], f"{r['tflm_total']:,}", f"{r['tflm_head']:,}", f"{r['tflm_tail']:,}",
                      f"{r['kwscc_arena']:,}", f"{r['ratio']:.2f}",
                      f"{io:,} / {r['tflm_head']:,} = {r['ratio_head']:.2f}" if r["ratio_head"] else "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        "",
        "bytes. kwscc/TFLM = kwscc's arena / TFLM's whole arena (the headline ratio). TFLM's arena holds the",
        "model's input and output tensors and its persistent data (tail: tensor structs, per-channel",
        "quantization, node data); kwscc's arena holds neither: input and output are the caller's buffers,",
        "quantization parameters are const (flash). The last column adds kwscc's input and output to its",
        "arena and compares with TFLM's head (non-persistent tensors + scratch) alone. The tflite-micro",
        "package runs TFLM's reference kernels, which ask for no im2col scratch; kwscc's arena includes",
        "the scratch CMSIS-NN's kernels need on the chosen core. Float .tflite rows hold float32 tensors.",
    ]
    return "\n".join(lines + notes)


if __name__ == "__main__":
    sys.exit(main())
