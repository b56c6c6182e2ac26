"""Build kwscc's host CMSIS_5 q7 implementation (backends/cmsis_nn_legacy/host) and call it through ctypes.

``build_legacy_library(tmpdir, sanitize=False)`` compiles every host .c file (plus, optionally, extra C
sources such as rendered kwscc kernels) into one shared library; ``LegacyHost(path)`` binds the q7 entry
points; ``run_legacy_case(host, family, case, arrays)`` calls one golden-vector case the way the vectors
README §2.3 describes (output zero-filled, bufferA of the documented size pre-filled with 0xA5, bufferB NULL).
Running this file as a script (``python legacy_host.py LIB FAMILY...``) checks every case of the families
and prints one JSON line per mismatch: the sanitizer test runs it in a child process with libasan preloaded.
"""
from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from ctypes import POINTER, c_int, c_int8, c_int16, c_uint16
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST_DIR = REPO_ROOT / "backends" / "cmsis_nn_legacy" / "host"
CFLAGS = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-shared", "-fPIC"]
SANITIZE_FLAGS = ["-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]

CONV_SQUARE = ("convolve_HWC_q7_basic", "convolve_HWC_q7_fast", "convolve_HWC_q7_RGB",
               "depthwise_separable_conv_HWC_q7")
CONV_NONSQUARE = ("convolve_HWC_q7_basic_nonsquare", "convolve_HWC_q7_fast_nonsquare",
                  "convolve_1x1_HWC_q7_fast_nonsquare", "depthwise_separable_conv_HWC_q7_nonsquare")
FC = ("fully_connected_q7", "fully_connected_q7_opt")
# every legacy family whose function the cmsis-nn-legacy backend can emit
FAMILIES = tuple(f"legacy_{f}" for f in (*CONV_SQUARE, *CONV_NONSQUARE, *FC, "maxpool_q7_HWC", "relu_q7",
                                         "softmax_q7"))

_S8 = POINTER(c_int8)
_U16 = c_uint16
_CONV_SQ_ARGS = [_S8, _U16, _U16, _S8, _U16, _U16, _U16, _U16, _S8, _U16, _U16, _S8, _U16, POINTER(c_int16), _S8]
_CONV_NS_ARGS = [_S8, _U16, _U16, _U16, _S8, _U16, _U16, _U16, _U16, _U16, _U16, _U16, _S8, _U16, _U16, _S8, _U16,
                 _U16, POINTER(c_int16), _S8]
SIGNATURES = {
    **{f"arm_{f}": (c_int, _CONV_SQ_ARGS) for f in CONV_SQUARE},
    **{f"arm_{f}": (c_int, _CONV_NS_ARGS) for f in CONV_NONSQUARE},
    **{f"arm_{f}": (c_int, [_S8, _S8, _U16, _U16, _U16, _U16, _S8, _S8, POINTER(c_int16)]) for f in FC},
    "arm_maxpool_q7_HWC": (None, [_S8, _U16, _U16, _U16, _U16, _U16, _U16, _S8, _S8]),
    "arm_relu_q7": (None, [_S8, _U16]),
    "arm_softmax_q7": (None, [_S8, _U16, _S8]),
}


def build_legacy_library(tmpdir, sanitize: bool = False, extra_sources=(), name: str = "libkwscc_legacy") -> Path:
    """Compile the host .c files (and extra_sources) into tmpdir/<name>.so; RuntimeError on any warning."""
    out = Path(tmpdir) / f"{name}{'_sanitize' if sanitize else ''}.so"
    cmd = ["gcc", *CFLAGS, *(SANITIZE_FLAGS if sanitize else []), "-I", str(HOST_DIR),
           *map(str, sorted(HOST_DIR.glob("*.c"))), *map(str, extra_sources), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or proc.stderr.strip():
        raise RuntimeError(f"legacy host library build failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return out


class LegacyHost:
    def __init__(self, path) -> None:
        self.lib = ctypes.CDLL(str(path))
        for name, (restype, argtypes) in SIGNATURES.items():
            fn = getattr(self.lib, name)
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)


def _s8(a):
    return None if a is None else a.ctypes.data_as(_S8)


def _own(a, dtype=np.int8):
    return None if a is None else np.array(a, dtype=dtype, order="C", copy=True)


def _buffer_a(nbytes: int):
    buf = np.full(max(2, nbytes) // 2, -0x5A5B, np.int16)  # 0xA5A5
    return buf, buf.ctypes.data_as(POINTER(c_int16))


def run_legacy_case(host: LegacyHost, family: str, case: dict, arrays: dict, config: str = "host"):
    """(status, output) of the host function for one vector case; status 0 for the void functions."""
    fn_name = family.replace("legacy_", "arm_", 1)
    fn = getattr(host, fn_name)
    short = family.removeprefix("legacy_")
    want = arrays[f"out_{config}"]
    out = np.zeros(want.shape, np.int8)
    x = _own(arrays["input"])
    if short == "relu_q7":
        fn(_s8(x), case["size"])
        return 0, x
    if short == "softmax_q7":
        fn(_s8(x), case["dim_vec"], _s8(out))
        return 0, out
    if short == "maxpool_q7_HWC":
        fn(_s8(x), case["dim_im_in"], case["ch_im_in"], case["dim_kernel"], case["padding"], case["stride"],
           case["dim_im_out"], None, _s8(out))
        return 0, out
    bias = _own(arrays.get("bias"))
    if short in FC:
        keep, vec_buffer = _buffer_a(2 * case["dim_vec"])
        w = _own(arrays["weights_reordered"] if short.endswith("_opt") else arrays["weights"])
        status = fn(_s8(x), _s8(w), case["dim_vec"], case["num_of_rows"], case["bias_shift"], case["out_shift"],
                    _s8(bias), _s8(out), vec_buffer)
        return status, out
    w = _own(arrays["weights"])
    k, p, s = case["dim_kernel"], case["padding"], case["stride"]
    keep, buffer_a = _buffer_a(4 * case["ch_im_in"] * k["h"] * k["w"])
    if short in CONV_SQUARE:
        status = fn(_s8(x), case["dim_im_in"]["w"], case["ch_im_in"], _s8(w), case["ch_im_out"], k["w"], p["w"],
                    s["w"], _s8(bias), case["bias_shift"], case["out_shift"], _s8(out), case["dim_im_out"]["w"],
                    buffer_a, None)
    else:
        status = fn(_s8(x), case["dim_im_in"]["w"], case["dim_im_in"]["h"], case["ch_im_in"], _s8(w),
                    case["ch_im_out"], k["w"], k["h"], p["w"], p["h"], s["w"], s["h"], _s8(bias), case["bias_shift"],
                    case["out_shift"], _s8(out), case["dim_im_out"]["w"], case["dim_im_out"]["h"], buffer_a, None)
    del keep
    return status, out


def check_legacy_case(host: LegacyHost, family: str, case: dict, arrays: dict, config: str = "host") -> list[str]:
    from tests.vectors import vector_problems

    status, out = run_legacy_case(host, family, case, arrays, config)
    return vector_problems(status, out, case, arrays, config)


def _main(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.vectors import load_family

    host = LegacyHost(argv[0])
    failures = 0
    for family in argv[1:]:
        for case, arrays in load_family(family):
            print(f"running {family}/{case['name']}", file=sys.stderr, flush=True)
            problems = check_legacy_case(host, family, case, arrays)
            if problems:
                failures += 1
                print(json.dumps({"family": family, "case": case["name"], "problems": problems}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
