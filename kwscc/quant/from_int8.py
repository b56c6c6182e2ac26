"""Power-of-two formats for a quantized (int8) model compiled without data, from each tensor's own
(scale, zero point) as the model records them (Graph.recorded_ranges holds the range they span:
[scale * (-128 - zp), scale * (127 - zp)]).

Taking the recorded range as a calibration range loses twice: the max rule rounds every step up to
a power of two (the model's MFCC input scale 1.08 became a step of 2), and a ReLU output (zero point
-128) got a signed format, half its codes unused. Here instead
  - every step is the power of two nearest the model's own scale (in log2: at most a factor of
    sqrt(2) finer or coarser), never a doubling of it;
  - a tensor keeps an affine zero point where its readers allow one (the input,
    kwscc.quant.refine.offset_tensors): zero point -128 (a ReLU-bounded range) stays -128, an unsigned
    tensor; any other window is centred where the model's is. A symmetric format of an asymmetric
    range such as [-166 s, 89 s] needs a step 1.3x the model's, then rounded to a power of two;
  - other tensors stay symmetric, with the step nearest to what the model's range needs;
  - Conv / Dense layers keep the model's int8 weights exactly (kwscc.quant.int8_weights).
On MLPerf Tiny's ResNet-8 (600 crops) the weights and the zero points raise top-1 agreement with LiteRT
running the same file from 84 % to 90 %.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from kwscc.ir import Graph
from kwscc.ops.recurrent import RECURRENT_OPS
from kwscc.quant.formats import MAX_FRAC, MIN_FRAC, Format, frac_bits_for
from kwscc.quant.quantize import UNSIGNED_ZERO_POINT, QuantModel, quantize
from kwscc.quant.split_input import find_split

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
    """The step nearest the model's scale, the window centred where the model's is (zero point -128,
    a range starting at 0, stays -128)."""
    scale, zp = scale_zero_point(lo, hi)
    n = nearest_frac(scale)
    if zp <= UNSIGNED_ZERO_POINT:
        return Format(n, UNSIGNED_ZERO_POINT)
    centre = (lo + hi) / 2
    return Format(n, int(np.clip(round(-0.5 - centre * 2.0**n), -128, 127)))


def int8_formats(graph: Graph, recorded: dict[str, tuple[float, float]],
                 offset_allowed: frozenset[str]) -> tuple[dict, dict[str, Format], dict[str, Format]]:
    """(symmetric ranges for kwscc.quant.quantize, output formats with a zero point for the tensors of
    `offset_allowed`, input formats) matching the model's own quantization as closely as power-of-two
    steps allow."""
    ranges = {name: _symmetric_range(nearest_frac(max(abs(lo), abs(hi)) / 128))
              for name, (lo, hi) in recorded.items()}
    affine = {name: input_format(*recorded[name]) for name in offset_allowed if name in recorded}
    inputs = {name: input_format(*recorded[name]) for name in graph.inputs}
    return ranges, affine, inputs


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
                        unsigned: bool = True, weight_method: str = "mse", keep_weights: bool = True,
                        split_input: bool = True) -> QuantModel:
    """The QuantModel of a model that records its own int8 quantization, without calibration data.
    unsigned=False keeps every tensor but the input symmetric; keep_weights=False re-rounds the weights
    to power-of-two steps (requantization by a shift: fewer instructions, lower agreement). split_input:
    the input as hi + lo int8 planes where an LSTM/GRU reads it (kwscc.quant.split_input: the GRU joins
    them, an LSTM reads them with [W, W_lo], its kept int8 weights too); a Conv keeps the model's own int8
    weights and an unsplit input (a split needs [W, W_lo] at one scale)."""
    from kwscc.quant.refine import offset_tensors

    allowed = offset_tensors(graph) if unsigned else frozenset()
    ranges, affine, inputs = int8_formats(graph, graph.recorded_ranges, allowed)
    split = find_split(graph) if split_input else None
    if split is not None and split.recurrent:  # symmetric (a split has no zero point): the range's max rule
        inputs[split.input] = Format(frac_bits_for(max(map(abs, graph.recorded_ranges[split.input]))))
        log.info("input split into hi + lo int8 planes for layer '%s'", split.layer)
    else:
        split = None
    qm = quantize(graph, ranges, per_channel=per_channel, rounding=rounding, weight_method=weight_method,
                  input_formats=inputs, output_formats=affine, int8_weights=keep_weights, split=split)
    weighted = [qm.layers[node.name] for node in graph.nodes() if node.op in ("Conv", "Dense")]
    log.info("formats from the model's own int8 quantization: input %s, %d tensors with a zero point; "
             "%d of %d weighted layers keep the model's int8 weights", ", ".join(str(f) for f in inputs.values()),
             sum(f.zero_point != 0 for t, f in qm.formats.items() if t not in graph.inputs),
             sum(layer.multiplier is not None for layer in weighted), len(weighted))
    return qm
