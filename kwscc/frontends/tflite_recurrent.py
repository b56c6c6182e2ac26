"""TFLite UNIDIRECTIONAL_SEQUENCE_LSTM -> kwscc's LSTM op (kwscc.ops.recurrent), and STRIDED_SLICE
where it takes the last step of its output sequence.

The file's state tensors are variables that LiteRT carries from one invoke to the next; kwscc
starts every NAME_run from the initial state (zero, or the constant the file gives), as LiteRT does
after reset_all_variables(). cell_clip bounds the cell state; peepholes and a projection (with
proj_clip; its bias must be zero or absent) map to the LSTM op's P and Wp; CIFG (no input gate) and
layer normalisation are refused.
"""
from __future__ import annotations

import numpy as np

from kwscc.errors import UnsupportedError
from kwscc.frontends import tflite_loops
from kwscc.frontends.sequence import add_recurrent, last_step, time_major_input
from kwscc.ops.recurrent import LSTM_INPUTS

# input positions of the fused op (tensorflow/lite/kernels/lstm_shared.h)
INPUT_WEIGHTS = {"i": 1, "f": 2, "c": 3, "o": 4}
RECURRENT_WEIGHTS = {"i": 5, "f": 6, "c": 7, "o": 8}
PEEPHOLES = {"i": 9, "f": 10, "o": 11}
BIASES = {"i": 12, "f": 13, "c": 14, "o": 15}
PROJECTION, PROJECTION_BIAS, OUTPUT_STATE, CELL_STATE, LAYER_NORM = 16, 17, 18, 19, (20, 21, 22, 23)
GATE_ORDER = "iofc"  # kwscc's (ONNX's) block order
TANH = 4

STRIDED_SLICE_OPTIONS = ("StridedSliceOptions", ("BeginMask", "EndMask", "EllipsisMask", "NewAxisMask",
                                                 "ShrinkAxisMask", "Offset"))
LSTM_OPTIONS = ("UnidirectionalSequenceLSTMOptions", ("FusedActivationFunction", "CellClip", "ProjClip",
                                                      "TimeMajor", "AsymmetricQuantizeInputs"))


def _present(op, pos: int) -> bool:
    return pos < len(op.inputs) and op.inputs[pos] >= 0


def _check(r, op) -> None:
    if not _present(op, INPUT_WEIGHTS["i"]):
        raise UnsupportedError(f"{op.where}: CIFG (no input gate weights) is not supported")
    if _present(op, PROJECTION_BIAS) and np.any(r.const_value(op, PROJECTION_BIAS, "projection bias")):
        raise UnsupportedError(f"{op.where}: a nonzero projection bias (input {PROJECTION_BIAS}) is not supported")
    if any(_present(op, pos) for pos in LAYER_NORM):
        raise UnsupportedError(f"{op.where}: layer normalisation (inputs 20-23) is not supported")
    act = int(op.options.get("FusedActivationFunction", TANH))
    if act != TANH:
        raise UnsupportedError(f"{op.where}: activation code {act} (field fused_activation_function) is not "
                               "supported, only TANH")


def _state(r, op, pos: int, size: int) -> np.ndarray:
    """The initial state: a variable (zero at reset) or a constant."""
    if not _present(op, pos) or not r.tensor(op.inputs[pos]).is_const:
        return np.zeros(size, np.float32)
    return r.const_value(op, pos, "initial state").reshape(size).astype(np.float32)


def _gates(r, op, positions: dict[str, int], what: str) -> np.ndarray:
    return np.concatenate([r.const_value(op, positions[g], f"{what} {g}") for g in GATE_ORDER]).astype(np.float32)


def _constants(r, op, hidden: int, out_size: int) -> list[np.ndarray]:
    w = _gates(r, op, INPUT_WEIGHTS, "input weights")
    rr = _gates(r, op, RECURRENT_WEIGHTS, "recurrent weights")
    b = _gates(r, op, BIASES, "bias")
    if any(_present(op, PEEPHOLES[g]) for g in "ifo"):
        p = np.concatenate([r.const_value(op, PEEPHOLES[g], f"peephole {g}") for g in "iof"]).astype(np.float32)
    else:
        p = np.zeros(3 * hidden, np.float32)
    consts = [w, rr, b, p, _state(r, op, OUTPUT_STATE, out_size), _state(r, op, CELL_STATE, hidden)]
    if _present(op, PROJECTION):
        consts.append(r.const_value(op, PROJECTION, "projection weights").astype(np.float32))
    return consts


