"""Data-driven quantization for the cmsis-nn backend: calibration summaries + calibration samples ->
QuantModel, with offline changes of formats, weights and biases only (so the emitted C and the
simulator stay bit-exact by construction: they read the same QLayer parameters).

  1. activation formats by a calibration method (kwscc.quant.methods; mse by default)
  2. the logits' format by what arm_softmax_s8 keeps of the float top-1 (choose_softmax_input_ranges)
  3. unsigned ReLU outputs: Format(n, zero point -128) where every reader allows it (one more bit;
     readers get CMSIS-NN's input_offset, see kwscc.quant.quantize)
  4. weight formats by squared error per output channel (weight_method "mse")
  5. the input: split into hi + lo int8 planes for a convolutional first layer
     (kwscc.quant.split_input), else a power-of-two step with any zero point, chosen by the error of
     the logits when only the input is rounded (choose_input_format)
  6. empirical bias correction: layer by layer in graph order, the mean per output channel of
     (integer pre-activation - float pre-activation) over the calibration samples, with the inputs
     the integer program really sees (simulated), is subtracted from the int32 bias.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kwscc.ir import Graph, Node
from kwscc.quant.binary import BINARY_OPS
from kwscc.ops.activation import TABLE_OPS
from kwscc.ops.recurrent import RECURRENT_OPS
from kwscc.quant.calibrate import (BatchValues, Feeds, Summaries, activation_names, float_batches, ranges_for,
                                   sample_count)
from kwscc.quant.formats import MAX_FRAC, MIN_FRAC, Format, dequantize, frac_bits_for, quantize_input
from kwscc.quant import gru, lstm
from kwscc.quant.methods import DEFAULT_METHOD
from kwscc.quant.quantize import QuantModel, quantize
from kwscc.quant.simulate import quantize_model_input, simulate_float_inputs, simulate_node
from kwscc.quant.split_input import find_split

log = logging.getLogger(__name__)

REFINABLE_BACKENDS = ("cmsis-nn",)  # backends whose integer program is the one simulate.py models
FORMAT_COPYING = ("Reshape", "MaxPool", "AveragePool", "Pad", "Transpose", "Crop")


@dataclass(frozen=True, slots=True)
class QuantOptions:
    method: str = DEFAULT_METHOD
    per_channel: bool = True
    rounding: str = "default"
    unsigned: bool = True
    weight_method: str = "mse"
    input_zero_point: bool = True
    split_input: bool = True  # the input as hi + lo int8 planes where the first layer allows (split_input.py)
    softmax_input: bool = True  # the logits' format chosen by the softmax's top-1 (choose_softmax_input_ranges)
    bias_correction: bool = True
    search: bool = False  # choose formats by the error of the final logits (search_formats)
    samples: int = 512  # calibration samples the data-driven steps use (bounds their memory)
    safety_net: bool = False  # leave out a step that lowers the agreement on the samples (_safety_net)

    @classmethod
    def seed(cls, **kw) -> "QuantOptions":
        """ML-KWS-for-MCU's quant_test.py: max rule everywhere, per-tensor weights, nothing else."""
        return cls(method="max", per_channel=False, unsigned=False, weight_method="max",
                   input_zero_point=False, split_input=False, softmax_input=False, bias_correction=False,
                   search=False, **kw)

    @classmethod
    def plain(cls, **kw) -> "QuantOptions":
        """Only the method's formats (what kwscc.quant.quantize.quantize alone gives)."""
        return cls(unsigned=False, weight_method="max", input_zero_point=False, split_input=False,
                   softmax_input=False, bias_correction=False, search=False, **kw)


def _readers_allow_offset(graph: Graph, tensor: str) -> bool:
    if tensor in graph.outputs:
        return False
    for reader in graph.consumers(tensor):
        if reader.op in BINARY_OPS:  # their kernels take an offset for each input
            continue
        if reader.op == "Concat":  # its output may keep the zero point
            if not _readers_allow_offset(graph, reader.outputs[0]):
                return False
            continue
        if reader.inputs[0] != tensor or any(tensor == t for t in reader.inputs[1:]):
            return False
        if reader.op in FORMAT_COPYING:
            if not _readers_allow_offset(graph, reader.outputs[0]):
                return False
        elif reader.op not in ("Conv", "Dense", "Softmax", *TABLE_OPS, *RECURRENT_OPS):
            return False  # a table maps any input format; LSTM/GRU fold the zero point into their input biases
    return True


