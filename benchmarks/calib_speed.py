"""Compile time and peak memory of a calibrated compile, and how peak memory grows with the
calibration set.

    .venv/bin/python benchmarks/calib_speed.py [--model examples/kws/ds_cnn_s.onnx] [--key calib_x490]
                                               [--sizes 1000,10000,100000] [--repeat 3] [--profile N]

Each row runs `kwscc MODEL --calib FILE:KEY -o TMP` in a fresh Python process and reports its wall
time, CPU time (user + system of every thread, what the compile costs on a loaded machine; "+ tools":
the arm-none-eabi-gcc the report's code-size measurement runs) and peak resident memory (ru_maxrss).
On a shared machine compare CPU times: wall time is only meaningful when the machine is idle. The first row is the shipped calibration set (1000 clips of examples/kws/kws_synth.npz);
larger sets are that one repeated with a little noise, written to a temporary .npz (100,000 DS-CNN
clips: 196 MB). --profile N prints the N functions with the most cumulative CPU time of one compile
(process CPU time, so other processes' load does not count, but the runtime's threads do).
Timings are printed, never asserted.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NPZ = ROOT / "examples" / "kws" / "kws_synth.npz"

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from kwscc.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
wall = time.perf_counter() - t0
u = resource.getrusage(resource.RUSAGE_SELF)
c = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall_s": wall, "cpu_s": u.ru_utime + u.ru_stime, "tools_cpu_s": c.ru_utime + c.ru_stime,
                  "peak_mb": u.ru_maxrss / 1024}))
"""


def run_once(model: Path, spec: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(model), "--calib", spec, "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines or json.loads(lines[-1])["rc"] not in (0, None):
        raise SystemExit(f"compile failed: {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def enlarged(base: np.ndarray, count: int, path: Path) -> str:
    rng = np.random.default_rng(0)
    reps = -(-count // len(base))
    x = np.concatenate([base + rng.normal(0, 0.05, base.shape).astype(np.float32) for _ in range(reps)])[:count]
    np.savez(path, calib=x)
    return f"{path}:calib"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "examples" / "kws" / "ds_cnn_s.onnx"))
    ap.add_argument("--key", default="calib_x490")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the first size (the best is shown)")
    ap.add_argument("--profile", type=int, default=0)
    args = ap.parse_args()
    model = Path(args.model)
    with np.load(NPZ) as data:
        base = data[args.key]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kwscc-bench-") as tmp:
        tmp = Path(tmp)
        for i, size in enumerate(sizes):
            spec = f"{NPZ}:{args.key}" if size == len(base) else enlarged(base, size, tmp / f"calib{size}.npz")
            runs = [run_once(model, spec, tmp / "out") for _ in range(args.repeat if i == 0 else 1)]
            best = min(runs, key=lambda r: r["cpu_s"])
            rows.append({"samples": size, **best})
            print(f"{size:>7d} clips: wall {best['wall_s']:6.2f} s   cpu {best['cpu_s']:6.2f} s "
                  f"+ tools {best['tools_cpu_s']:4.2f} s   "
                  f"peak {best['peak_mb']:7.1f} MB   peak / first {best['peak_mb'] / rows[0]['peak_mb']:.2f}x",
                  flush=True)
            (tmp / f"calib{size}.npz").unlink(missing_ok=True)
        if args.profile:
            import cProfile
            import pstats
            import time

            sys.path.insert(0, str(ROOT))
            from kwscc.cli import main as kwscc_main

            prof = cProfile.Profile(time.process_time)
            prof.enable()
            try:
                kwscc_main([str(model), "--calib", f"{NPZ}:{args.key}", "-o", str(tmp / "out")])
            except SystemExit:
                pass
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
