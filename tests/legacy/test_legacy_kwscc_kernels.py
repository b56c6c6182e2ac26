"""kwscc's own C kernels of the cmsis-nn-legacy backend (templates/cmsis_nn_legacy/kernels) against the
simulator's numpy models, bit for bit, on random and extreme inputs; and the integer softmax's definition."""
from __future__ import annotations

import math
from ctypes import POINTER, c_int8, c_int32, c_uint16

import numpy as np
import pytest

from kwscc.backends.cmsis_nn_legacy import simulate as sim
from kwscc.backends.cmsis_nn_legacy.quantize import softmax_table
from kwscc.ops.conv import conv_out_hw

_S8 = POINTER(c_int8)
I32 = c_int32


@pytest.fixture(scope="module")
def k(legacy_lib):
    lib = legacy_lib.lib
    lib.kwscc_clamp_q7.argtypes = [_S8, I32, I32, I32]
    lib.kwscc_maxpool_q7_HWC.argtypes = [_S8, *[I32] * 13, _S8]
    lib.kwscc_avepool_q7_HWC.argtypes = [_S8, *[I32] * 14, _S8]
    lib.kwscc_softmax_q7.argtypes = [_S8, I32, I32, POINTER(c_uint16), I32, _S8]
    for fn in ("kwscc_clamp_q7", "kwscc_maxpool_q7_HWC", "kwscc_avepool_q7_HWC", "kwscc_softmax_q7"):
        getattr(lib, fn).restype = None
    return lib


def _p(a):
    return a.ctypes.data_as(_S8)


POOLS = [  # (H, W, C, kernel, stride, pads top/left/bottom/right)
    (25, 5, 64, (25, 5), (2, 2), (0, 0, 0, 0)),  # DS-CNN global average pool
    (7, 9, 3, (3, 3), (2, 2), (1, 1, 1, 1)),
    (8, 8, 5, (2, 2), (2, 2), (0, 0, 0, 0)),
    (6, 10, 4, (3, 2), (1, 3), (2, 1, 2, 1)),
    (5, 5, 1, (5, 5), (1, 1), (2, 2, 2, 2)),
]


@pytest.mark.parametrize("geo", POOLS, ids=str)
@pytest.mark.parametrize("op", ["max", "ave"])
def test_pools_match_simulator(k, op, geo):
    rng = np.random.default_rng(7)
    h, w, c, kernel, stride, pads = geo
    out_hw = conv_out_hw((h, w), kernel, stride, pads, (1, 1))
    for trial in range(6):
        x = rng.integers(-128, 128, (h, w, c), dtype=np.int8)
        if trial == 1:
            x[:] = 127
        if trial == 2:
            x[:] = -128
        act = [(-128, 127), (0, 127), (0, 48), (-5, 3)][trial % 4]
        lshift = [0, 2, 5, 16, 1, 0][trial] if op == "ave" else 0
        if op == "ave" and 128 * kernel[0] * kernel[1] * 2**lshift >= 2**31:
            lshift = 0
        out = np.zeros((*out_hw, c), np.int8)
        args = (w, h, c, kernel[1], kernel[0], pads[1], pads[0], stride[1], stride[0], out_hw[1], out_hw[0])
        geo_kw = dict(kernel=kernel, stride=stride, padding=pads[:2], out_hw=out_hw, act=act)
        if op == "max":
            k.kwscc_maxpool_q7_HWC(_p(x), *args, *act, _p(out))
            want = sim.maxpool_q7(x[None], **geo_kw)[0]
        else:
            k.kwscc_avepool_q7_HWC(_p(x), *args, lshift, *act, _p(out))
            want = sim.avepool_q7(x[None], lshift=lshift, **geo_kw)[0]
        np.testing.assert_array_equal(out, want, err_msg=f"trial {trial}")


def test_avepool_rounds_half_away_from_zero(k):
    x = np.array([[[1], [2]], [[-1], [-2]]], np.int8)  # sums 3 and -3 over 2 taps: 1.5 -> 2, -1.5 -> -2
    want = sim.avepool_q7(x[None], kernel=(1, 2), stride=(1, 2), padding=(0, 0), out_hw=(2, 1), lshift=0)[0]
    assert want.ravel().tolist() == [2, -2]
    out = np.zeros(2, np.int8)
    k.kwscc_avepool_q7_HWC(_p(x), 2, 2, 1, 2, 1, 0, 0, 2, 1, 1, 2, 0, -128, 127, _p(out))
    assert out.tolist() == [2, -2]


def test_clamp_matches_simulator(k):
    x = np.arange(-128, 128, dtype=np.int8)
    for lo, hi in [(0, 127), (0, 48), (-7, 9), (-128, 127), (5, 5)]:
        y = x.copy()
        k.kwscc_clamp_q7(_p(y), y.size, lo, hi)
        np.testing.assert_array_equal(y, np.clip(x, lo, hi))


@pytest.mark.parametrize("frac", [-3, 0, 1, 2, 4, 7, 10])
def test_softmax_matches_simulator(k, frac):
    rng = np.random.default_rng(frac + 100)
    table = softmax_table(frac)
    rows = np.concatenate([
        rng.integers(-128, 128, (200, 12)),
        rng.integers(-8, 8, (50, 12)),
        np.full((1, 12), -128), np.full((1, 12), 127), [[127] + [-128] * 11], [[-128] * 11 + [127]],
    ]).astype(np.int8)
    for n in (12, 1, 3):
        x = np.ascontiguousarray(rows[:, :n])
        out = np.zeros_like(x)
        k.kwscc_softmax_q7(_p(x), x.shape[0], n, table.ctypes.data_as(POINTER(c_uint16)), table.size, _p(out))
        np.testing.assert_array_equal(out, sim.softmax_kwscc(x, table))


def test_softmax_returns_probabilities():
    """y = round(256 * e / S) - 128 with e = round(2^15 exp(-d 2^-n)): within 1/256 + table error of softmax."""
    rng = np.random.default_rng(3)
    for frac in (1, 2, 3, 5):
        table = softmax_table(frac)
        assert table[0] == 2**15 and table.dtype == np.uint16
        assert table[-1] > 0 and (table.size == 256 or round(2**15 * math.exp(-table.size * 2.0**-frac)) == 0)
        x = rng.integers(-128, 128, (500, 12)).astype(np.int8)
        p = (sim.softmax_kwscc(x, table).astype(np.float64) + 128) / 256
        ref = np.exp(x * 2.0**-frac - (x * 2.0**-frac).max(axis=1, keepdims=True))
        ref /= ref.sum(axis=1, keepdims=True)
        assert np.abs(p - ref).max() <= 1 / 256 + 1e-3
        np.testing.assert_allclose(p.sum(axis=1), 1, atol=12 / 512 + 1 / 256)


def test_softmax_is_one_hot_when_sure():
    table = softmax_table(2)
    x = np.array([[127] + [-128] * 11], np.int8)
    assert sim.softmax_kwscc(x, table).tolist() == [[127] + [-128] * 11]
    x = np.array([[5, 5, 5, 5]], np.int8)
    assert sim.softmax_kwscc(x, table).tolist() == [[-64] * 4]  # 1/4 = 64/256