def offset_tensors(graph: Graph) -> frozenset[str]:
    """Outputs of Conv/Dense layers and binary ops whose readers all accept a zero point (through
    CMSIS-NN's input_offset or a lookup table; pools, pads, transposes and reshapes pass it on)."""
    return frozenset(node.outputs[0] for node in graph.nodes()
                     if (node.op in ("Conv", "Dense") or node.op in BINARY_OPS)
                     and _readers_allow_offset(graph, node.outputs[0]))


def unsigned_tensors(graph: Graph) -> frozenset[str]:
    """The offset_tensors whose fused activation keeps them >= 0."""
    return frozenset(name for name in offset_tensors(graph)
                     if (act := graph.producer(name).attrs.get("act")) is not None and act[0] >= 0)


INPUT_SEARCH_SAMPLES = 64  # float passes of the model per candidate: keep them cheap
INPUT_MAX_CLIPPED = 0.02  # candidates clipping more of the input values than this are not tried


def _input_candidates(x: np.ndarray, symmetric: Format) -> list[Format]:
    """The symmetric max-rule format, and the two next finer steps with every 16th zero point that
    clips at most INPUT_MAX_CLIPPED of the values."""
    out = [symmetric]
    for n in (symmetric.frac + 1, symmetric.frac + 2):
        if n > MAX_FRAC:
            break
        for zp in range(-128, 128, 16):
            lo, hi = (-128 - zp) * 2.0**-n, (127 - zp) * 2.0**-n
            if np.mean((x < lo) | (x > hi)) <= INPUT_MAX_CLIPPED:
                out.append(Format(n, zp))
    return out


def choose_input_format(graph: Graph, name: str, feeds: dict[str, np.ndarray]) -> Format:
    """The format of input `name`, power-of-two step and any zero point, whose rounding alone (every
    layer in float) changes the logits least on a few calibration samples. The squared error of the
    input itself is a poor guide: an MFCC input in [-61, 23] measures best in Q6.1 by input error,
    yet step 2^-2 with zero point ~60, which clips the rare large energies, halves the logits' error
    (0.25-1.35 points of top-1 agreement on the shared KWS models, docs/quantization.md)."""
    from kwscc.ir.execute import run_float

    count = next(iter(feeds.values())).shape[0]
    idx = np.linspace(0, count - 1, min(count, INPUT_SEARCH_SAMPLES)).round().astype(np.int64)
    sub = {k: np.asarray(v[idx], np.float32) for k, v in feeds.items()}
    x = sub[name]
    symmetric = Format(frac_bits_for(float(np.abs(np.nan_to_num(x)).max())))
    if not np.all(np.isfinite(x)) or not np.any(x):
        return symmetric
    target = _logits(graph)
    ref = run_float(graph, sub)[target].astype(np.float64)
    cache: dict[Format, float] = {}

    def loss(fmt: Format) -> float:
        if fmt not in cache:
            rounded = dict(sub, **{name: dequantize(quantize_input(x, fmt), fmt)})
            cache[fmt] = float(np.mean((run_float(graph, rounded)[target] - ref) ** 2))
        return cache[fmt]

    best = min(_input_candidates(x, symmetric), key=loss)
    if best == symmetric:
        return best
    for step in (8, 4, 2, 1):  # refine the zero point around the coarse choice
        near = [Format(best.frac, z) for z in (best.zero_point - step, best.zero_point + step) if -128 <= z <= 127]
        best = min([best, *near], key=loss)
    return best


SOFTMAX_INPUT_CANDIDATES = range(-1, 5)  # offsets from the calibration method's format


