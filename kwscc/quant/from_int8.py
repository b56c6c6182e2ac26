"""Power-of-two formats for a quantized (int8) model compiled without data, from each tensor's own
(scale, zero point) as the model records them (Graph.recorded_ranges holds the range they span:
[scale * (-128 - zp), scale * (127 - zp)]).

Taking the recorded range as a calibration range loses twice: the max rule rounds every step up to
a power of two (the model's MFCC input scale 1.08 became a step of 2), and a ReLU output (zero point
-128) got a signed format, half its codes unused. Here instead
  - every step is the power of two nearest the model's own scale (in log2: at most a factor of
    sqrt(2) finer or coarser), never a doubling of it;
  - the input keeps an affine zero point: the format's window is centred where the model's is;
  - a tensor whose zero point is -128 (a ReLU-bounded range) is unsigned where its readers allow
    it (kwscc.quant.refine.unsigned_tensors);
  - other tensors stay symmetric, with the step nearest to what the model's range needs.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from kwscc.ir import Graph
from kwscc.quant.formats import MAX_FRAC, MIN_FRAC, Format
from kwscc.quant.quantize import UNSIGNED_ZERO_POINT, QuantModel, quantize

log = logging.getLogger(__name__)


def scale_zero_point(lo: float, hi: float) -> tuple[float, int]:
    """The (scale, zero point) of an int8 tensor spanning [lo, hi]."""
    scale = (hi - lo) / 255.0
    return scale, int(round(-128 - lo / scale)) if scale > 0 else 0


def nearest_frac(step: float) -> int:
    """n whose 2^-n is the power of two nearest `step` (in log2)."""
    if not (step > 0 and math.isfinite(step)):
        return 7
    return int(np.clip(-round(math.log2(step)), MIN_FRAC, MAX_FRAC))


def _symmetric_range(n: int) -> tuple[float, float]:
    """A range the max rule (frac_bits_for) maps to frac n."""
    return -(2.0 ** (7 - n)), 2.0 ** (7 - n)


def input_format(lo: float, hi: float) -> Format:
    """The step nearest the model's input scale, the window centred where the model's is."""
    scale, zp = scale_zero_point(lo, hi)
    n = nearest_frac(scale)
    centre = (lo + hi) / 2
    return Format(n, int(np.clip(round(-0.5 - centre * 2.0**n), -128, 127)))


def int8_formats(graph: Graph, recorded: dict[str, tuple[float, float]],
                 unsigned_allowed: frozenset[str]) -> tuple[dict, frozenset[str], dict[str, Format]]:
    """(ranges for kwscc.quant.quantize, unsigned tensors, input formats) matching the model's own
    quantization as closely as power-of-two steps allow."""
    ranges, unsigned = {}, set()
    for name, (lo, hi) in recorded.items():
        scale, zp = scale_zero_point(lo, hi)
        if zp <= UNSIGNED_ZERO_POINT and name in unsigned_allowed:
            n = nearest_frac(scale)
            ranges[name] = (0.0, 2.0 ** (8 - n))  # quantize gives an unsigned tensor frac_bits_for(hi) + 1
            unsigned.add(name)
        else:
            ranges[name] = _symmetric_range(nearest_frac(max(abs(lo), abs(hi)) / 128))
    inputs = {name: input_format(*recorded[name]) for name in graph.inputs}
    return ranges, frozenset(unsigned), inputs


RECURRENT_OPS = ("LSTM", "GRU")


def own_recurrence(graph: Graph) -> set[str]:
    """Tensors of a quantized model that its runtime computes through its own integer recurrence: the
    outputs of recurrent nodes and everything computed from them. The file's runtime carries an int8
    state through T steps (TF's int8 GRU_S agrees 0.81 with its float model), kwscc's kernels an int16
    one, so calibration takes these tensors from kwscc's float execution of the graph instead."""
    derived: set[str] = set()
    for node in graph.nodes():
        if node.op in RECURRENT_OPS or any(name in derived for name in node.inputs):
            derived.update(node.outputs)
    return derived


def quantize_int8_model(graph: Graph, per_channel: bool = True, rounding: str = "default",
                        unsigned: bool = True, weight_method: str = "mse") -> QuantModel:
    """The QuantModel of a model that records its own int8 quantization, without calibration data."""
    from kwscc.quant.refine import unsigned_tensors

    allowed = unsigned_tensors(graph) if unsigned else frozenset()
    ranges, uns, inputs = int8_formats(graph, graph.recorded_ranges, allowed)
    log.info("formats from the model's own int8 quantization: input %s, %d unsigned tensors",
             ", ".join(str(f) for f in inputs.values()), len(uns))
    return quantize(graph, ranges, per_channel=per_channel, rounding=rounding, unsigned=uns,
                    weight_method=weight_method, input_formats=inputs)
