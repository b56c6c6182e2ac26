"""Build kwscc's host CMSIS-NN implementation (backends/cmsis_nn/host) and call it through ctypes.

Reusable by other tests (e2e):

* ``build_host_library(tmpdir, single_rounding, sanitize=False)`` compiles every host ``.c`` file into one
  shared library and returns its path.
* ``HostLibrary(path)`` binds the CMSIS-NN v7 entry points with ctypes; ``run_vector_case`` and
  ``vector_buffer_size`` call them for one golden-vector case following the vectors README §2.3
  conventions (scratch of ``ctx_size_passed`` bytes pre-filled with 0xA5 or NULL, bias NULL when absent,
  output zero-filled).

A library built with ``sanitize=True`` contains AddressSanitizer, which must be the first DSO of the
process: load it only in a process started with ``sanitizer_env()`` (LD_PRELOAD of libasan). Running this
file as a script does that job: ``python host_build.py LIB CONFIG FAMILY...`` runs every case of the
families against LIB and prints one JSON line per mismatch (used by test_host_kernels.py).
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from ctypes import POINTER, c_int, c_int8, c_int32, c_void_p
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST_SRC_DIR = REPO_ROOT / "backends" / "cmsis_nn" / "host"

CFLAGS = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-shared", "-fPIC"]
SANITIZE_FLAGS = ["-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]

# Families of golden vectors the host library implements, and the vector output each build must match.
FAMILIES = (
    "modern_convolve_wrapper_s8",
    "modern_depthwise_conv_wrapper_s8",
    "modern_fully_connected_s8",
    "modern_max_pool_s8",
    "modern_avgpool_s8",
    "modern_softmax_s8",
    "modern_elementwise_add_s8",
)
CONFIG_KEYS = {False: "host_default", True: "host_single"}  # single_rounding -> vector configuration


def host_sources() -> list[Path]:
    return sorted(HOST_SRC_DIR.glob("*.c"))


def build_host_library(tmpdir, single_rounding: bool, sanitize: bool = False) -> Path:
    """Compile all host .c files into one shared library in tmpdir; return its path.

    Raises RuntimeError with gcc's output on any warning or error (-Werror).
    """
    name = "libkwscc_cmsis_host_{}{}.so".format("single" if single_rounding else "default",
                                                "_sanitize" if sanitize else "")
    out = Path(tmpdir) / name
    cmd = ["gcc", *CFLAGS]
    if single_rounding:
        cmd.append("-DCMSIS_NN_USE_SINGLE_ROUNDING")
    if sanitize:
        cmd += SANITIZE_FLAGS
    cmd += ["-I", str(HOST_SRC_DIR), *map(str, host_sources()), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or proc.stderr.strip():
        raise RuntimeError(f"host library build failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return out


def sanitizer_env() -> dict[str, str]:
    """Environment for a child process that loads an ASan/UBSan-instrumented library via ctypes."""
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True,
                             check=True).stdout.strip()
    env = dict(os.environ)
    env["LD_PRELOAD"] = libasan
    # Python itself keeps memory alive until exit: leak reports would be noise.
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:exitcode=86"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=87"
    return env


# ----------------------------------------------------------------------------------------------------------
# ctypes mirrors of arm_nn_types.h (field order is the ABI)
# ----------------------------------------------------------------------------------------------------------

class Dims(ctypes.Structure):
    _fields_ = [("n", c_int32), ("h", c_int32), ("w", c_int32), ("c", c_int32)]


class Tile(ctypes.Structure):
    _fields_ = [("w", c_int32), ("h", c_int32)]


class Activation(ctypes.Structure):
    _fields_ = [("min", c_int32), ("max", c_int32)]


class Context(ctypes.Structure):
    _fields_ = [("buf", c_void_p), ("size", c_int32)]


class ConvParams(ctypes.Structure):
    _fields_ = [("input_offset", c_int32), ("output_offset", c_int32), ("stride", Tile), ("padding", Tile),
                ("dilation", Tile), ("activation", Activation)]


class DwConvParams(ctypes.Structure):
    _fields_ = [("input_offset", c_int32), ("output_offset", c_int32), ("ch_mult", c_int32), ("stride", Tile),
                ("padding", Tile), ("dilation", Tile), ("activation", Activation)]


class FcParams(ctypes.Structure):
    _fields_ = [("input_offset", c_int32), ("filter_offset", c_int32), ("output_offset", c_int32),
                ("activation", Activation)]


class PoolParams(ctypes.Structure):
    _fields_ = [("stride", Tile), ("padding", Tile), ("activation", Activation)]


class PerChannelQuant(ctypes.Structure):
    _fields_ = [("multiplier", POINTER(c_int32)), ("shift", POINTER(c_int32))]


class PerTensorQuant(ctypes.Structure):
    _fields_ = [("multiplier", c_int32), ("shift", c_int32)]


_P = ctypes.POINTER
_S8 = POINTER(c_int8)
_S32 = POINTER(c_int32)

_SIGNATURES = {
    "arm_convolve_wrapper_s8": (c_int, [_P(Context), _P(ConvParams), _P(PerChannelQuant), _P(Dims), _S8, _P(Dims),
                                        _S8, _P(Dims), _S32, _P(Dims), _S8]),
    "arm_convolve_wrapper_s8_get_buffer_size": (c_int32, [_P(ConvParams), _P(Dims), _P(Dims), _P(Dims)]),
    "arm_depthwise_conv_wrapper_s8": (c_int, [_P(Context), _P(DwConvParams), _P(PerChannelQuant), _P(Dims), _S8,
                                              _P(Dims), _S8, _P(Dims), _S32, _P(Dims), _S8]),
    "arm_depthwise_conv_wrapper_s8_get_buffer_size": (c_int32, [_P(DwConvParams), _P(Dims), _P(Dims), _P(Dims)]),
    "arm_fully_connected_s8": (c_int, [_P(Context), _P(FcParams), _P(PerTensorQuant), _P(Dims), _S8, _P(Dims), _S8,
                                       _P(Dims), _S32, _P(Dims), _S8]),
    "arm_fully_connected_s8_get_buffer_size": (c_int32, [_P(Dims)]),
    "arm_max_pool_s8": (c_int, [_P(Context), _P(PoolParams), _P(Dims), _S8, _P(Dims), _P(Dims), _S8]),
    "arm_avgpool_s8": (c_int, [_P(Context), _P(PoolParams), _P(Dims), _S8, _P(Dims), _P(Dims), _S8]),
    "arm_avgpool_s8_get_buffer_size": (c_int32, [c_int, c_int]),
    "arm_softmax_s8": (None, [_S8, c_int32, c_int32, c_int32, c_int32, c_int32, _S8]),
    "arm_elementwise_add_s8": (c_int, [_S8, _S8, *[c_int32] * 7, _S8, *[c_int32] * 6]),
}


class HostLibrary:
    """The host CMSIS-NN functions of one built library, with typed ctypes signatures."""

    def __init__(self, path):
        self.path = Path(path)
        self.lib = ctypes.CDLL(str(self.path))
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self.lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)


# ----------------------------------------------------------------------------------------------------------
# Golden-vector cases -> calls
# ----------------------------------------------------------------------------------------------------------

def _dims(d: dict) -> Dims:
    return Dims(d["n"], d["h"], d["w"], d["c"])


def _tile(d: dict) -> Tile:
    return Tile(w=d["w"], h=d["h"])


def _act(case: dict) -> Activation:
    return Activation(case["activation"]["min"], case["activation"]["max"])


def _s8(arr: np.ndarray | None):
    return None if arr is None else arr.ctypes.data_as(_S8)


def _s32(arr: np.ndarray | None):
    return None if arr is None else arr.ctypes.data_as(_S32)


def _own(arr: np.ndarray | None, dtype) -> np.ndarray | None:
    """An exact-size private copy, so that a sanitizer sees any out-of-bounds access."""
    return None if arr is None else np.array(arr, dtype=dtype, order="C", copy=True)


def _scratch(case: dict, config: str):
    """(Context, keep-alive buffer) following README §2.3: ctx_size_passed bytes of 0xA5, or NULL when 0."""
    size = case["buffer_size"][config]["ctx_size_passed"] if case.get("buffer_size") else 0
    if size == 0:
        return Context(None, 0), None
    buf = np.full(size, 0xA5, dtype=np.uint8)  # numpy data is at least 16-byte aligned
    return Context(buf.ctypes.data_as(c_void_p), size), buf


def run_vector_case(host: HostLibrary, family: str, case: dict, arrays: dict, config: str):
    """Call the host function for one vector case; return (status, output array).

    config is the vector configuration key ("host_default" or "host_single") whose scratch size is passed.
    The output starts zero-filled, like the harness that made the vectors.
    """
    out_shape = arrays[f"out_{config}"].shape
    out = np.zeros(out_shape, dtype=np.int8)
    if family == "modern_elementwise_add_s8":
        a, b = _own(arrays["input1"], np.int8), _own(arrays["input2"], np.int8)
        status = host.arm_elementwise_add_s8(
            _s8(a), _s8(b), *(case[k] for k in ("input_1_offset", "input_1_mult", "input_1_shift", "input_2_offset",
                                                "input_2_mult", "input_2_shift", "left_shift")),
            _s8(out), case["out_offset"], case["out_mult"], case["out_shift"], case["activation"]["min"],
            case["activation"]["max"], case["block_size"])
        return status, out
    x = _own(arrays["input"], np.int8)

    if family == "modern_softmax_s8":
        host.arm_softmax_s8(_s8(x), case["num_rows"], case["row_size"], case["mult"], case["shift"],
                            case["diff_min"], _s8(out))
        return 0, out

    ctx, _keep = _scratch(case, config)
    in_dims, out_dims = _dims(case["input_dims"]), _dims(case["output_dims"])

    if family in ("modern_max_pool_s8", "modern_avgpool_s8"):
        params = PoolParams(_tile(case["stride"]), _tile(case["padding"]), _act(case))
        fn = host.arm_max_pool_s8 if family == "modern_max_pool_s8" else host.arm_avgpool_s8
        status = fn(ctypes.byref(ctx), ctypes.byref(params), ctypes.byref(in_dims), _s8(x),
                    ctypes.byref(_dims(case["filter_dims"])), ctypes.byref(out_dims), _s8(out))
        return status, out

    w = _own(arrays["weights"], np.int8)
    bias = _own(arrays["bias"], np.int32) if case["has_bias"] else None
    filt_dims = _dims(case["filter_dims"])
    bias_dims = Dims(1, 1, 1, case["output_dims"]["c"])

    if family == "modern_fully_connected_s8":
        params = FcParams(case["input_offset"], case["filter_offset"], case["output_offset"], _act(case))
        quant = PerTensorQuant(case["multiplier"], case["shift"])
        status = host.arm_fully_connected_s8(ctypes.byref(ctx), ctypes.byref(params), ctypes.byref(quant),
                                             ctypes.byref(in_dims), _s8(x), ctypes.byref(filt_dims), _s8(w),
                                             ctypes.byref(bias_dims), _s32(bias), ctypes.byref(out_dims), _s8(out))
        return status, out

    mult = _own(arrays["multiplier"], np.int32)
    shift = _own(arrays["shift"], np.int32)
    quant = PerChannelQuant(_s32(mult), _s32(shift))
    if family == "modern_convolve_wrapper_s8":
        params = ConvParams(case["input_offset"], case["output_offset"], _tile(case["stride"]),
                            _tile(case["padding"]), _tile(case["dilation"]), _act(case))
        fn = host.arm_convolve_wrapper_s8
    elif family == "modern_depthwise_conv_wrapper_s8":
        params = DwConvParams(case["input_offset"], case["output_offset"], case["ch_mult"], _tile(case["stride"]),
                              _tile(case["padding"]), _tile(case["dilation"]), _act(case))
        fn = host.arm_depthwise_conv_wrapper_s8
    else:
        raise ValueError(f"no host function for family {family}")
    status = fn(ctypes.byref(ctx), ctypes.byref(params), ctypes.byref(quant), ctypes.byref(in_dims), _s8(x),
                ctypes.byref(filt_dims), _s8(w), ctypes.byref(bias_dims), _s32(bias), ctypes.byref(out_dims),
                _s8(out))
    return status, out


def vector_buffer_size(host: HostLibrary, family: str, case: dict) -> int:
    """The host get_buffer_size answer for one vector case (called as the vector harness did)."""
    in_dims, filt_dims, out_dims = (_dims(case[k]) for k in ("input_dims", "filter_dims", "output_dims"))
    if family == "modern_convolve_wrapper_s8":
        params = ConvParams(case["input_offset"], case["output_offset"], _tile(case["stride"]),
                            _tile(case["padding"]), _tile(case["dilation"]), _act(case))
        return host.arm_convolve_wrapper_s8_get_buffer_size(ctypes.byref(params), ctypes.byref(in_dims),
                                                            ctypes.byref(filt_dims), ctypes.byref(out_dims))
    if family == "modern_depthwise_conv_wrapper_s8":
        params = DwConvParams(case["input_offset"], case["output_offset"], case["ch_mult"], _tile(case["stride"]),
                              _tile(case["padding"]), _tile(case["dilation"]), _act(case))
        return host.arm_depthwise_conv_wrapper_s8_get_buffer_size(ctypes.byref(params), ctypes.byref(in_dims),
                                                                  ctypes.byref(filt_dims), ctypes.byref(out_dims))
    if family == "modern_fully_connected_s8":
        return host.arm_fully_connected_s8_get_buffer_size(ctypes.byref(filt_dims))
    if family == "modern_avgpool_s8":
        return host.arm_avgpool_s8_get_buffer_size(case["output_dims"]["w"], case["input_dims"]["c"])
    raise ValueError(f"family {family} has no get_buffer_size")


def check_vector_case(host: HostLibrary, family: str, case: dict, arrays: dict, config: str) -> list[str]:
    """Problems found for one case (empty list when output and status match the vector exactly)."""
    from tests.vectors import vector_problems

    status, out = run_vector_case(host, family, case, arrays, config)
    return vector_problems(status, out, case, arrays, config)


def _main(argv: list[str]) -> int:
    """python host_build.py LIB CONFIG FAMILY...: check every case; one JSON line per failing case."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.vectors import load_family

    lib_path, config, families = argv[0], argv[1], argv[2:]
    host = HostLibrary(lib_path)
    failures = 0
    for family in families:
        for case, arrays in load_family(family):
            # Name the case first: a sanitizer abort then points at it.
            print(f"running {family}/{case['name']}", file=sys.stderr, flush=True)
            problems = check_vector_case(host, family, case, arrays, config)
            if problems:
                failures += 1
                print(json.dumps({"family": family, "case": case["name"], "problems": problems}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
