"""ONNX Scan and Loop unrolled at import into plain IR ops (tf2onnx writes every TF1 dynamic_rnn it
does not recognise as an LSTM/GRU as a Scan; a Loop needs a trip count known at compile time).

The trip count is the scan inputs' length along their scan axis, known at compile time. The body
graph is converted once per step with the reader's own op converters: each step's copy of a body
node reads the current state variables and frame t of every scan input (a Crop of the time axis,
kwscc.frontends.frames), and its tensors get names of their own; names the body takes from the
outer graph (weights) are not renamed, so the weights stay one IR constant however many steps run.
The last step's states are the Scan's state outputs; a scan output (the per-step values stacked)
is built with one Concat, and only when something reads it.
"""
from __future__ import annotations

import logging

import numpy as np
from onnx import helper, numpy_helper

from kwscc.check.limits import check_node_count
from kwscc.errors import ModelError, UnsupportedError
from kwscc.ir import Node, Tensor

log = logging.getLogger(__name__)

MAX_STEPS = 1000  # a keyword spotter runs 20-100 steps; more is a loop kwscc should not unroll


def _attr(onode, name: str, default):
    for a in onode.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _body_names(body) -> set[str]:
    """Names the body defines: its inputs, initializers and node outputs (everything else is the outer graph's)."""
    names = {vi.name for vi in body.input} | {init.name for init in body.initializer}
    for bnode in body.node:
        names.update(o for o in bnode.output if o)
    return names


def _hoist_constants(r, onode, body) -> dict[str, str]:
    """The body's initializers and Constant nodes as IR constants, added once for all steps."""
    hoisted = {}
    for init in body.initializer:
        name = r.graph.add_const(f"{onode.name}_{init.name}", numpy_helper.to_array(init)).name
        hoisted[init.name] = name
    for bnode in body.node:
        if bnode.op_type == "Constant":
            tensor = helper.get_attribute_value(bnode.attribute[0]) if bnode.attribute else None
            if tensor is None or bnode.attribute[0].name != "value":
                raise UnsupportedError(f"node '{onode.name}' (Scan): a body Constant must have a 'value' tensor")
            hoisted[bnode.output[0]] = r.graph.add_const(f"{onode.name}_{bnode.output[0]}",
                                                         numpy_helper.to_array(tensor)).name
    return hoisted


def _check(r, onode, body, states: int, scans: int) -> tuple[list[int], int]:
    where = f"node '{onode.name}' (Scan)"
    if len(body.input) != states + scans:
        raise ModelError(f"{where}: the body has {len(body.input)} inputs for {states} states and {scans} scan inputs")
    if len(body.output) < states or len(onode.output) > len(body.output):
        raise ModelError(f"{where}: the body has {len(body.output)} outputs for {states} states")
    counts = {"scan_input_directions": scans, "scan_output_directions": len(body.output) - states,
              "scan_input_axes": scans, "scan_output_axes": len(body.output) - states}
    for field_name, count in counts.items():
        values = _attr(onode, field_name, None)
        if values is not None and len(values) != count:
            raise ModelError(f"{where}: {field_name} {list(values)} has {len(values)} values for {count} "
                             f"{'scan inputs' if 'input' in field_name else 'scan outputs'}")
    for field_name in ("scan_input_directions", "scan_output_directions"):
        directions = list(_attr(onode, field_name, []))
        if any(directions):
            raise UnsupportedError(f"{where}: reverse scan directions ({field_name} {directions}) are not supported; "
                                   "only forward scans")
    axes = [int(a) for a in _attr(onode, "scan_input_axes", [0] * scans)]
    lengths = set()
    for name, axis in zip(onode.input[states:], axes):
        shape = r.tensor(name).shape
        if not -len(shape) <= axis < len(shape):
            raise ModelError(f"{where}: scan axis {axis} is outside input '{name}' of shape {list(shape)}")
        lengths.add(shape[axis % len(shape)])
    if len(lengths) != 1:
        raise ModelError(f"{where}: the scan inputs have different lengths {sorted(lengths)}")
    steps = lengths.pop()
    _check_steps(r, where, steps, body)
    return axes, steps


def _check_steps(r, where: str, steps: int, body) -> None:
    """Refuse a loop of no step or of more than MAX_STEPS, or whose unrolled steps would not fit the
    graph, before anything is unrolled."""
    if steps < 1:
        raise UnsupportedError(f"{where}: the loop runs {steps} steps; kwscc needs at least one")
    if steps > MAX_STEPS:
        raise UnsupportedError(f"{where}: the loop runs {steps} steps; kwscc unrolls loops and supports at most "
                               f"{MAX_STEPS} (docs/limits.md)")
    check_node_count(len(r.graph) + steps * _step_size(r, body), where)