def choose_softmax_input_ranges(graph: Graph, ranges: dict, samples: dict) -> dict:
    """Ranges with the format of every softmax input (the logits) chosen by what the softmax makes
    of it: the most calibration samples whose int8 arm_softmax_s8 output has the float model's
    top-1 class (ties: least squared error of the probabilities). A method's squared error weighs
    every logit alike, but only the largest few matter after a softmax: on the shared KWS models the
    method picks Q6.1 or Q5.2 while Q4.3 / Q3.4, which clip the large negative logits, keep the top-1
    class on 0.3-1.2 % more clips."""
    from kwscc.quant import kernels

    ranges = dict(ranges)
    for node in graph.nodes():
        if node.op != "Softmax" or node.inputs[0] not in samples["float"]:
            continue
        t = node.inputs[0]
        x = samples["float"][t]
        rows = np.moveaxis(x, node.attrs["axis"], -1).reshape(-1, x.shape[node.attrs["axis"]]).astype(np.float64)
        e = np.exp(rows - rows.max(axis=1, keepdims=True))
        ref = e / e.sum(axis=1, keepdims=True)
        lo, hi = ranges[t]
        n0 = frac_bits_for(max(abs(lo), abs(hi)))
        scored = []
        for n in (n0 + d for d in SOFTMAX_INPUT_CANDIDATES):
            if not MIN_FRAC <= n <= MAX_FRAC:
                continue
            q = np.clip(np.floor(rows * 2.0**n + 0.5), -128, 127)
            y = (kernels.softmax_s8(q, *kernels.softmax_params(n)).astype(np.float64) + 128) / 256
            wrong = int(np.sum(y.argmax(axis=1) != ref.argmax(axis=1)))
            scored.append((wrong, float(np.mean((y - ref) ** 2)), n))
        if scored:
            n = min(scored)[2]
            span = 2.0 ** (7 - n)
            raw_lo, raw_hi = float(x.min()), float(x.max())
            ranges[t] = (max(raw_lo, -span), min(raw_hi, span))
    return ranges


def _mean_pre_activation(node: Node, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Mean over samples and output positions of the node's pre-activation output, per channel.

    By linearity that is sum over kernel taps of w[c, tap, :] . (mean input seen through that tap),
    which costs a pass over the input per tap instead of a convolution."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    bias = np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)
    if node.op == "Dense":
        return x.reshape(x.shape[0], -1).mean(axis=0) @ w.reshape(w.shape[0], -1).T + bias
    a = node.attrs
    top, left, bottom, right = a["pads"]
    xp = np.pad(x.mean(axis=0, keepdims=True), ((0, 0), (top, bottom), (left, right), (0, 0)))  # linear: mean first
    cout, kh, kw, cg = w.shape
    (sh, sw), (dh, dw) = a["strides"], a["dilations"]
    oh = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    groups = x.shape[3] // cg
    out = bias.copy()
    for i in range(kh):
        for j in range(kw):
            view = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw, :]
            m = view.mean(axis=(0, 1, 2))  # [Cin]
            if groups == 1:
                out += w[:, i, j, :] @ m
            else:
                per_group = cout // groups
                mg = m.reshape(groups, cg)
                out += np.einsum("gok,gk->go", w[:, i, j, :].reshape(groups, per_group, cg), mg).reshape(-1)
    return out


RECURRENT_BIAS_CORRECTION = {"LSTM": lstm.correct_input_bias, "GRU": gru.correct_input_bias}


