"""ONNX LSTM and GRU -> kwscc's recurrent ops (kwscc.ops.recurrent): forward, batch 1, constant
weights and initial states, the default activations, a `clip` of at least GATE_CLIP_MIN, sequence_lens
absent or all T; everything else refused by name."""
from __future__ import annotations

import numpy as np
from onnx import helper

from kwscc.errors import UnsupportedError
from kwscc.frontends.sequence import add_recurrent, last_step, time_major_input
from kwscc.ops.recurrent import GATE_CLIP_MIN

DEFAULT_ACTIVATIONS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"]}
GATES = {"LSTM": 4, "GRU": 3}


def _refuse(onode, why: str) -> UnsupportedError:
    return UnsupportedError(f"node '{onode.name}' ({onode.op_type}): {why}")


def _attrs(onode) -> dict:
    out = {}
    for a in onode.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        out[a.name] = value
    return out


def _check_attrs(onode, a: dict) -> None:
    direction = a.get("direction", "forward")
    if direction != "forward":
        raise _refuse(onode, f"direction '{direction}' is not supported (only forward)")
    acts = [s.lower() for s in a.get("activations", DEFAULT_ACTIVATIONS[onode.op_type])]
    if acts != DEFAULT_ACTIVATIONS[onode.op_type] or "activation_alpha" in a or "activation_beta" in a:
        raise _refuse(onode, f"activations {a.get('activations')} are not supported (only "
                             f"{', '.join(s.capitalize() for s in DEFAULT_ACTIVATIONS[onode.op_type])})")
    if "clip" in a and not a["clip"] >= GATE_CLIP_MIN:
        raise _refuse(onode, f"clip {a['clip']:g} (gate pre-activations clipped) is not supported: only a clip of at "
                             f"least {GATE_CLIP_MIN:g}, where kwscc's int16 gate pre-activations saturate")
    if a.get("input_forget", 0):
        raise _refuse(onode, "input_forget=1 (coupled input and forget gates) is not supported")


def _sequence_input(r, onode, layout: int) -> tuple[str, int, int, int]:
    """The input as [1, T, F] (a reshape of the time-major form) and (T, batch, F)."""
    x = onode.input[0]
    shape = r.tensor(x).shape
    if len(shape) != 3:
        raise _refuse(onode, f"input must be 3-D, got {list(shape)}")
    steps, batch, features = (shape[1], shape[0], shape[2]) if layout else shape
    if not layout and x in r.graph.inputs and (x in r.dynamic_first or steps > 1):
        raise time_major_input(f"node '{onode.name}' ({onode.op_type})", x,
                               None if x in r.dynamic_first else steps, features)
    if batch != 1:
        raise _refuse(onode, f"batch size {batch} is not supported (only 1)")
    if layout:
        return x, steps, batch, features
    seq = r.graph.unique_tensor_name(f"{x}_kwscc_seq")
    r.emit(onode, "Reshape", [x], {"shape": (1, steps, features)}, outputs=[seq])
    return seq, steps, batch, features


def _state(r, onode, index: int, hidden: int, what: str) -> np.ndarray:
    if len(onode.input) <= index or not onode.input[index]:
        return np.zeros(hidden, np.float32)
    if not r.graph.tensors[onode.input[index]].is_const:
        raise _refuse(onode, f"{what} ('{onode.input[index]}') must be a constant")
    return r.const(onode, index, what).reshape(hidden).astype(np.float32)


def _sequence_lens(r, onode, steps: int) -> None:
    if len(onode.input) > 4 and onode.input[4]:
        lens = r.graph.tensors[onode.input[4]]
        if not lens.is_const or np.any(lens.data != steps):
            raise _refuse(onode, f"sequence_lens must be a constant equal to the sequence length {steps}")


