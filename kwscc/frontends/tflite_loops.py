"""TFLite sequences and loops as plain IR ops.

- UNPACK (one frame per output) and GATHER with a constant index become Crops (+ Reshape) of the
  time axis (kwscc.frontends.frames).
- WHILE whose condition depends only on constants (a counter against the sequence length) is
  unrolled at import: the cond subgraph is evaluated on the counters, the body subgraph converted
  once per step by a reader of its own (same IR graph), the loop variables flowing from step t's
  ops to step t+1's. Counter arithmetic folds (fold()); the body's weights are one IR constant
  each whatever the trip count; at step 0 a constant initial state is a constant input.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from kwscc.check.tflite_model import check_model
from kwscc.errors import ModelError, UnsupportedError

log = logging.getLogger(__name__)

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
    num = int(op.options.get("Num", len(op.outputs)))
    if num != len(op.outputs):
        raise ModelError(f"{op.where}: num {num} (field num) differs from its {len(op.outputs)} outputs")
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
    axis = int(op.options.get("Axis", 0))
    if not -len(shape) <= axis < len(shape):
        raise ModelError(f"{op.where}: axis {axis} is outside the {len(shape)}-D input {list(shape)}")
    axis %= len(shape)
    if not 0 <= index[0] < shape[axis]:  # TFLite refuses negative indices too
        raise ModelError(f"{op.where}: index {index[0]} is outside the {shape[axis]} frames of '{x}'")
    _take(r, op, x, axis, index[0], op.outputs[0])



# ---------------------------------------------------------------------------------------------------
# Integer constant arithmetic (loop counters, conditions): evaluated, never emitted
# ---------------------------------------------------------------------------------------------------
CONST_OPS = {
    "ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "MINIMUM": np.minimum, "MAXIMUM": np.maximum,
    "LESS": np.less, "LESS_EQUAL": np.less_equal, "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal,
    "EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "LOGICAL_AND": np.logical_and, "LOGICAL_OR": np.logical_or,
    "LOGICAL_NOT": np.logical_not,
}


def fold(r, op) -> bool:
    """Evaluate `op` if it is integer / boolean arithmetic on values known at compile time."""
    fn = CONST_OPS.get(op.name)
    if fn is None or not op.inputs or int(op.options.get("FusedActivationFunction", 0)):
        return False
    values = [r.known_value(i) if i >= 0 else None for i in op.inputs]
    if any(v is None or v.dtype.kind not in "iub" for v in values):
        return False
    r.folded[op.outputs[0]] = np.asarray(fn(*values))
    return True


# ---------------------------------------------------------------------------------------------------
# WHILE with a trip count known at compile time: the body once per step
# ---------------------------------------------------------------------------------------------------
WHILE_OPTIONS = ("WhileOptions", ("CondSubgraphIndex", "BodySubgraphIndex"))
MAX_STEPS = 1000  # a keyword spotter runs 20-100 steps; more is a loop kwscc should not unroll


def _renamed(r, sub, tag: str):
    """A copy of subgraph `sub` whose activations have names of their own in the IR graph."""
    taken = {t.name for t in r.m.tensors}
    tensors = []
    for t in sub.tensors:
        if not t.is_const:
            name = r.graph.unique_tensor_name(f"{t.name}_{tag}")
            while name in taken:
                name = r.graph.unique_tensor_name(f"{name}_")
            taken.add(name)
            t = replace(t, name=name)
        tensors.append(t)
    return replace(sub, tensors=tensors, subgraphs=r.m.subgraphs)


def _inner(r, sub, tag: str, values: list, weights: dict):
    """A reader of subgraph `sub` with its inputs set to `values` (IR names or constants)."""
    inner = type(r)(_renamed(r, sub, tag), r.graph)
    inner.frames, inner.const_names, inner.check_shapes = r.frames, weights, r.check_shapes
    inner.prefix = f"{r.prefix}{tag}_"
    for idx, value in zip(sub.inputs, values):
        if isinstance(value, str):
            inner.alias[idx] = value
        else:
            inner.folded[idx] = value
            inner.step_values.add(idx)
    return inner


def _value(r, idx: int, op):
    """A loop variable: its constant value, or the IR name of the activation."""
    value = r.known_value(idx)
    return value if value is not None else r.activation(op, idx)


def _continues(r, op, cond, values: list, step: int) -> bool:
    c = _inner(r, cond, f"while{op.index}_cond{step}", values, {})
    for cop in cond.ops:
        if not fold(c, cop):
            raise UnsupportedError(f"{op.where}: the loop's trip count is not known at compile time: its condition "
                                   f"({cop.where}) reads {cop.name} of values that change at run time; only loops "
                                   "over a constant counter are supported")
    result = c.known_value(cond.outputs[0]) if len(cond.outputs) == 1 else None
    if result is None or result.size != 1:
        raise UnsupportedError(f"{op.where}: the loop's condition (subgraph {op.options['CondSubgraphIndex']}) "
                               "does not give one value known at compile time")
    return bool(result.reshape(-1)[0])


def while_loop(r, op) -> None:
    """WHILE: the cond subgraph is evaluated on the constant counters; the body is converted once per
    step with the loop variables carried from step to step (its weights stay one IR constant each)."""
    cond = r.m.subgraphs[int(op.options["CondSubgraphIndex"])]
    body = r.m.subgraphs[int(op.options["BodySubgraphIndex"])]
    count = len(op.inputs)
    if not len(op.outputs) == len(cond.inputs) == len(body.inputs) == len(body.outputs) == count:
        raise ModelError(f"{op.where}: {count} loop variables, but {len(op.outputs)} outputs, cond inputs "
                         f"{len(cond.inputs)}, body inputs {len(body.inputs)}, body outputs {len(body.outputs)}")
    if op.subgraph == int(op.options["BodySubgraphIndex"]):
        raise UnsupportedError(f"{op.where}: a loop whose body is itself is not supported")
    check_model(body)
    values = [_value(r, idx, op) for idx in op.inputs]
    weights: dict = {}  # body constants -> IR constants, shared by all steps
    step = 0
    while _continues(r, op, cond, values, step):
        if step == MAX_STEPS:
            raise UnsupportedError(f"{op.where}: the loop runs more than {MAX_STEPS} steps; kwscc unrolls loops "
                                   "and supports at most that many")
        inner = _inner(r, body, f"while{op.index}_step{step}", values, weights)
        for bop in body.ops:
            inner.convert(bop)
        values = [_value(inner, idx, None) for idx in body.outputs]
        step += 1
    log.info("%s: loop unrolled into %d steps", op.where, step)
    for idx, value in zip(op.outputs, values):
        if isinstance(value, str):
            r.alias[idx] = value
        else:
            r.folded[idx] = value


def strided_slice(r, op, x: str, bounds: list[tuple[int, int, int, bool]]) -> bool:
    """A STRIDED_SLICE with unit strides as Crops (+ Reshape for shrunk axes); False if it is not one
    (kwscc.frontends.tflite_recurrent reads the masks into `bounds`: (begin, end, stride, shrink) per axis)."""
    shape = r.shape(x)
    partial = [i for i, (b, e, s, _) in enumerate(bounds) if (b, e, s) != (0, shape[i], 1)]
    if any(bounds[i][2] != 1 or not 0 <= bounds[i][0] < bounds[i][1] <= shape[i] for i in partial):
        return False
    out_idx = op.outputs[0]
    out, declared = r.name(out_idx), r.tensor(out_idx).shape
    if partial and partial[0] == 0 and shape[0] > 1:  # the time axis of a time-major sequence
        if partial != [0] or bounds[0][1] - bounds[0][0] != 1:
            return False
        _take(r, op, x, 0, bounds[0][0], out_idx)
        return True
    for i in partial:
        b, e = bounds[i][:2]
        last = i == partial[-1] and r.shape(x)[:i] + (e - b,) + r.shape(x)[i + 1:] == declared
        x = r.emit(op, "Crop", [x], {"axis": i, "start": b, "end": e},
                   outputs=[out if last else r.internal(f"{out}_axis{i}", out_idx)], helper=f"axis{i}")
    if x != out:
        r.emit(op, "Reshape", [x], {"shape": declared}, outputs=[out], helper="reshape")
    return True