def correct_biases(qm: QuantModel, samples: dict[str, dict[str, np.ndarray]], values: dict | None = None) -> int:
    """Empirical bias correction in place; samples = {"float": {tensor: values}, "feeds": inputs}.
    Returns the number of layers changed; `values`, when given, receives the int8 value of every
    tensor of the corrected program on the samples (what simulate_float_inputs would give)."""
    graph = qm.graph
    feeds = samples["feeds"]
    floats = samples["float"]
    values = {} if values is None else values
    values.update({name: quantize_model_input(qm, name, x) for name, x in feeds.items()})
    changed = 0
    for node in graph.nodes():
        x_q = values.get(node.inputs[0])  # None for a constant operand (binary ops)
        if node.op in ("Conv", "Dense"):
            layer = qm.layers[node.name]
            in_fmt, out_fmt = qm.formats[node.inputs[0]], qm.formats[node.outputs[0]]
            w_t = graph.tensors[node.inputs[1]].data
            b_t = graph.tensors[node.inputs[2]].data if len(node.inputs) > 2 else None
            acc_frac = in_fmt.frac + layer.weight_frac.astype(np.int64)
            # the integer accumulator (bias included) as a real number, and what the float model computes
            w_real = layer.weights.astype(np.float64) * np.exp2(-layer.weight_frac.astype(np.float64)).reshape(
                (-1,) + (1,) * (layer.weights.ndim - 1))
            x_int = (x_q.astype(np.float64) + layer.input_offset) * 2.0 ** -in_fmt.frac  # as the kernel reads it
            acc_real = _mean_pre_activation(node, x_int, w_real, None) + layer.bias * np.exp2(-acc_frac)
            real = acc_real - out_fmt.zero_point * 2.0 ** -out_fmt.frac
            ref = _mean_pre_activation(node, floats[node.inputs[0]], w_t, b_t)
            err = real - ref
            delta = np.floor(err * np.exp2(acc_frac) + 0.5).astype(np.int64)
            if np.any(delta):
                new = layer.bias.astype(np.int64) - delta
                layer.bias = np.clip(new, -(2**31 - 1), 2**31 - 1).astype(np.int32)
                changed += 1
        elif node.op in RECURRENT_BIAS_CORRECTION:
            fix = RECURRENT_BIAS_CORRECTION[node.op]
            changed += fix(qm.layers[node.name], graph, node, x_q, floats[node.inputs[0]])
        values[node.outputs[0]] = simulate_node(qm, node, values)
    return changed


def sample_indices(total: int, count: int) -> np.ndarray:
    """`count` sample indices spread evenly over `total` samples (all of them when there are fewer)."""
    if total <= count:
        return np.arange(total)
    spread = np.linspace(0, total - 1, count).round().astype(np.int64)  # ascending: np.unique's result is
    return spread[np.concatenate([[True], spread[1:] != spread[:-1]])]  # its first of each run (no numpy.ma)


class SampleKeeper:
    """Keeps the inputs and the float values of `wanted` tensors for some samples while calibration
    streams over the batches (an observer of collect_stats), so the data-driven steps need no second
    run of the model."""

    def __init__(self, indices: np.ndarray, wanted: list[str]) -> None:
        self.indices, self.wanted = indices, wanted
        self.feeds: dict[str, list] = {}
        self.floats: dict[str, list] = {name: [] for name in wanted}

    def __call__(self, start: int, chunk: dict, values: BatchValues) -> None:
        n = next(iter(chunk.values())).shape[0]
        rows = self.indices[(self.indices >= start) & (self.indices < start + n)] - start
        if rows.size:
            for name, v in chunk.items():
                self.feeds.setdefault(name, []).append(v[rows])
            for name in self.wanted:
                self.floats[name].append(values.rows(name, rows))

    def samples(self) -> dict:
        return {"feeds": {k: np.concatenate(v) for k, v in self.feeds.items()},
                "float": {k: np.concatenate(v) for k, v in self.floats.items()}}


def sample_values(graph: Graph, feeds: Feeds, model_path: Path | None, count: int) -> dict:
    """`count` samples (spread over the set) and the float value of every tensor on them."""
    total = sample_count(feeds)
    wanted = activation_names(graph)
    keeper = SampleKeeper(sample_indices(total, count), wanted)
    for start, chunk, values in float_batches(graph, feeds, model_path, wanted, label="refining"):
        keeper(start, chunk, values)
    return keeper.samples()


def _logits(graph: Graph) -> str:
    """The tensor whose error the format search minimises: the softmax input, else the output."""
    out = graph.outputs[0]
    producer = graph.producer(out)
    return producer.inputs[0] if producer is not None and producer.op == "Softmax" else out