def _weights(r, onode, hidden: int, features: int) -> tuple[np.ndarray, ...]:
    gates = GATES[onode.op_type]
    w = r.const(onode, 1, "W").astype(np.float32)
    rr = r.const(onode, 2, "R").astype(np.float32)
    if w.shape != (1, gates * hidden, features) or rr.shape != (1, gates * hidden, hidden):
        raise _refuse(onode, f"W {list(w.shape)} / R {list(rr.shape)} do not match hidden_size {hidden} "
                             f"and {features} input features")
    b = r.optional_const(onode, 3, "B")
    b = np.zeros(2 * gates * hidden, np.float32) if b is None else b.reshape(-1).astype(np.float32)
    return w[0], rr[0], b[:gates * hidden], b[gates * hidden:]


def _inputs(r, onode, hidden: int, features: int) -> list[np.ndarray]:
    w, rr, wb, rb = _weights(r, onode, hidden, features)
    if onode.op_type == "GRU":
        return [w, rr, wb, rb, _state(r, onode, 5, hidden, "initial_h")]
    p = r.optional_const(onode, 7, "P")
    p = np.zeros(3 * hidden, np.float32) if p is None else p.reshape(3 * hidden).astype(np.float32)
    return [w, rr, wb + rb, p, _state(r, onode, 5, hidden, "initial_h"), _state(r, onode, 6, hidden, "initial_c")]


def recurrent(r, onode) -> None:
    """ONNX LSTM / GRU: outputs Y [T, 1, 1, H] (layout 0) and Y_h [1, 1, H]; LSTM's Y_c is refused."""
    a = _attrs(onode)
    _check_attrs(onode, a)
    layout = int(a.get("layout", 0))
    hidden = int(a["hidden_size"])
    x, steps, _, features = _sequence_input(r, onode, layout)
    _sequence_lens(r, onode, steps)
    consts = [r.graph.add_const(f"{onode.name}_{what}", value).name
              for what, value in zip(("W", "R", "B", "P", "h0", "c0") if onode.op_type == "LSTM"
                                     else ("W", "R", "Wb", "Rb", "h0"), _inputs(r, onode, hidden, features))]
    attrs = {"hidden_size": hidden, **({"gate_clip": float(a["clip"])} if "clip" in a else {})}
    if onode.op_type == "GRU":
        attrs["linear_before_reset"] = bool(a.get("linear_before_reset", 0))
    outputs = list(onode.output) + [""] * (3 - len(onode.output))
    if len(outputs) > 2 and outputs[2]:
        r.cell_outputs[outputs[2]] = onode  # refused only if something reads it
    both = all(name and name in r.consumed for name in outputs[:2])
    sequence = None
    for mode, name, shape in (("sequence", outputs[0], (1, steps, 1, hidden) if layout else (steps, 1, 1, hidden)),
                              ("last", outputs[1], (1, 1, hidden))):
        if not name:
            continue
        if mode == "last" and both:  # Y is computed anyway: Y_h is its last step, not a second run of the layer
            r.emit(onode, "Crop", [sequence], {"axis": 1, "start": steps - 1, "end": steps}, outputs=[name])
            continue
        own = r.graph.unique_tensor_name(f"{name}_kwscc_{mode}")
        add_recurrent(r.graph, f"{onode.name}_{mode}" if mode == "last" else onode.name, onode.op_type,
                      [x, *consts], {**attrs, "output": mode}, own)
        r.emit(onode, "Reshape", [own], {"shape": shape}, outputs=[name])
        sequence = own


def slice_last_step(r, onode) -> bool:
    """A Slice of an activation that keeps the last step of a recurrent output sequence."""
    if not all(r.graph.tensors[n].is_const for n in onode.input[1:] if n):
        return False
    data = r.graph.tensors[onode.input[0]]
    starts, ends = (r.const(onode, i, what).reshape(-1) for i, what in ((1, "starts"), (2, "ends")))
    axes = r.optional_const(onode, 3, "axes")
    steps = r.optional_const(onode, 4, "steps")
    if len(starts) != 1:
        return False
    axis = int(axes.reshape(-1)[0]) % len(data.shape) if axes is not None else 0
    step = int(steps.reshape(-1)[0]) if steps is not None else 1
    out_shape = list(data.shape)
    out_shape[axis] = 1
    return last_step(r.graph, onode.input[0], axis, int(starts[0]), int(ends[0]), step, onode.output[0],
                     tuple(out_shape)) is not None