def _step_size(r, body) -> int:
    """Operations one step of `body` adds: its nested loops count their body times their trip count
    where that is a constant (so a loop inside a loop is refused before anything is unrolled)."""
    size = 0
    consts = {init.name: init for init in body.initializer}
    for bnode in body.node:
        inner = _attr(bnode, "body", None)
        if inner is None:
            size += 1
            continue
        trips = 1
        if bnode.op_type == "Loop" and bnode.input and bnode.input[0]:
            name = bnode.input[0]
            value = numpy_helper.to_array(consts[name]) if name in consts else _known(r, name)
            if value is not None and value.size == 1 and value.dtype.kind in "iu":
                trips = max(1, int(value.reshape(-1)[0]))
        size += trips * _step_size(r, inner)
    return size


def scan(r, onode) -> None:
    """Scan (opset 9+): N state variables, then `num_scan_inputs` sequences; forward directions only."""
    body = _attr(onode, "body", None)
    scans = int(_attr(onode, "num_scan_inputs", 0))
    states = len(onode.input) - scans
    if body is None or scans < 1 or states < 0:
        raise ModelError(f"node '{onode.name}' (Scan): needs a body and at least one scan input")
    axes, steps = _check(r, onode, body, states, scans)
    for name in onode.input:
        if name not in r.graph.tensors:
            raise ModelError(f"node '{onode.name}' (Scan): input '{name}' is not produced by an earlier node")
    own = _body_names(body)
    hoisted = _hoist_constants(r, onode, body)
    state_values = list(onode.input[:states])
    per_step: list[list[str]] = []  # each step's scan output elements
    for t in range(steps):
        rename = dict(hoisted)
        for vi, value in zip(body.input[:states], state_values):
            rename[vi.name] = value
        for vi, seq, axis in zip(body.input[states:], onode.input[states:], axes):
            frame = r.graph.unique_tensor_name(f"{vi.name}_{onode.name}_step{t}")
            seq_shape = r.tensor(seq).shape
            axis %= len(seq_shape)
            r.frames.take(seq, axis, t, frame, seq_shape[:axis] + seq_shape[axis + 1:], f"node '{onode.name}' (Scan)",
                          "Scan")
            rename[vi.name] = frame
        _convert_step(r, onode, body, own, rename, t)
        outputs = [rename.get(vi.name, vi.name) for vi in body.output]
        state_values = outputs[:states]
        per_step.append(outputs[states:])
    log.info("node '%s' (Scan): unrolled into %d steps", onode.name, steps)
    for out, value in zip(onode.output[:states], state_values):
        if out:
            r.emit(onode, "Identity", [value], outputs=[out])
    out_axes = [int(a) for a in _attr(onode, "scan_output_axes", [0] * (len(body.output) - states))]
    for k, out in enumerate(onode.output[states:]):
        if out and out in r.consumed:
            _stack(r, onode, [step[k] for step in per_step], out_axes[k] if k < len(out_axes) else 0, out)


def _convert_step(r, onode, body, own: set[str], rename: dict[str, str], t: int) -> None:
    """Convert step t of `body`: `rename` binds its inputs and hoisted constants and receives the
    step's own name for every tensor the body defines. A node whose inputs are all constants and that
    kwscc has no converter for (Less, And: a loop's condition) is evaluated by onnx's reference
    implementation instead."""
    for bnode in body.node:
        if bnode.op_type == "Constant":
            continue
        for out in bnode.output:
            if out and out in own:
                rename[out] = r.graph.unique_tensor_name(f"{out}_{onode.name}_step{t}")
        step_node = helper.make_node(bnode.op_type, [rename.get(n, n) if n else "" for n in bnode.input],
                                     [rename.get(n, n) if n else "" for n in bnode.output],
                                     name=f"{onode.name}_step{t}_{bnode.name or bnode.op_type}", domain=bnode.domain)
        step_node.attribute.extend(bnode.attribute)
        if bnode.op_type in r.converters:
            r.convert(step_node)
        elif _all_constant(r, step_node):
            _evaluate(r, step_node)
        else:
            raise UnsupportedError(f"node '{onode.name}' ({onode.op_type}): its body node '{step_node.name}' "
                                   f"({bnode.op_type}) reads values computed at run time; kwscc evaluates {bnode.op_type} "
                                   "on constants only (a loop condition must be known at compile time)")


def _all_constant(r, onode) -> bool:
    names = [n for n in onode.input if n]
    return all(n in r.graph.tensors and r.graph.tensors[n].is_const for n in names)