def search_formats(graph: Graph, ranges: dict, options: QuantOptions, samples: dict, unsigned) -> tuple[dict, int]:
    """Greedy, in graph order: for the input and each Conv/Dense output, try the formats one step
    coarser and finer than the method's and keep the one with the least squared error of the final
    logits on the samples. Returns the new ranges and how many formats changed."""
    target = _logits(graph)
    ref = samples["float"][target].astype(np.float64)

    def loss(r) -> float:
        qm = quantize(graph, r, per_channel=options.per_channel, rounding=options.rounding, unsigned=unsigned,
                      weight_method=options.weight_method)
        got = dequantize(simulate_float_inputs(qm, samples["feeds"])[target], qm.formats[target])
        return float(np.mean((got - ref) ** 2))

    ranges = dict(ranges)
    best = loss(ranges)
    changed = 0
    tensors = list(graph.inputs) + [n.outputs[0] for n in graph.nodes() if n.op in ("Conv", "Dense")]
    for name in tensors:
        lo, hi = ranges[name]
        n0 = frac_bits_for(max(abs(lo), abs(hi)))
        if lo == hi == 0:
            continue
        choice = None
        for n in (n0 - 1, n0 + 1):
            span = 2.0 ** (7 - n)
            trial = dict(ranges)
            trial[name] = (-span if lo < 0 else 0.0, span if hi > 0 else 0.0) if n < n0 else (max(lo, -span), min(hi, span))
            cost = loss(trial)
            if cost < best * 0.995:  # a clear gain only: the samples are few
                best, choice = cost, trial[name]
        if choice is not None:
            ranges[name] = choice
            changed += 1
    return ranges, changed


# the data-driven steps in the order they act, and the QuantOptions field that turns each on
STEPS = {"logits_format": "softmax_input", "format_search": "search", "unsigned_outputs": "unsigned",
         "weight_format_search": "weight_method", "split_input": "split_input",
         "input_zero_point": "input_zero_point", "bias_correction": "bias_correction"}


def enabled_steps(options: QuantOptions) -> list[str]:
    return [step for step, field in STEPS.items()
            if (options.weight_method == "mse" if field == "weight_method" else getattr(options, field))]


def applied_steps(options: QuantOptions, qm: QuantModel) -> list[str]:
    """The enabled steps that act on this model (no split without a convolutional first layer, ...)."""
    idle = {"input_zero_point"} if qm.split is not None else {"split_input"}
    if not any(node.op == "Softmax" for node in qm.graph.nodes()):
        idle.add("logits_format")
    if options.unsigned and not unsigned_tensors(qm.graph):
        idle.add("unsigned_outputs")
    return [step for step in enabled_steps(options) if step not in idle]


def _without(options: QuantOptions, steps) -> QuantOptions:
    off = {STEPS[step]: "max" if STEPS[step] == "weight_method" else False for step in steps}
    return replace(options, **off)


def _score(qm: QuantModel, simulated: dict | None, samples: dict) -> tuple[float, float]:
    """(top-1 agreement of the integer program with the float model on the samples, minus the squared
    error of its dequantized output): agreement first, the error breaks ties (and decides alone for an
    output of one value). `simulated`: the program's int8 values on the samples, when known."""
    out = qm.graph.outputs[0]
    ref = samples["float"][out].astype(np.float64)
    n = ref.shape[0]
    simulated = simulated or simulate_float_inputs(qm, samples["feeds"])
    got = dequantize(simulated[out], qm.formats[out]).reshape(n, -1)
    ref = ref.reshape(n, -1)
    top1 = float(np.mean(got.argmax(axis=1) == ref.argmax(axis=1))) if ref.shape[1] > 1 else 1.0
    return top1, -float(np.mean((got - ref) ** 2))


def agreement(qm: QuantModel, samples: dict) -> float:
    """Top-1 agreement of the integer program with the float model on the samples."""
    return _score(qm, None, samples)[0]


