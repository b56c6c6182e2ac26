"""The split input: the model input as two int8 planes, so the first layer sees it ~3 bits finer.

An int8 input in a power-of-two format is often the accuracy bottleneck of a keyword-spotting
model: MFCC features span [-61, 23], so Q6.1 rounds them to 0.5, and rounding only the input costs
the shared KWS models 2-3 points of top-1 agreement. CMSIS-NN's s16 kernels would lift that, but they
need int16 activations in RAM and kernels kwscc cannot check against golden vectors here. Instead:

  hi = round(x * 2^n)              (the input's Qm.n, clamped to int8)
  lo = round((x * 2^n - hi) * 2^B) (the rounding residual, B = SPLIT_BITS finer, clamped to int8)

so x = (hi + lo * 2^-B) * 2^-n within 2^-(n+B+1). Each input pixel's (or time step's) C channels become
2C: C of hi then C of lo. The first layer reads the input through reshapes only and is a Conv without
groups or a recurrent layer (LSTM, GRU; see below). A Conv runs over those 2C channels with int8 weights [W, W_lo], W_lo = round(W * 2^-B) (half up), so one
ordinary arm_convolve_wrapper_s8 call accumulates hi * W + lo * W * 2^-B: x * W with a finer input.
Flash holds only W: the generated C builds the [W, W_lo] filter in the layer's scratch (arena)
before the call. What it costs: the first layer's MACs double, its scratch grows by twice its
weights (DS_CNN_S: 5,120 B, while the arena's peak is elsewhere), and the caller's input buffer
holds 2 int8 per input value.

Why B = 4 and not 7: the lo weights are W * 2^-B rounded to the int8 grid, so per tap the
accumulator's error is lo * (rounding of the lo weight) + (residual of lo) * w, in units of the
accumulator: about 0.17 * 2^(B-1) + 0.29 * |w| / 2^B (|lo| <= 2^(B-1), int8 weights around 40).
The sum is least near B = 3.5, about 7x below the error of the int8 input alone (0.29 * |w|);
a larger B only moves the error into the lo weights. Measured (top-1 agreement, 2000 clips) for
B = 2..6: CNN_S 0.9905 / 0.990 / 0.990 / 0.9915 / 0.988, DS_CNN_S 0.9835 / 0.9805 / 0.983 / 0.9805 /
0.979, against 0.9805 / 0.974 without the split (with an input zero point instead).

A recurrent first layer (its input [N, T, F]: F hi then F lo per time step) costs no scratch:
  - GRU (kwscc's own kernel): x = hi * 2^B + lo exactly, an input 2^B finer (Format(n + B)); the
    kernel sums hi . W_g, scales it by 2^B and adds lo . W_g (int8 or int16 W_g, no extra flash);
  - LSTM: the kernels' input part reads 2F columns with int8 weights [W, W_lo], as a Conv does
    (CMSIS-NN's arm_lstm_unidirectional_s8 reads its input with its own int8 products); flash
    holds both (4 H F more bytes).
An MFCC input's small coefficients need that: on the Keras GRU (10 MFCCs, 2000 test clips, every other
layer quantized) the input in Q6.1 flips 2 clips against the float model, Q6.1 for the energy column and
Q3.4 for the others 1 (per-feature steps), a step of 2^-5 for all (the split) none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kwscc.ir import Graph
from kwscc.ops.recurrent import RECURRENT_OPS
from kwscc.quant.formats import Format, quantize_input

SPLIT_BITS = 4  # lo holds the residual in [-8, 8]; inputs past the calibrated range clamp at +-127


@dataclass(frozen=True, slots=True)
class InputSplit:
    input: str  # the graph input
    layer: str  # the Conv, LSTM or GRU that reads it
    tensors: frozenset[str]  # the input and the reshapes of it on the way: all hold 2C channels
    channels: int  # C: channels of the layer's input (a recurrent layer's features F)
    bits: int = SPLIT_BITS
    recurrent: bool = False  # the layer is an LSTM or GRU


def find_split(graph: Graph) -> InputSplit | None:
    """The split for `graph`, or None: one input, read only through reshapes by one Conv whose
    groups are 1 or by an LSTM/GRU (a Dense first layer would double a whole weight matrix: not split)."""
    if len(graph.inputs) != 1:
        return None
    tensor = graph.inputs[0]
    path = [tensor]
    while True:
        readers = graph.consumers(tensor)
        if len(readers) != 1 or readers[0].inputs[0] != tensor or tensor in graph.outputs:
            return None
        node = readers[0]
        if node.op == "Reshape":
            tensor = node.outputs[0]
            path.append(tensor)
            continue
        if node.op in RECURRENT_OPS:
            return InputSplit(graph.inputs[0], node.name, frozenset(path), int(graph.tensors[tensor].shape[2]),
                              recurrent=True)
        if node.op != "Conv" or node.attrs["group"] != 1 or node.attrs.get("layout", "NHWC") != "NHWC":
            return None
        return InputSplit(graph.inputs[0], node.name, frozenset(path), int(graph.tensors[tensor].shape[3]))


def joined(planes: np.ndarray, bits: int) -> np.ndarray:
    """A recurrent layer's split input [..., 2F] (hi then lo) as the values it stands for, hi * 2^bits +
    lo (int64 [..., F]): the input 2^bits finer, as kwscc_gru_s8 sums it."""
    features = planes.shape[-1] // 2
    return (planes[..., :features].astype(np.int64) << bits) + planes[..., features:]


def split_weights(qw: np.ndarray, bits: int) -> np.ndarray:
    """int8 OHWI (or LSTM [4H, F]) weights W -> [W, W_lo] along I, W_lo = floor((W + 2^(bits-1)) / 2^bits): the filter the
    generated C builds (and the simulator runs)."""
    w = qw.astype(np.int16)
    lo = (w + (1 << (bits - 1))) >> bits
    return np.concatenate([w, lo], axis=-1).astype(np.int8)


def split_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a split tensor: its last (channel) axis doubled."""
    return tuple(shape[:-1]) + (2 * shape[-1],)


def quantize_split(x: np.ndarray, fmt: Format, split: InputSplit) -> np.ndarray:
    """What the generated <name>_quantize_input computes for a split input, in float32 exactly as
    the C does: shape [N, ...] -> [N, ..., 2 * last axis], per pixel C hi channels then C lo."""
    x = np.asarray(x, np.float32)
    hi = quantize_input(x, fmt)
    with np.errstate(invalid="ignore"):
        residual = x * np.float32(2.0**fmt.frac) - hi.astype(np.float32)  # exact in float32
    lo = quantize_input(residual, Format(split.bits))
    n = x.shape[0]
    planes = np.concatenate([hi.reshape(n, -1, split.channels), lo.reshape(n, -1, split.channels)], axis=-1)
    return planes.reshape(split_shape(x.shape))
