"""The breadth matrix of synthetic recurrent models (tests/frontends/recurrent_breadth.py) as a table.

    python benchmarks/recurrent_breadth.py [--only lstm-,gru-lbr1] [--float-only] [--json FILE]

Per variant: ok (float IR vs onnxruntime / LiteRT within 1e-5, compiled with 32 random calibration
sequences, validated on 16: C == simulator, output SQNR vs the float model >= 25 dB; top-1 agreement with
the float model for the variants with a classifier, and the arena), refused (one line naming the node,
the expected reason), or FAIL with why. Exits 1 if any variant FAILs (the two `weights-x6` rows do: a known
weakness, README "Recurrent models"). About 4 minutes on an idle 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.frontends.recurrent_breadth import check, matrix  # noqa: E402


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated name prefixes")
    parser.add_argument("--float-only", action="store_true", help="float IR vs runtime only (no C)")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    variants = matrix()
    if args.only:
        prefixes = args.only.split(",")
        variants = [v for v in variants if any(v.name.startswith(p) for p in prefixes)]
    rows = []
    print("| variant | T | F | result | layers | kernel | float err | mismatches | SQNR dB | top-1 | arena B | s | detail |")
    print("|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for variant in variants:
        with tempfile.TemporaryDirectory() as tmp:
            row = check(variant, Path(tmp), compile_c=not args.float_only)
        rows.append(row)
        print(f"| {variant.name} | {variant.steps} | {variant.features} | {row['result']} | {row.get('layers', '')} | "
              f"{row.get('kernels', '')} | {_fmt(row.get('float_err'), '.1e')} | {_fmt(row.get('mismatches'), 'd')} | "
              f"{_fmt(row.get('sqnr_db'), '.1f')} | {_fmt(row.get('top1'), '.3f')} | {_fmt(row.get('arena'), 'd')} | "
              f"{_fmt(row.get('seconds'), '.1f')} | {row['detail'][:110]} |",
              flush=True)
    counts = {r: sum(row["result"] == r for row in rows) for r in ("ok", "refused", "FAIL")}
    print(f"\n{len(rows)} variants: {counts['ok']} ok, {counts['refused']} refused as expected, {counts['FAIL']} FAIL")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
