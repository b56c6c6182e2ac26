"""kwscc.quant.kernels against the CMSIS-NN v7.0.0 golden vectors (host builds, both rounding modes)."""
from __future__ import annotations

import numpy as np
import pytest

from kwscc.quant import kernels as K
from tests.vectors import load_family

ROUNDINGS = {"default": "out_host_default", "single": "out_host_single"}
# The only expected ARG_ERROR: v7's get_buffer_size answers 0 for a grouped 1x1 conv (vectors README §7.1).
EXPECTED_ARG_ERROR = {("modern_convolve_wrapper_s8", "grouped_3g_1x1_6x6x9_to_6_tflm_style_scratch")}


def _hw(d: dict) -> tuple[int, int]:
    return d["h"], d["w"]


def _act(case: dict) -> tuple[int, int]:
    return case["activation"]["min"], case["activation"]["max"]


def _conv(case: dict, a: dict, rounding: str) -> np.ndarray:
    return K.conv_s8(
        a["input"], a["weights"], a.get("bias"), a["multiplier"], a["shift"],
        stride=_hw(case["stride"]), padding=_hw(case["padding"]), dilation=_hw(case["dilation"]),
        out_hw=_hw(case["output_dims"]), input_offset=case["input_offset"],
        output_offset=case["output_offset"], act=_act(case), rounding=rounding,
    )


def _depthwise(case: dict, a: dict, rounding: str) -> np.ndarray:
    return K.depthwise_conv_s8(
        a["input"], a["weights"], a.get("bias"), a["multiplier"], a["shift"], ch_mult=case["ch_mult"],
        stride=_hw(case["stride"]), padding=_hw(case["padding"]), dilation=_hw(case["dilation"]),
        out_hw=_hw(case["output_dims"]), input_offset=case["input_offset"],
        output_offset=case["output_offset"], act=_act(case), rounding=rounding,
    )


def _fully_connected(case: dict, a: dict, rounding: str) -> np.ndarray:
    return K.fully_connected_s8(
        a["input"], a["weights"], a.get("bias"), case["multiplier"], case["shift"],
        input_offset=case["input_offset"], filter_offset=case["filter_offset"],
        output_offset=case["output_offset"], act=_act(case), rounding=rounding,
    )


def _pool(fn):
    def run(case: dict, a: dict, rounding: str) -> np.ndarray:
        return fn(a["input"], kernel=_hw(case["filter_dims"]), stride=_hw(case["stride"]),
                  padding=_hw(case["padding"]), out_hw=_hw(case["output_dims"]), act=_act(case))
    return run


def _softmax(case: dict, a: dict, rounding: str) -> np.ndarray:
    return K.softmax_s8(a["input"], case["mult"], case["shift"], case["diff_min"])


def _elementwise_add(case: dict, a: dict, rounding: str) -> np.ndarray:
    keys = ("input_1_offset", "input_1_mult", "input_1_shift", "input_2_offset", "input_2_mult", "input_2_shift",
            "left_shift", "out_offset", "out_mult", "out_shift")
    return K.elementwise_add_s8(a["input1"], a["input2"], act=_act(case), rounding=rounding,
                                **{k: case[k] for k in keys})


RUNNERS = {
    "modern_convolve_wrapper_s8": _conv,
    "modern_depthwise_conv_wrapper_s8": _depthwise,
    "modern_fully_connected_s8": _fully_connected,
    "modern_max_pool_s8": _pool(K.max_pool_s8),
    "modern_avgpool_s8": _pool(K.avgpool_s8),
    "modern_softmax_s8": _softmax,
    "modern_elementwise_add_s8": _elementwise_add,
}
FAMILIES = {name: load_family(name) for name in RUNNERS}


def _params():
    for family, cases in FAMILIES.items():
        for i, (case, _) in enumerate(cases):
            for rounding in ROUNDINGS:
                yield pytest.param(family, i, rounding, id=f"{family}-{case['index']}-{case['name']}-{rounding}")


