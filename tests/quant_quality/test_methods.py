"""Calibration methods on synthetic tensors: valid formats for degenerate tensors, exact histogram
growth, and each method's choice where the answer is known."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kwscc.quant.formats import MAX_FRAC, MIN_FRAC, frac_bits_for
from kwscc.quant.methods import METHODS, TensorStats, apply_method, summary

DEGENERATE = {
    "all_zero": np.zeros((64, 8), np.float32),
    "dead_relu": np.maximum(-np.abs(np.random.default_rng(0).normal(size=(64, 8))), 0).astype(np.float32),
    "constant_pos": np.full((10, 3), 3.25, np.float32),
    "constant_neg": np.full((10, 3), -0.007, np.float32),
    "single_value": np.array([[5.0]], np.float32),
    "tiny": np.full((4, 4), 1e-30, np.float32),
    "huge": np.array([[-3e6, 2e6]], np.float32),
    "empty_then_values": np.zeros((0, 4), np.float32),
}


def _stats(*batches) -> TensorStats:
    s = TensorStats()
    for b in batches:
        s.add(b)
    return s


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_tensors_get_valid_formats(method, case):
    summ = summary(_stats(DEGENERATE[case]))
    lo, hi = apply_method(method, summ)
    assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi
    n = frac_bits_for(max(abs(lo), abs(hi)))
    assert MIN_FRAC <= n <= MAX_FRAC
    data = DEGENERATE[case]
    if data.size and np.all(data == 0):
        assert (lo, hi) == (0.0, 0.0)
    if case.startswith("constant"):  # the constant itself is representable without clipping
        c = float(data.flat[0])
        assert abs(c) * 2.0**n <= 128


def test_histogram_growth_is_exact():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0, 0.01, 5000), rng.normal(0, 40, 5000)
    grown = _stats(small.astype(np.float32), large.astype(np.float32))
    direct = _stats(np.concatenate([small, large]).astype(np.float32))
    assert grown.exp == direct.exp
    np.testing.assert_array_equal(grown.hist, direct.hist)
    assert grown.count == direct.count == 10000


def test_max_never_clips_and_mse_clips_an_outlier():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, 200000), [60.0]]).astype(np.float32)
    summ = summary(_stats(x))
    assert apply_method("max", summ) == (float(x.min()), 60.0)
    lo, hi = apply_method("mse", summ)
    assert hi < 60  # a few outliers are not worth 5 bits of resolution for everything else
    assert frac_bits_for(max(abs(lo), abs(hi))) > frac_bits_for(60.0)


def test_mse_estimate_matches_the_real_error():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1.7, 100000).astype(np.float32)
    stats = _stats(x)
    for n, est in stats.mse().items():
        q = np.clip(np.floor(x.astype(np.float64) * 2.0**n + 0.5), -128, 127) / 2.0**n
        real = float(np.mean((x - q) ** 2))
        assert est == pytest.approx(real, rel=0.05), n


def test_percentile_and_kl_clip_long_tails_only():
    rng = np.random.default_rng(4)
    uniform = rng.uniform(-1, 1, 100000).astype(np.float32)
    for method in ("percentile", "kl", "mse"):
        lo, hi = apply_method(method, summary(_stats(uniform)))
        assert frac_bits_for(max(abs(lo), abs(hi))) == frac_bits_for(1.0), method  # nothing to clip
    tail = np.concatenate([rng.normal(0, 0.5, 100000), rng.normal(0, 30, 5)]).astype(np.float32)
    for method in ("percentile", "kl"):
        lo, hi = apply_method(method, summary(_stats(tail)))
        assert max(abs(lo), abs(hi)) < np.abs(tail).max(), method


def test_relu_output_with_exact_zeros():
    rng = np.random.default_rng(5)
    x = np.maximum(rng.normal(0, 2, 50000), 0).astype(np.float32)
    stats = _stats(x)
    assert stats.zeros == int(np.sum(x == 0))
    for method in METHODS:
        lo, hi = apply_method(method, summary(stats))
        assert lo == 0.0 and 0 < hi <= x.max()
