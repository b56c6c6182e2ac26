"""The cmsis-nn-legacy backend's arithmetic against the CMSIS_5 5.9.0 golden vectors, bit for bit.

For every legacy family whose function the backend can emit (tests/data/cmsis_nn_vectors/legacy_*):
kwscc's host C (backends/cmsis_nn_legacy/host) and the numpy simulator (simulate.py) reproduce the real
library's host outputs and statuses, and its Cortex-M4 (ARM_MATH_DSP) outputs wherever those agree with
the host. The function-selection rules are checked against the vectors' own host != M4 cases: every case the
backend would emit computes the same on both. An ASan/UBSan build runs every case in a child process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from kwscc.backends.cmsis_nn_legacy import constraints as cons
from kwscc.backends.cmsis_nn_legacy import simulate as sim
from tests.vectors import load_family

sys.path.insert(0, str(Path(__file__).resolve().parent))
from legacy_host import FAMILIES, build_legacy_library, check_legacy_case, run_legacy_case  # noqa: E402


@lru_cache(maxsize=None)
def family(name: str):
    return load_family(name)


def _pair(d: dict) -> tuple[int, int]:
    return d["h"], d["w"]


def geometry(case: dict) -> cons.Geometry:
    """A conv / pool vector case in the backend's terms (input in the arena, dead afterwards)."""
    if isinstance(case["dim_im_in"], int):  # pools
        d, k, p, s, o = (case[key] for key in ("dim_im_in", "dim_kernel", "padding", "stride", "dim_im_out"))
        return cons.Geometry(d, d, case["ch_im_in"], case["ch_im_in"], k, k, p, p, s, s, o, o, True, True)
    return cons.Geometry(*_pair(case["dim_im_in"]), case["ch_im_in"], case["ch_im_out"], *_pair(case["dim_kernel"]),
                         *_pair(case["padding"]), *_pair(case["stride"]), *_pair(case["dim_im_out"]), True, True)


def simulated(fam: str, case: dict, arrays: dict) -> np.ndarray:
    short = fam.removeprefix("legacy_")
    x = arrays["input"]
    if short == "relu_q7":
        return np.maximum(x, 0)
    if short == "softmax_q7":
        return sim.softmax_q7(x[None])[0]
    if short.startswith("fully_connected"):
        return sim.fully_connected_q7(x[None], arrays["weights"], arrays.get("bias"), case["bias_shift"],
                                      case["out_shift"])[0]
    g = geometry(case)
    geo = dict(stride=(g.stride_y, g.stride_x), padding=(g.pad_y, g.pad_x), out_hw=(g.out_y, g.out_x))
    if short == "maxpool_q7_HWC":
        return sim.maxpool_q7(x[None], kernel=(g.k_y, g.k_x), **geo)[0]
    fn = sim.depthwise_hwc_q7 if short.startswith("depthwise") else sim.conv_hwc_q7
    return fn(x[None], arrays["weights"], arrays.get("bias"), case["bias_shift"], case["out_shift"], **geo)[0]


def test_every_emittable_family_is_vendored():
    from kwscc.backends.cmsis_nn_legacy.constraints import FUNCTIONS

    arm = {f for f in FUNCTIONS if f.startswith("arm_")} | {"arm_fully_connected_q7", "arm_fully_connected_q7_opt",
                                                           "arm_relu_q7", "arm_softmax_q7"}
    assert {f.replace("legacy_", "arm_", 1) for f in FAMILIES} == arm
    for fam in FAMILIES:
        assert family(fam), fam


@pytest.mark.parametrize("fam", FAMILIES)
def test_host_c_matches_cmsis_5_9_0(legacy_lib, fam):
    problems = []
    for case, arrays in family(fam):
        problems += [f"{case['name']}: {p}" for p in check_legacy_case(legacy_lib, fam, case, arrays, "host")]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fam", FAMILIES)
