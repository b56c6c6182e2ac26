"""TFLite sequences and loops as plain IR ops: UNPACK (one frame per output) and GATHER with a
constant index become Crops (+ Reshape) of the time axis (kwscc.frontends.frames).
"""
from __future__ import annotations

from kwscc.errors import ModelError, UnsupportedError

UNPACK_OPTIONS = ("UnpackOptions", ("Num", "Axis"))
GATHER_OPTIONS = ("GatherOptions", ("Axis", "BatchDims"))


def _take(r, op, x: str, axis: int, t: int, out_idx: int) -> None:
    out = r.name(out_idx)
    added = r.frames.take(x, axis, t, out, r.tensor(out_idx).shape, op.where, op.name)
    for name in added:
        r.range_from[name] = op.inputs[0]


def unpack(r, op) -> None:
    """UNPACK along an axis: output i is frame i."""
    x = r.activation(op, op.inputs[0])
    shape = r.shape(x)
    axis = int(op.options.get("Axis", 0))
    if not -len(shape) <= axis < len(shape):
        raise ModelError(f"{op.where}: axis {axis} is outside the {len(shape)}-D input {list(shape)}")
    axis %= len(shape)
    if len(op.outputs) != shape[axis]:
        raise ModelError(f"{op.where}: {len(op.outputs)} outputs for {shape[axis]} frames of {list(shape)}")
    for t, out_idx in enumerate(op.outputs):
        _take(r, op, x, axis, t, out_idx)


def gather(r, op) -> None:
    """GATHER of one frame with a constant (scalar or single) index."""
    x = r.activation(op, op.inputs[0])
    shape = r.shape(x)
    index = r.ints(op, 1, "indices")
    if len(index) != 1 or int(op.options.get("BatchDims", 0)):
        raise UnsupportedError(f"{op.where}: only a GATHER of one frame with a constant index is supported")
    axis = int(op.options.get("Axis", 0)) % len(shape)
    if not 0 <= index[0] < shape[axis]:  # TFLite refuses negative indices too
        raise ModelError(f"{op.where}: index {index[0]} is outside the {shape[axis]} frames of '{x}'")
    _take(r, op, x, axis, index[0], op.outputs[0])

