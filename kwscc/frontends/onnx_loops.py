"""ONNX Scan unrolled at import into plain IR ops (tf2onnx writes every TF1 dynamic_rnn it does not
recognise as an LSTM/GRU this way).

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

from onnx import helper, numpy_helper

from kwscc.errors import ModelError, UnsupportedError
from kwscc.ir import Node

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
    for field_name, count in (("scan_input_directions", scans), ("scan_output_directions", len(body.output) - states)):
        directions = list(_attr(onode, field_name, [0] * count))
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
    if steps > MAX_STEPS:
        raise UnsupportedError(f"{where}: the scan runs {steps} steps; kwscc unrolls loops and supports at most "
                               f"{MAX_STEPS}")
    return axes, steps


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
        for bnode in body.node:
            if bnode.op_type == "Constant":
                continue
            for out in bnode.output:
                if out and out in own:
                    rename[out] = r.graph.unique_tensor_name(f"{out}_{onode.name}_step{t}")
            step_node = helper.make_node(bnode.op_type, [rename.get(n, n) if n else "" for n in bnode.input],
                                         [rename.get(n, n) if n else "" for n in bnode.output],
                                         name=f"{onode.name}_step{t}_{bnode.name or bnode.op_type}",
                                         domain=bnode.domain)
            step_node.attribute.extend(bnode.attribute)
            r.convert(step_node)
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