def _evaluate(r, onode) -> None:
    from onnx.reference import ReferenceEvaluator

    names = [n for n in onode.input if n]
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(r.graph.tensors[n].data.dtype), None)
              for n in names]
    outputs = [helper.make_tensor_value_info(n, 0, None) for n in onode.output if n]
    model = helper.make_model(helper.make_graph([onode], "step", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", r.opset)])
    try:
        values = ReferenceEvaluator(model).run(None, {n: r.graph.tensors[n].data for n in names})
    except Exception as exc:  # the reference implementation raises many types for what it cannot run
        raise UnsupportedError(f"node '{onode.name}' ({onode.op_type}): cannot evaluate it on constants "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})") from None
    for name, value in zip([n for n in onode.output if n], values):
        r.graph.add_tensor(Tensor(name, tuple(np.shape(value)), str(np.asarray(value).dtype), np.asarray(value)))


def loop(r, onode) -> None:
    """Loop with a trip count known at compile time: a constant M and/or a condition that the body
    computes from constants only (checked after every step); its scan outputs stacked on axis 0."""
    where = f"node '{onode.name}' (Loop)"
    body = _attr(onode, "body", None)
    if body is None or len(body.input) != len(onode.input) or len(body.input) < 2:
        raise ModelError(f"{where}: needs a body with inputs (iteration, condition, the loop-carried values)")
    limit = _known(r, onode.input[0]) if onode.input[0] else None
    go = _known(r, onode.input[1]) if len(onode.input) > 1 and onode.input[1] else np.array(True)
    if (onode.input[0] and limit is None) or go is None:
        raise UnsupportedError(f"{where}: the loop's trip count is not known at compile time (its trip count M and "
                               "condition must be constants)")
    if limit is not None:
        _check_steps(r, where, int(np.asarray(limit).reshape(-1)[0]), body)
    states = len(onode.input) - 2
    if len(body.output) < 1 + states:
        raise ModelError(f"{where}: the body has {len(body.output)} outputs for the condition and {states} "
                         "loop-carried values")
    own = _body_names(body)
    hoisted = _hoist_constants(r, onode, body)
    values = list(onode.input[2:])
    per_step: list[list[str]] = []
    t = 0
    while bool(np.asarray(go).reshape(-1)[0]) and (limit is None or t < int(np.asarray(limit).reshape(-1)[0])):
        if t == MAX_STEPS:
            raise UnsupportedError(f"{where}: the loop runs more than {MAX_STEPS} steps; kwscc unrolls loops and "
                                   f"supports at most {MAX_STEPS}")
        rename = dict(hoisted)
        rename[body.input[0].name] = r.graph.add_const(f"{onode.name}_iteration{t}", np.array(t, np.int64)).name
        rename[body.input[1].name] = r.graph.add_const(f"{onode.name}_condition{t}", np.array(True)).name
        for vi, value in zip(body.input[2:], values):
            rename[vi.name] = value
        _convert_step(r, onode, body, own, rename, t)
        outputs = [rename.get(vi.name, vi.name) for vi in body.output]
        go = _known(r, outputs[0])
        if go is None:
            raise UnsupportedError(f"{where}: the loop's trip count is not known at compile time: its condition "
                                   f"'{body.output[0].name}' depends on values computed at run time")
        values, per_step = outputs[1:1 + states], per_step + [outputs[1 + states:]]
        t += 1
    log.info("%s: unrolled into %d steps", where, t)
    for out, value in zip(onode.output[:states], values):
        if out:
            r.emit(onode, "Identity", [value], outputs=[out])
    for k, out in enumerate(onode.output[states:]):
        if out and out in r.consumed:
            _stack(r, onode, [step[k] for step in per_step], 0, out)


def _known(r, name: str) -> np.ndarray | None:
    tensor = r.graph.tensors.get(name)
    return tensor.data if tensor is not None and tensor.is_const else None


def _stack(r, onode, elements: list[str], axis: int, out: str) -> None:
    """Scan output `out`: the steps' elements stacked along `axis` (batch-first where the batch is 1)."""
    shape = r.tensor(elements[0]).shape
    axis %= len(shape) + 1
    declared = shape[:axis] + (len(elements),) + shape[axis:]
    joined_axis = 1 if axis == 0 and shape[:1] == (1,) else axis  # [1, T, ...]: the batch stays on axis 0
    one = shape[:joined_axis] + (1,) + shape[joined_axis:]
    parts = []
    for t, element in enumerate(elements):
        part = r.graph.unique_tensor_name(f"{out}_step{t}")
        r.graph.add_node(Node(r.graph.unique_node_name(f"{onode.name}_stack{t}"), "Reshape", [element], [part],
                              {"shape": one}))
        parts.append(part)
    joined = out if joined_axis == axis else r.graph.unique_tensor_name(f"{out}_batch_first")
    r.emit(onode, "Concat", parts, {"axis": joined_axis}, outputs=[joined])
    if joined != out:
        r.graph.add_node(Node(r.graph.unique_node_name(f"{onode.name}_time_major"), "Reshape", [joined], [out],
                              {"shape": declared}))