def _safety_net(graph: Graph, summaries: Summaries, options: QuantOptions, samples: dict,
                qm: QuantModel, simulated: dict | None) -> QuantModel:
    """The steps may not lower the agreement with the float model on the calibration samples: checked
    against no step at all (one more simulation); when they do lower it, each step in turn (last
    first) is left out where that raises the agreement."""
    applied = applied_steps(options, qm)
    if not applied:
        return qm
    full = _score(qm, simulated, samples)
    plain = _score(*_steps(graph, summaries, _without(options, enabled_steps(options)), samples), samples)
    count = next(iter(samples["feeds"].values())).shape[0]
    if full >= plain:
        log.info("data-driven steps: agreement with the float model on %d calibration samples %.4f (%.4f without "
                 "them): applied %s", count, full[0], plain[0], ", ".join(applied))
        qm.steps = tuple(applied)
        return qm
    log.warning("the data-driven steps lower the agreement with the float model on the calibration samples "
                "(%.4f, %.4f without them, output error %.3g vs %.3g): checking each", full[0], plain[0],
                -full[1], -plain[1])
    current, best, best_qm = options, full, qm
    for step in reversed(applied):
        trial_options = _without(current, [step])
        trial, trial_simulated = _steps(graph, summaries, trial_options, samples)
        score = _score(trial, trial_simulated, samples)
        if score > best:
            log.warning("step %s lowered the agreement with the float model on the calibration samples "
                        "(%.4f with it, %.4f without; output error %.3g vs %.3g): not applied",
                        step, best[0], score[0], -best[1], -score[1])
            current, best, best_qm = trial_options, score, trial
    best_qm.steps = tuple(applied_steps(current, best_qm))
    return best_qm


def _steps(graph: Graph, summaries: Summaries, options: QuantOptions,
           samples: dict | None) -> tuple[QuantModel, dict | None]:
    """The QuantModel with the steps `options` turns on (those needing data only with `samples`), and
    its int8 values on the samples when bias correction computed them on the way."""
    ranges = ranges_for(summaries, options.method)
    unsigned = unsigned_tensors(graph) if options.unsigned else frozenset()
    if options.softmax_input and samples is not None:
        ranges = choose_softmax_input_ranges(graph, ranges, samples)
    if options.search and samples is not None:
        ranges, changed = search_formats(graph, ranges, options, samples, unsigned)
        log.info("format search changed %d formats", changed)
    split = find_split(graph) if options.split_input else None
    input_formats = None
    if split is not None:
        log.info("input split into hi + lo int8 planes for layer '%s'", split.layer)
    elif options.input_zero_point and samples is not None:
        input_formats = {name: choose_input_format(graph, name, samples["feeds"]) for name in samples["feeds"]}
        log.info("input formats: %s", ", ".join(f"{n} {f}" for n, f in input_formats.items()))
    qm = quantize(graph, ranges, per_channel=options.per_channel, rounding=options.rounding, unsigned=unsigned,
                  weight_method=options.weight_method, input_formats=input_formats, split=split)
    simulated = None
    if options.bias_correction and samples is not None:
        simulated = {}
        changed = correct_biases(qm, samples, simulated)
        log.info("bias correction changed %d layers", changed)
    return qm, simulated


def quantize_calibrated(graph: Graph, summaries: Summaries, options: QuantOptions = QuantOptions(),
                        feeds: Feeds | None = None, model_path: Path | None = None,
                        samples: dict | None = None) -> QuantModel:
    """The QuantModel of `graph` for `options`; the data-driven steps need `feeds` (calibration samples),
    or `samples` = sample_values(...) computed once for several calls. With options.safety_net a step
    that lowers the agreement with the float model on those samples is not applied (qm.steps lists
    the steps applied)."""
    needs_data = options.bias_correction or options.search or options.input_zero_point or options.softmax_input
    if needs_data and samples is None and feeds is None:
        log.warning("the data-driven steps (logits and input formats, bias correction, format search) need "
                    "calibration samples (--calib): skipped")
    elif needs_data and samples is None:
        samples = sample_values(graph, feeds, model_path, options.samples)
    qm, simulated = _steps(graph, summaries, options, samples)
    if options.safety_net and samples is not None:
        return _safety_net(graph, summaries, options, samples, qm, simulated)
    qm.steps = tuple(applied_steps(options, qm)) if samples is not None else ()
    return qm


