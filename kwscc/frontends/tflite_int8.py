"""int8 TFLite files of unrolled recurrent networks: one float bias for the T per-step copies of a bias.

The full-int8 converter stores the weights of an unrolled cell once, but gives every step its own int32
bias: the bias scale is input scale x weight scale, and each step's input has its own scale. Read
one by one, the T biases dequantize to T slightly different float vectors (apart by up to half a
quantization step), so the graph no longer repeats one cell T times.

Every step's int32 bias is round(b / s_t) of the same float bias b, so b lies in the intersection of
the intervals [(q_t - 1/2) s_t, (q_t + 1/2) s_t] over the steps. Its midpoint, per channel, is one float
bias that quantizes back to every step's int32 bias at that step's scale: kwscc reads it for all T
copies. Copies whose intervals do not meet come from different float biases and are read as they are.

Step 0 is often folded with the zero initial state: a recurrent product W h + b becomes the constant b,
stored in int8 (for Keras's GRU, split into its three gates). Such an int8 constant that lies, element by
element, within half a step of a slice of an int32 bias is read as that slice: a value the file's own
int8 constant stands for, and the one the other steps use, so step 0 is the same cell again.
"""
from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

log = logging.getLogger(__name__)

# op -> (weights input, bias input): the layers whose unrolled copies share weights
WEIGHTED_OPS = {"FULLY_CONNECTED": (1, 2), "CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2)}


def _bias_interval(t) -> tuple[np.ndarray, np.ndarray]:
    """The real interval [lo, hi] per channel from which `t`'s integer values were rounded."""
    scale = np.asarray(t.scale, np.float64)
    q = t.data.astype(np.float64) - np.asarray(t.zero_point, np.float64)
    return (q - 0.5) * scale, (q + 0.5) * scale


def _quantized_bias(t) -> bool:
    return (t.is_const and t.data.dtype.kind == "i" and t.data.ndim == 1 and t.scale is not None
            and t.scale.size in (1, t.data.size) and not t.sparse)


def shared_biases(model) -> dict[int, tuple[int, np.ndarray]]:
    """{bias tensor index: (index of the group's first bias, the group's float bias)} for every group of
    two or more quantized biases read with one weight tensor whose intervals meet."""
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for op in model.ops:
        positions = WEIGHTED_OPS.get(op.name)
        if positions is None or max(positions) >= len(op.inputs) or min(op.inputs[p] for p in positions) < 0:
            continue
        weights, bias = (op.inputs[p] for p in positions)
        if _quantized_bias(model.tensors[bias]) and bias not in groups[(op.name, weights)]:
            groups[(op.name, weights)].append(bias)
    shared: dict[int, tuple[int, np.ndarray]] = {}
    for (_, weights), biases in groups.items():
        tensors = [model.tensors[i] for i in biases]
        if len(biases) < 2 or len({t.data.shape for t in tensors}) > 1:
            continue
        intervals = [_bias_interval(t) for t in tensors]
        lo = np.max([i[0] for i in intervals], axis=0)
        hi = np.min([i[1] for i in intervals], axis=0)
        if np.any(lo > hi):
            log.debug("the %d biases read with '%s' come from different float biases: kept apart",
                      len(biases), model.tensors[weights].name)
            continue
        value = ((lo + hi) / 2).astype(np.float32)
        for i in biases:
            shared[i] = (biases[0], value)
        log.debug("%d per-step biases read with '%s' are one float bias", len(biases), model.tensors[weights].name)
    return shared


MIN_MATCHED = 8  # elements an int8 constant needs before it is matched to a bias slice


def _int8_constant(t) -> bool:
    return (t.is_const and t.type in ("INT8", "INT16") and t.scale is not None and t.scale.size == 1
            and t.data.size >= MIN_MATCHED and not t.sparse)


def bias_slices(model, shared: dict[int, tuple[int, np.ndarray]]) -> dict[int, np.ndarray]:
    """{int8 constant index: the slice of an int32 bias it rounds} for constants that round one."""
    by_first: dict[int, np.ndarray] = {}  # one value per group of shared biases
    for op in model.ops:
        positions = WEIGHTED_OPS.get(op.name)
        if positions is None or positions[1] >= len(op.inputs) or op.inputs[positions[1]] < 0:
            continue
        idx = op.inputs[positions[1]]
        t = model.tensors[idx]
        if _quantized_bias(t):
            value = shared[idx][1] if idx in shared else ((t.data.astype(np.float64) - t.zero_point) * t.scale)
            by_first.setdefault(shared[idx][0] if idx in shared else idx, np.asarray(value, np.float32))
    biases = list(by_first.values())
    matched: dict[int, np.ndarray] = {}
    if not biases:
        return matched
    for idx, t in enumerate(model.tensors):
        if not _int8_constant(t):
            continue
        lo, hi = (v.reshape(-1) for v in _bias_interval(t))
        for value in biases:
            starts = range(0, value.size - lo.size + 1, lo.size)
            found = next((value[s:s + lo.size] for s in starts
                          if np.all((value[s:s + lo.size] >= lo) & (value[s:s + lo.size] <= hi))), None)
            if found is not None:
                matched[idx] = found.reshape(t.data.shape)
                log.debug("int8 constant '%s' is read as the bias slice it rounds", t.name)
                break
    return matched


# ops whose output holds values of their input (backwards: the input holds every value of the output)
SAME_VALUES = ("Reshape", "Transpose")
SUBSET_VALUES = (*SAME_VALUES, "Crop")


def _union(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return min(a[0], b[0]), max(a[1], b[1])


def widen_requantized(graph, ranges: dict[str, tuple[float, float]],
                      requantized: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """Ranges that also hold what the model's requantizing QUANTIZE ops (int8 -> int8) record.

    The converter calibrates each requantized copy on its own: the frames of an unrolled sequence are
    requantized from the input's scale to their own, and only the frame that is not (the last one)
    fixes the input's scale; so the input is clipped to that frame's range (ML-KWS's LSTM and GRU:
    [-60.5, 5.2], while the other frames reach 22.7). A requantized tensor's range here spans its
    copies' ranges too, and the widening flows back to the tensors its values come from (Crop,
    Reshape, Transpose: up to the model input) and forward through Reshape and Transpose.
    """
    ranges = dict(ranges)
    for name, extra in requantized.items():
        for rng in extra:
            if name in ranges:
                ranges[name] = _union(ranges[name], rng)
    if not requantized:
        return ranges
    nodes = list(graph.nodes())
    changed = True
    while changed:
        changed = False
        for node in reversed(nodes):
            src, out = node.inputs[0] if node.inputs else None, node.outputs[0]
            if node.op not in SUBSET_VALUES or src not in ranges or out not in ranges:
                continue
            wider = _union(ranges[src], ranges[out])
            if wider != ranges[src]:
                ranges[src], changed = wider, True
            if node.op in SAME_VALUES and wider != ranges[out]:
                ranges[out], changed = wider, True
    return ranges