def sequence_lstm(r, op) -> None:
    _check(r, op)
    x = r.activation(op, op.inputs[0])
    shape = r.shape(x)
    time_major = bool(op.options.get("TimeMajor", False))
    if len(shape) != 3:
        raise UnsupportedError(f"{op.where}: input must be 3-D, got {list(shape)}")
    steps, batch, features = (shape[0], shape[1], shape[2]) if time_major else (shape[1], shape[0], shape[2])
    if batch != 1:
        raise UnsupportedError(f"{op.where}: batch size {batch} is not supported (only 1)")
    if time_major and x in r.graph.inputs and steps > 1:
        raise time_major_input(op.where, x, steps, features)
    hidden = r.tensor(op.inputs[INPUT_WEIGHTS["o"]]).shape[0]
    out_size = r.tensor(op.inputs[RECURRENT_WEIGHTS["o"]]).shape[-1]  # the projection's size if it has one
    if time_major:
        seq = r.internal(f"{x}_seq", op.inputs[0])
        x = r.emit(op, "Reshape", [x], {"shape": (1, steps, features)}, outputs=[seq], helper="batch_first")
    consts = [r.graph.add_const(f"{r.name(op.outputs[0])}_{what}", value).name
              for what, value in zip(LSTM_INPUTS[1:], _constants(r, op, hidden, out_size))]
    clip, proj_clip = float(op.options.get("CellClip", 0.0)), float(op.options.get("ProjClip", 0.0))
    attrs = {"hidden_size": hidden, "cell_clip": clip if clip > 0 else None, "output": "sequence"}
    if _present(op, PROJECTION):
        attrs["proj_clip"] = proj_clip if proj_clip > 0 else None
    out = r.name(op.outputs[0])
    own = out if not time_major else r.internal(f"{out}_batch_first", op.outputs[0])
    add_recurrent(r.graph, f"{op.name.lower()}_{op.index}", "LSTM", [x, *consts], attrs, own)
    if time_major:
        r.emit(op, "Reshape", [own], {"shape": (steps, 1, out_size)}, outputs=[out], helper="time_major")


def _bounds(r, op, shape: tuple[int, ...]) -> list[tuple[int, int, int, bool]] | None:
    """(begin, end, stride, shrink) per axis with masks applied and negatives resolved."""
    o = op.options
    if o.get("EllipsisMask") or o.get("NewAxisMask") or o.get("Offset"):
        return None
    begin, end, strides = (r.ints(op, i, what) for i, what in ((1, "begin"), (2, "end"), (3, "strides")))
    out = []
    for axis, dim in enumerate(shape):
        b, e, s = begin[axis], end[axis], strides[axis]
        shrink = bool(o.get("ShrinkAxisMask", 0) >> axis & 1)
        b = 0 if o.get("BeginMask", 0) >> axis & 1 else (b + dim if b < 0 else b)
        e = dim if o.get("EndMask", 0) >> axis & 1 else (e + dim if e < 0 else e)
        if shrink:
            e = b + 1
        out.append((b, e, s, shrink))
    return out


def strided_slice(r, op) -> None:
    """STRIDED_SLICE of an activation: the last step of an LSTM's output sequence, or plain Crops; of
    integers known at compile time (the batch size SHAPE gives): evaluated."""
    known = r.known_value(op.inputs[0]) if op.inputs and op.inputs[0] >= 0 else None
    if known is not None and known.dtype.kind in "iu" and len(op.inputs) > 3:
        bounds = _bounds(r, op, known.shape)
        if bounds is None:
            raise UnsupportedError(f"{op.where}: a STRIDED_SLICE of constants with ellipsis, new-axis or offset "
                                   "masks is not supported")
        value = known[tuple(slice(b, e, st) for b, e, st, _ in bounds)]
        r.folded[op.outputs[0]] = value.reshape([d for d, (*_, shrink) in zip(value.shape, bounds) if not shrink])
        return
    x = r.activation(op, op.inputs[0])
    shape = r.shape(x)
    bounds = _bounds(r, op, shape) if len(op.inputs) > 3 else None
    partial = [] if bounds is None else [i for i, (b, e, s, _) in enumerate(bounds) if (b, e, s) != (0, shape[i], 1)]
    if bounds is not None and len(partial) == 1:
        axis = partial[0]
        b, e, s, _ = bounds[axis]
        out = r.name(op.outputs[0])
        last = last_step(r.graph, x, axis, b, e, s, out, r.tensor(op.outputs[0]).shape)
        if last is not None:
            r.range_from[last] = op.inputs[0]
            return
    if bounds is not None and tflite_loops.strided_slice(r, op, x, bounds):
        return
    raise UnsupportedError(f"{op.where}: only a STRIDED_SLICE with unit strides, or one that takes the last step "
                           "of an LSTM output sequence, is supported")