def test_host_c_matches_cortex_m4_where_host_does(legacy_lib, fam):
    checked = 0
    for case, arrays in family(fam):
        agree = case["host_equals_m4"]
        if not (agree["v590"] if isinstance(agree, dict) else agree):
            continue
        status, out = run_legacy_case(legacy_lib, fam, case, arrays, "m4")
        assert status == case["status"]["m4"], case["name"]
        np.testing.assert_array_equal(out, arrays["out_m4"], err_msg=case["name"])
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("fam", FAMILIES)
def test_simulator_matches_cmsis_5_9_0(fam):
    checked = 0
    for case, arrays in family(fam):
        if case["status"]["host"] != 0:
            continue
        if fam == "legacy_maxpool_q7_HWC" and case["name"] == "PAD_window_fully_in_padding":
            with pytest.raises(ValueError):  # kwscc never emits such a pool (constraint_pool_windows)
                simulated(fam, case, arrays)
            continue
        np.testing.assert_array_equal(simulated(fam, case, arrays), arrays["out_host"], err_msg=case["name"])
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("fam", ["legacy_fully_connected_q7_opt"])
def test_fc_opt_interleave_matches_cmsis_script(fam):
    for case, arrays in family(fam):
        np.testing.assert_array_equal(sim.fc_opt_interleave(arrays["weights"]), arrays["weights_reordered"],
                                      err_msg=case["name"])


SELECTION = {
    "legacy_convolve_HWC_q7_fast": "arm_convolve_HWC_q7_fast",
    "legacy_convolve_HWC_q7_fast_nonsquare": "arm_convolve_HWC_q7_fast_nonsquare",
    "legacy_convolve_1x1_HWC_q7_fast_nonsquare": "arm_convolve_1x1_HWC_q7_fast_nonsquare",
    "legacy_convolve_HWC_q7_RGB": "arm_convolve_HWC_q7_RGB",
    "legacy_convolve_HWC_q7_basic": "arm_convolve_HWC_q7_basic",
    "legacy_depthwise_separable_conv_HWC_q7": "arm_depthwise_separable_conv_HWC_q7",
    "legacy_maxpool_q7_HWC": "arm_maxpool_q7_HWC",
}


@pytest.mark.parametrize("fam", sorted(SELECTION))
def test_emitted_calls_agree_on_host_and_cortex_m4(fam):
    """Every case whose geometry passes the function's preconditions computes the same with and without DSP;
    every host != M4 case of the vectors is one the backend refuses (it emits _basic or kwscc's kernel)."""
    accepted = refused = 0
    for case, arrays in family(fam):
        if case["status"]["host"] != 0:
            continue
        ok = not cons.failed(SELECTION[fam], geometry(case))
        if ok:
            accepted += 1
            assert case["host_equals_m4"], f"{case['name']}: emitted, but the DSP path differs"
            np.testing.assert_array_equal(arrays["out_m4"], arrays["out_host"], err_msg=case["name"])
        elif not case["host_equals_m4"]:
            refused += 1
        if not case["host_equals_m4"]:
            assert not ok, case["name"]
    assert accepted > 0
    if fam in ("legacy_convolve_HWC_q7_fast", "legacy_convolve_HWC_q7_fast_nonsquare", "legacy_maxpool_q7_HWC"):
        assert refused > 0  # the vectors' DSP hazards are all among the refused cases


def test_softmax_is_the_5_9_0_definition():
    """kwscc pins arm_softmax_q7 to CMSIS_5 5.7.0-5.9.0; the 5.4.0 (ML-KWS era) outputs differ."""
    differ = 0
    for case, arrays in family("legacy_softmax_q7"):
        got = sim.softmax_q7(arrays["input"][None])[0]
        np.testing.assert_array_equal(got, arrays["out_host"])
        differ += not np.array_equal(got, arrays["out_host_v540"])
    assert differ > 0


def test_host_c_is_sanitizer_clean(tmp_path):
    """Every case once more through an ASan + UBSan build, in a child process (libasan preloaded)."""
    from tests.backends.host_build import sanitizer_env

    try:
        env = sanitizer_env()
        lib = build_legacy_library(tmp_path, sanitize=True)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"no sanitizer toolchain: {exc}")
    script = Path(__file__).resolve().parent / "legacy_host.py"
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(script.parents[2]), env.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(script), str(lib), *FAMILIES], capture_output=True, text=True,
                          env=env, timeout=600)
    failures = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and not failures, (failures, proc.stderr[-3000:])
