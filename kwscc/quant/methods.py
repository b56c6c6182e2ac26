"""Calibration methods: how the values a tensor took on the calibration data become its format.

Every method sees the same streamed summary of a tensor, a `TensorStats`: exact min/max, the count
of exact zeros and a signed histogram whose range doubles as needed (bins stay aligned with every
power-of-two format, so growing merges bin pairs exactly and memory stays fixed). From it each method
scores the candidate formats n = n_max .. n_max + CANDIDATES - 1, where n_max is the format the max
rule gives (no clipping), and picks one:

  max         n_max: the ML-KWS / NNoM rule, 7 - ceil(log2 max|x|), never clips
  percentile  the format whose range covers the PERCENTILE-th percentile of |x|
  kl          NNoM/TensorRT: the format whose clipped, 128-level distribution of |x| is closest in
              KL divergence to the 2048-level reference distribution
  mse         the format with the least expected squared quantization error (rounding + clipping),
              integrated exactly over each histogram bin

A method's choice is returned as a range clipped to the chosen format's span, (max(lo, -T),
min(hi, T)) with T = 2^(7-n), so `frac_bits_for` of the result gives n and quantize.py needs no
other input. `summary()` turns the statistics into a few numbers per tensor (min, max, and each
method's score of every candidate) that a ranges JSON keeps, so any method can be re-chosen later
without running the model again.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from kwscc.quant.formats import MAX_FRAC, MIN_FRAC, frac_bits_for

HALF_BINS = 16384  # histogram bins per sign
CANDIDATES = 8  # formats scored per tensor: n_max .. n_max + 7
PERCENTILE = 99.99
KL_BINS = 2048  # reference resolution of the KL method (per the |x| range of a candidate)


class TensorStats:
    """Streaming summary of one tensor: min, max, exact zeros and a growing aligned histogram."""

    __slots__ = ("lo", "hi", "zeros", "count", "exp", "hist")

    def __init__(self, histogram: bool = True) -> None:
        self.lo, self.hi = math.inf, -math.inf
        self.zeros = self.count = 0
        self.exp: int | None = None  # histogram covers [-2^exp, 2^exp)
        self.hist = np.zeros(2 * HALF_BINS, np.int64) if histogram else None

    def add(self, values: np.ndarray) -> None:
        """Add a batch of values (any shape, any element order: the summary does not depend on it)."""
        v = np.asarray(values).ravel()
        if v.size == 0 or v.dtype.kind != "f":
            return
        lo, hi = float(v.min()), float(v.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):  # a NaN or an infinity: keep the finite values
            v = v[np.isfinite(v)]
            if v.size == 0:
                return
            lo, hi = float(v.min()), float(v.max())
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
        self.count += v.size
        if self.hist is None:
            return
        zeros = v.size - int(np.count_nonzero(v))
        self.zeros += zeros
        if zeros == v.size:
            return
        absmax = max(-lo, hi)
        need = max(MIN_FRAC - 16, math.frexp(absmax)[1])  # 2^need > absmax
        if self.exp is None:
            self.exp = need
        while self.exp < need:  # double the range: merge bin pairs into the middle half
            merged = self.hist.reshape(-1, 2).sum(axis=1)
            self.hist = np.zeros_like(self.hist)
            self.hist[HALF_BINS // 2: HALF_BINS // 2 + HALF_BINS] = merged
            self.exp += 1
        counts = np.bincount(self._bin_indices(v), minlength=2 * HALF_BINS)
        counts[HALF_BINS] -= zeros  # the zeros (either sign) fell in the bin [0, width): not counted there
        self.hist += counts

    def _bin_indices(self, v: np.ndarray) -> np.ndarray:
        """floor(v / width) + HALF_BINS for every value, exactly, all in [0, 2 * HALF_BINS) as |v| < 2^exp.

        width is a power of two, so v * (1 / width) is exact unless it underflows: float32 values are
        scaled in float32 while 1 / width >= 1 (no underflow, half the memory traffic), else in float64."""
        scale = HALF_BINS * 2.0 ** -self.exp
        dtype = np.float32 if v.dtype == np.float32 and scale >= 1 else np.float64
        x = np.multiply(v, dtype(scale), dtype=dtype)
        np.floor(x, out=x)
        x += HALF_BINS  # integers of at most 16 bits: exact in either type
        return x.astype(np.intp)

    @property
    def absmax(self) -> float:
        if self.count == 0:
            return 0.0
        return max(abs(self.lo), abs(self.hi))

    def candidates(self) -> list[int]:
        n0 = frac_bits_for(self.absmax)
        return [n for n in range(n0, n0 + CANDIDATES) if n <= MAX_FRAC]

    def _bins(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Non-empty bins as (lower edge, upper edge, count), on the |x| axis (both signs folded)."""
        width = 2.0 ** self.exp / HALF_BINS
        edges = np.arange(HALF_BINS + 1) * width
        pos = self.hist[HALF_BINS:]
        neg = self.hist[:HALF_BINS][::-1]
        counts = pos + neg
        keep = counts > 0
        return edges[:-1][keep], edges[1:][keep], counts[keep]

    def _signed_bins(self):
        width = 2.0 ** self.exp / HALF_BINS
        edges = (np.arange(2 * HALF_BINS + 1) - HALF_BINS) * width
        keep = self.hist > 0
        return edges[:-1][keep], edges[1:][keep], self.hist[keep]

    # ---- scores of each candidate format ------------------------------------------------------
    def mse(self) -> dict[int, float]:
        """Expected squared error per element of each candidate, values uniform within each bin."""
        out = {}
        if self.exp is None:
            return {n: 0.0 for n in self.candidates()}
        lo, hi, counts = self._signed_bins()
        pos = lo >= 0
        total = max(self.count, 1)
        for n in self.candidates():
            s = 2.0 ** -n
            err = np.zeros(lo.shape)
            # positive bins: grid 0..127; negative bins mirrored: grid 0..128 on |x|
            a, b = lo[pos], hi[pos]
            err[pos] = (_cell_integral(b, s, 127) - _cell_integral(a, s, 127)) / (b - a)
            a, b = -hi[~pos], -lo[~pos]
            err[~pos] = (_cell_integral(b, s, 128) - _cell_integral(a, s, 128)) / (b - a)
            out[n] = float(np.sum(err * counts)) / total
        return out

    def kl(self) -> dict[int, float]:
        """KL(P || Q) of each candidate: P = |x| histogram over the candidate's span in KL_BINS bins
        with the clipped tail added to the last bin, Q = P merged into 128 levels and spread back."""
        out = {}
        if self.exp is None:
            return {n: 0.0 for n in self.candidates()}
        width = 2.0 ** self.exp / HALF_BINS
        folded = self.hist[HALF_BINS:] + self.hist[:HALF_BINS][::-1]
        for n in self.candidates():
            span = 2.0 ** (7 - n)
            bins = int(round(span / width))
            if bins < 8 * 128:  # fewer than 8 reference bins per level: too coarse to score
                out[n] = math.inf
                continue
            p = np.zeros(bins, np.float64)
            m = min(bins, folded.size)
            p[:m] = folded[:m]
            if folded.size > bins:
                p[-1] += folded[bins:].sum()
            # reduce to at most KL_BINS reference bins (a multiple of 128)
            group = max(1, bins // KL_BINS)
            p = p[: (bins // group) * group].reshape(-1, group).sum(axis=1)
            if p.sum() == 0:
                out[n] = 0.0
                continue
            levels = p.reshape(128, -1)
            nonzero = levels > 0
            per_level = levels.sum(axis=1, keepdims=True) / np.maximum(nonzero.sum(axis=1, keepdims=True), 1)
            q = np.where(nonzero, per_level, 0.0).ravel()
            pp, qq = p / p.sum(), q / q.sum()
            mask = pp > 0
            out[n] = float(np.sum(pp[mask] * np.log(pp[mask] / np.maximum(qq[mask], 1e-12))))
        return out

    def percentile(self, pct: float = PERCENTILE) -> float:
        """The pct-th percentile of |x| (upper edge of the bin that reaches it)."""
        if self.exp is None:
            return 0.0
        width = 2.0 ** self.exp / HALF_BINS
        folded = self.hist[HALF_BINS:] + self.hist[:HALF_BINS][::-1]
        cum = np.cumsum(folded) + self.zeros
        target = pct / 100.0 * self.count
        i = int(np.searchsorted(cum, target))
        return min((i + 1) * width, self.absmax)


def _cell_integral(x: np.ndarray, s: float, jmax: int) -> np.ndarray:
    """F(x) = integral over [0, x] of (t - g(t))^2, g(t) the nearest grid point j*s with j <= jmax."""
    j = np.minimum(np.floor(x / s + 0.5), jmax)
    return j * s**3 / 12.0 + (x - j * s) ** 3 / 3.0


# ------------------------------------------------------------------------------------------ methods


def _argmin(scores: dict[int, float]) -> int:
    return min(scores, key=lambda n: (scores[n], n))  # ties: the wider format


def choose_max(summary: dict) -> int:
    return frac_bits_for(max(abs(summary["min"]), abs(summary["max"])))


def choose_percentile(summary: dict) -> int:
    return max(frac_bits_for(summary["percentile"]), choose_max(summary))


def choose_kl(summary: dict) -> int:
    return _argmin({int(n): v for n, v in summary["kl"].items()}) if summary.get("kl") else choose_max(summary)


def choose_mse(summary: dict) -> int:
    return _argmin({int(n): v for n, v in summary["mse"].items()}) if summary.get("mse") else choose_max(summary)


METHODS: dict[str, Callable[[dict], int]] = {
    "max": choose_max, "percentile": choose_percentile, "kl": choose_kl, "mse": choose_mse,
}
DEFAULT_METHOD = "mse"


def summary(stats: TensorStats) -> dict:
    """What a ranges JSON keeps of one tensor: enough to apply any method."""
    if stats.count == 0:
        return {"min": 0.0, "max": 0.0, "count": 0}
    out = {"min": stats.lo, "max": stats.hi, "count": stats.count, "zeros": stats.zeros}
    if stats.hist is not None and stats.exp is not None:
        out["mse"] = {str(n): v for n, v in stats.mse().items()}
        out["kl"] = {str(n): v if math.isfinite(v) else 1e30 for n, v in stats.kl().items()}
        out["percentile"] = stats.percentile()
    return out


def apply_method(method: str, summary_: dict) -> tuple[float, float]:
    """The (lo, hi) range a method gives one tensor: its raw range clipped to the chosen format."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method '{method}' (available: {', '.join(METHODS)})")
    lo, hi = float(summary_["min"]), float(summary_["max"])
    if summary_.get("count", 1) == 0 or (lo == 0 and hi == 0):
        return (0.0, 0.0)
    n = METHODS[method](summary_)
    span = 2.0 ** (7 - n)
    out = (max(lo, -span), min(hi, span))
    if out[0] > out[1]:  # cannot happen for ranges containing 0; keep it a valid interval
        out = (out[1], out[1])
    return out