@pytest.mark.parametrize("family,i,rounding", list(_params()))
def test_golden(family: str, i: int, rounding: str) -> None:
    case, arrays = FAMILIES[family][i]
    status = case["status"][f"host_{rounding}"]
    if status != 0:
        assert (family, case["name"]) in EXPECTED_ARG_ERROR and status == -1
        assert all(s == -1 for s in case["status"].values())
        # CMSIS rejected the call and left the output untouched; kwscc always passes the scratch
        # arm_convolve_s8 needs (tests/backends), so the simulator never has to model this
        assert not arrays[ROUNDINGS[rounding]].any()
        return
    want = arrays[ROUNDINGS[rounding]]
    got = RUNNERS[family](case, arrays, rounding)
    assert got.dtype == np.int8 and got.shape == want.shape
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        pytest.fail(f"{len(bad)} of {want.size} outputs differ; first at {bad[0].tolist()}: "
                    f"got {got[tuple(bad[0])]}, want {want[tuple(bad[0])]}")


def test_expected_arg_error_cases_exist() -> None:
    failing = {(fam, c["name"]) for fam, cases in FAMILIES.items() for c, _ in cases
               if any(s != 0 for s in c["status"].values())}
    assert failing == EXPECTED_ARG_ERROR


@pytest.mark.parametrize("i", range(len(FAMILIES["modern_softmax_s8"])),
                         ids=[c["name"] for c, _ in FAMILIES["modern_softmax_s8"]])
def test_softmax_params(i: int) -> None:
    case, _ = FAMILIES["modern_softmax_s8"][i]
    want = (case["mult"], case["shift"], case["diff_min"])
    assert K.softmax_params(case["input_scale_pow2_k"], beta=case["beta"]) == want
    if case["beta"] == 1.0:
        assert K.softmax_params(case["input_scale_pow2_k"]) == want


def test_softmax_params_documented_values() -> None:
    assert K.softmax_params(4) == (2**30, 23, -248)
    assert K.softmax_params(0) == (2**30, 27, -15)


SWEEPS = [(c, a) for c, a in FAMILIES["modern_fully_connected_s8"] if c["name"].startswith("rounding_sweep_k")]


@pytest.mark.parametrize("case,arrays", SWEEPS, ids=[c["name"] for c, _ in SWEEPS])
def test_requantize_rounding_sweep(case: dict, arrays: dict) -> None:
    acc = arrays["input"].astype(np.int64) @ arrays["weights"].astype(np.int64).T + arrays["bias"]
    k = case["pow2_k"]
    assert K.pow2_multiplier_shift(k) == (case["multiplier"], case["shift"])
    for rounding, key in ROUNDINGS.items():
        y = K.requantize(acc, case["multiplier"], case["shift"], rounding)
        assert np.array_equal(np.clip(y + case["output_offset"], *_act(case)), arrays[key].astype(np.int64))
    # Single rounding is the legacy round-half-up floor((acc + 2^(k-1)) / 2^k) (facts §3.4).
    single = K.requantize(acc, case["multiplier"], case["shift"], "single")
    assert np.array_equal(single, (acc + (1 << (k - 1))) >> k)


def test_requantize_per_channel_broadcast() -> None:
    acc = np.arange(-600, 600, dtype=np.int64).reshape(-1, 4)
    m, s = K.pow2_multiplier_shift(np.array([1, 2, 3, 7]))
    for rounding in ROUNDINGS:
        per_channel = K.requantize(acc, m, s, rounding)
        for c in range(4):
            assert np.array_equal(per_channel[:, c], K.requantize(acc[:, c], int(m[c]), int(s[c]), rounding))


BATCHED = [(fam, i) for fam in RUNNERS if fam not in ("modern_softmax_s8", "modern_elementwise_add_s8")
           for i, (c, a) in enumerate(FAMILIES[fam]) if a["input"].shape[0] > 1 and c["status"]["host_default"] == 0]


@pytest.mark.parametrize("family,i", BATCHED, ids=[f"{f}-{FAMILIES[f][i][0]['name']}" for f, i in BATCHED])
def test_chunking_and_float64_path(family: str, i: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """One sample per chunk and the float64 matmul (forced) give the same bits as the golden output."""
    monkeypatch.setattr(K, "_CHUNK_BYTES", 1)
    monkeypatch.setattr(K, "_F32_EXACT", 0)
    case, arrays = FAMILIES[family][i]
    assert np.array_equal(RUNNERS[family](case, arrays, "default"), arrays["out_host_default"])