def quant_options(options) -> QuantOptions:
    """QuantOptions from the driver's CompileOptions. --weights seed: ML-KWS quant_test.py's weights
    (per tensor, dec_bits = 7 - ceil(log2 max|w|), biases rounded as they are, Qm.n activations)."""
    common = dict(method=options.calib_method, rounding=options.rounding, search=options.search_formats,
                  safety_net=True)
    if options.weights == "seed":
        return QuantOptions(per_channel=False, unsigned=False, weight_method="max", input_zero_point=False,
                            split_input=False, softmax_input=False, bias_correction=False, **common)
    return QuantOptions(per_channel=options.weights == "per-channel", unsigned=options.unsigned_relu,
                        input_zero_point=options.input_zero_point, split_input=options.split_input != "off",
                        bias_correction=options.bias_correction, **common)


@dataclass(slots=True)
class Calibration:
    """The driver's calibration stage, kept so the model can be quantized again with other options
    (the driver's --split-input auto) without running the model over the data again."""

    graph: Graph
    summaries: Summaries
    feeds: Feeds | None
    model_path: Path
    samples: dict | None = None
    provisional: bool = False  # placeholder ranges, no data (provisional_calibration)

    def quantize(self, backend, options) -> QuantModel:
        """The backend's quantization for the driver's CompileOptions; the cmsis-nn backend gets the
        data-driven steps too, on calibration samples computed once."""
        qopts = quant_options(options)
        if self.provisional:  # nothing to choose formats by: the plain max rule on the placeholder ranges
            qopts = replace(qopts, method="max", input_zero_point=False, softmax_input=False,
                            bias_correction=False, search=False)
        if backend.name not in REFINABLE_BACKENDS:
            return backend.quantize(self.graph, ranges_for(self.summaries, qopts.method),
                                    per_channel=qopts.per_channel, rounding=qopts.rounding)
        if self.samples is None and self.feeds is not None:
            self.samples = sample_values(self.graph, self.feeds, self.model_path, qopts.samples)
        return quantize_calibrated(self.graph, self.summaries, qopts, samples=self.samples)


def provisional_calibration(graph: Graph, model_path: Path) -> Calibration:
    """A stand-in for calibration when there is no data (`kwscc report` of a float model): every activation
    gets the range [-1, 1]. The formats are placeholders, but the arena, scratch, flash sizes and MACs
    come out as with real data, since none of them depends on a format (the split-input choice weighs
    the arena only)."""
    summaries = {name: {"min": -1.0, "max": 1.0, "count": 1} for name in activation_names(graph)}
    return Calibration(graph, summaries, None, model_path, provisional=True)


def calibrate_stage(graph: Graph, options, model_path: Path) -> Calibration:
    """Summaries from --ranges FILE when it exists, else from --calib DATA (and written to --ranges
    FILE when one is named)."""
    from kwscc.data import data_source
    from kwscc.errors import DataError
    from kwscc.quant.calibrate import calibrate, load_ranges, save_ranges

    feeds = data_source(options.calib, graph) if options.calib else None  # streamed: memory bounded
    path = Path(options.ranges_file) if options.ranges_file else None
    if path is not None and path.exists():
        summaries = load_ranges(path, graph)
        log.info("ranges from %s", path)
    elif feeds is None:
        raise DataError(f"ranges file {path} does not exist: give calibration data with --calib DATA to make it")
    else:
        keeper = None
        if options.backend in REFINABLE_BACKENDS:  # the data-driven steps' samples, from the same run
            total = sample_count(feeds)
            keeper = SampleKeeper(sample_indices(total, quant_options(options).samples), activation_names(graph))
        summaries = calibrate(graph, feeds, model_path, observe=keeper)
        if path is not None:
            save_ranges(path, summaries, {"model": model_path.name,
                                          "samples": sample_count(feeds)})
            log.info("wrote ranges to %s", path)
        if keeper is not None:
            return Calibration(graph, summaries, feeds, model_path, keeper.samples())
    return Calibration(graph, summaries, feeds, model_path)
