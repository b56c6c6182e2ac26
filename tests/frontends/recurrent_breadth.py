"""A breadth matrix of synthetic recurrent models: ONNX LSTM / GRU / RNN and TFLite
UNIDIRECTIONAL_SEQUENCE_LSTM in the forms exporters and users write (sizes, biases, initial states,
peepholes, clips, layouts, opsets, sequence_lens, which outputs are read, stacked layers, a
classifier after the layer), each with what kwscc must do with it: compile it correctly, or refuse
it in one line naming the node.

`check(variant, directory)` builds the model, compares kwscc's float IR with onnxruntime / LiteRT,
compiles it with synthetic calibration data and validates the C against the simulator and the float
model. tests/e2e/test_recurrent_breadth.py runs a lean subset; benchmarks/recurrent_breadth.py the
whole matrix as a table.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.frontends.recurrent_models import INPUT_COUNT
from tests.tflite.tfl_builder import ModelBuilder, options

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
FLOAT_TOLERANCE = 1e-5  # max |kwscc float IR - runtime| relative to the output's scale (and absolute below 1)
MIN_SQNR_DB = 25.0  # quantized C output vs the float model


@dataclass(frozen=True)
class Variant:
    """One model of the matrix. expect: "ok", or the text the refusal line must contain."""
    name: str
    fmt: str  # "onnx" or "tflite"
    build: dict = field(default_factory=dict)
    steps: int = 3
    features: int = 10
    expect: str = "ok"
    min_sqnr_db: float = MIN_SQNR_DB


# ---------------------------------------------------------------- ONNX models

def _init(inits: list, name: str, value) -> str:
    inits.append(numpy_helper.from_array(np.asarray(value, np.float32 if np.asarray(value).dtype.kind == "f"
                                                    else np.asarray(value).dtype), name))
    return name


def _squeeze(nodes, inits, opset: int, x: str, axis: int, out: str) -> str:
    if opset >= 13:
        nodes.append(helper.make_node("Squeeze", [x, _init(inits, f"{out}_axes", np.array([axis], np.int64))], [out]))
    else:
        nodes.append(helper.make_node("Squeeze", [x], [out], axes=[axis]))
    return out


def _layer(nodes, inits, rng, prefix: str, x: str, *, op: str, hidden: int, features: int, steps: int, layout: int,
           opset: int, bias: bool, init: str | None, peepholes: bool, seq_lens: str | None, attrs: dict,
           used_outputs: tuple[str, ...], weight_scale: float) -> dict[str, str]:
    """One recurrent node reading x ([T, 1, F], or [1, T, F] with layout 1); returns its output names."""
    g = GATES[op]
    w = rng.normal(0, weight_scale / np.sqrt(features), (1, g * hidden, features))
    r = rng.normal(0, weight_scale / np.sqrt(hidden), (1, g * hidden, hidden))
    inputs = [x, _init(inits, f"{prefix}W", w), _init(inits, f"{prefix}R", r)]
    inputs.append(_init(inits, f"{prefix}B", rng.normal(0, 0.2, (1, 2 * g * hidden))) if bias else "")
    if seq_lens == "shape":  # computed from the input's shape, as exporters write it: Cast(Shape(x)[T axis])
        nodes.append(helper.make_node("Shape", [x], [f"{prefix}shape"]))
        nodes.append(helper.make_node("Gather", [f"{prefix}shape", _init(inits, f"{prefix}t_axis",
                                                                         np.array([layout], np.int64))],
                                      [f"{prefix}t"], axis=0))
        nodes.append(helper.make_node("Cast", [f"{prefix}t"], [f"{prefix}lens"], to=TensorProto.INT32))
        inputs.append(f"{prefix}lens")
    elif seq_lens:
        lens = steps if seq_lens == "full" else max(steps - 1, 1)
        inputs.append(_init(inits, f"{prefix}lens", np.full(1, lens, np.int32)))
    else:
        inputs.append("")
    state_shape = (1, 1, hidden)
    if init == "input":  # the initial state as a second model input
        inputs.append(f"{prefix}h0_input")
    elif init == "zeros_of_shape":  # PyTorch's traced torch.zeros(layers, x.size(batch axis), H)
        nodes.append(helper.make_node("Shape", [x], [f"{prefix}x_shape"]))
        nodes.append(helper.make_node("Gather", [f"{prefix}x_shape", _init(inits, f"{prefix}n_axis",
                                                                           np.array(1 - layout, np.int64))],
                                      [f"{prefix}n"], axis=0))
        nodes.append(helper.make_node("Unsqueeze", [f"{prefix}n", _init(inits, f"{prefix}ax0", np.array([0], np.int64))]
                                      if opset >= 13 else [f"{prefix}n"], [f"{prefix}n1"],
                                      **({} if opset >= 13 else {"axes": [0]})))
        nodes.append(helper.make_node("Concat", [_init(inits, f"{prefix}dirs", np.array([1], np.int64)), f"{prefix}n1",
                                                 _init(inits, f"{prefix}hs", np.array([hidden], np.int64))],
                                      [f"{prefix}state_shape"], axis=0))
        nodes.append(helper.make_node("ConstantOfShape", [f"{prefix}state_shape"], [f"{prefix}zeros"],
                                      value=numpy_helper.from_array(np.zeros(1, np.float32))))
        inputs += [f"{prefix}zeros"] * (2 if op == "LSTM" else 1)
    elif init:
        value = (lambda: np.zeros(state_shape)) if init == "zero" else (lambda: rng.uniform(-0.5, 0.5, state_shape))
        inputs.append(_init(inits, f"{prefix}h0", value()))
        if op == "LSTM":
            inputs.append(_init(inits, f"{prefix}c0", value()))
    if peepholes:
        inputs += [""] * (7 - len(inputs))
        inputs.append(_init(inits, f"{prefix}P", rng.normal(0, 0.5, (1, 3 * hidden))))
    while inputs and inputs[-1] == "":
        inputs.pop()
    names = {"LSTM": ("Y", "Y_h", "Y_c"), "GRU": ("Y", "Y_h"), "RNN": ("Y", "Y_h")}[op]
    outs = [f"{prefix}{n}" if n in used_outputs else "" for n in names]
    while outs and outs[-1] == "":
        outs.pop()
    node_attrs = {"hidden_size": hidden, **attrs}
    if layout:
        node_attrs["layout"] = 1
    nodes.append(helper.make_node(op, inputs, outs, name=f"{prefix}rnn", **node_attrs))
    return {n: f"{prefix}{n}" for n in names if n in used_outputs}


def _torch_tail(nodes, inits, opset: int, y: str, tail: str, layout: int, hidden: int) -> str:
    last = _init(inits, "minus_one", np.array(-1, np.int64))
    if tail == "hn_gather":
        nodes.append(helper.make_node("Gather", [y, last], ["hn_last"], axis=0))
        return "hn_last"
    if tail == "bf4_gather_last":  # Y [T, 1, N, H] -> Transpose [N, T, 1, H] -> Reshape [N, T, H] -> out[:, -1]
        nodes.append(helper.make_node("Transpose", [y], ["t_bf4"], perm=[2, 0, 1, 3]))
        shape = _init(inits, "t_bf_shape", np.array([1, -1, hidden], np.int64))
        nodes.append(helper.make_node("Reshape", ["t_bf4", shape], ["t_bf"]))
        nodes.append(helper.make_node("Gather", ["t_bf", last], ["t_last"], axis=1))
        return "t_last"
    seq = _squeeze(nodes, inits, opset, y, 2 if layout else 1, "t_seq")  # [T, 1, H] (or [1, T, H], layout 1)
    if tail == "gather_last":
        nodes.append(helper.make_node("Gather", [seq, last], ["t_last"], axis=layout))
        return "t_last"
    if not layout:
        nodes.append(helper.make_node("Transpose", [seq], ["t_bf"], perm=[1, 0, 2]))
        seq = "t_bf"
    if tail == "bf_gather_last":
        nodes.append(helper.make_node("Gather", [seq, last], ["t_last"], axis=1))
        return "t_last"
    assert tail == "bf_flat"
    return seq


def onnx_model(directory: Path, name: str, *, op: str = "LSTM", hidden: int = 8, features: int = 10, steps: int = 3,
               bias: bool = True, init: str | None = None, peepholes: bool = False, attrs: dict | None = None,
               layout: int = 0, seq_lens: str | None = None, use: str = "Y_h", stacked: bool = False,
               head: bool = False, opset: int = 14, seed: int = 0, batch: int | str = 1, dynamic_steps: bool = False,
               tail: str | None = None, weight_scale: float = 1.0, hidden2: int | None = None) -> Path:
    """x [batch, T, F] -> (Transpose to time-major unless layout 1) -> the layer(s) -> what `use` says:
    Y_h; Y (with its num_directions axis); Y_sq (Y squeezed); last (Y's last step sliced, the Keras form);
    Y_c; Y+Y_h (both outputs of one layer read: its Y_h added to the stacked layer's Y_h, needs stacked).
    tail (after `use`): gather_last (Y squeezed, Gather index -1 on the time axis: PyTorch's out[-1]),
    bf_gather_last (Y squeezed, Transposed batch-first, Gather index -1 on axis 1: out[:, -1]), bf_flat (the
    batch-first sequence flattened), hn_gather (Gather index -1 on Y_h's direction axis: h_n[-1]).
    head: a Gemm + Softmax classifier over the flattened result. batch "N": a dynamic batch dimension;
    hidden2: the stacked layer's hidden size (default hidden)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "x"
    if not layout:
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]))
        x = "xt"
    first_use = {"Y_h": ("Y_h",), "Y": ("Y",), "Y_sq": ("Y",), "last": ("Y",), "Y_c": ("Y_c",),
                 "Y+Y_h": ("Y", "Y_h")}[use]
    if stacked:
        first_use = tuple(dict.fromkeys(first_use + ("Y",)))
    common = dict(op=op, hidden=hidden, steps=steps, layout=layout, opset=opset, bias=bias, init=init,
                  peepholes=peepholes and op == "LSTM", seq_lens=seq_lens, attrs=attrs or {}, weight_scale=weight_scale)
    outs = _layer(nodes, inits, rng, "l1_", x, features=features, used_outputs=first_use, **common)
    time_axis_squeeze = 2 if layout else 1  # Y: [T, dirs, N, H], or [N, T, dirs, H] with layout 1
    if stacked:  # the first layer's sequence, its direction axis squeezed, feeds a second layer
        seq = _squeeze(nodes, inits, opset, outs["Y"], time_axis_squeeze, "l1_seq")
        second_use = ("Y_h",) if use in ("Y_h", "Y+Y_h") else ("Y",)
        outs2 = _layer(nodes, inits, rng, "l2_", seq, features=hidden, used_outputs=second_use,
                       **{**common, "hidden": hidden2 or hidden})
        if use == "Y+Y_h":
            nodes.append(helper.make_node("Add", [outs["Y_h"], outs2["Y_h"]], ["both"]))
            result = "both"
        else:
            outs = outs2
    if not stacked or use != "Y+Y_h":
        result = outs[{"Y_h": "Y_h", "Y": "Y", "Y_sq": "Y", "last": "Y", "Y_c": "Y_c", "Y+Y_h": "Y_h"}[use]]
        if use in ("Y_sq", "last"):
            result = _squeeze(nodes, inits, opset, result, time_axis_squeeze, "y_sq")
        if use == "last":  # [T, 1, H] -> the last step [1, H]
            if opset >= 10:
                consts = [_init(inits, n, np.array(v, np.int64)) for n, v in
                          (("start", [-1]), ("end", [2**31 - 1]), ("axis0", [layout]))]
                nodes.append(helper.make_node("Slice", ["y_sq", *consts], ["y_last"]))
            else:
                nodes.append(helper.make_node("Slice", ["y_sq"], ["y_last"], starts=[-1], ends=[2**31 - 1],
                                              axes=[layout]))
            result = _squeeze(nodes, inits, opset, "y_last", layout, "y_lastsq")
    if tail:  # the forms PyTorch's exporter writes (Gather of index -1 for out[-1] / h_n[-1])
        result = _torch_tail(nodes, inits, opset, result, tail, layout, hidden2 or hidden if stacked else hidden)
    if head:
        one_step = use in ("Y_h", "last", "Y+Y_h", "Y_c") or (tail or "").endswith(("gather_last", "hn_gather"))
        size = (hidden2 or hidden if stacked else hidden) * (1 if one_step else steps)
        nodes.append(helper.make_node("Reshape", [result, _init(inits, "flat", np.array([1, size], np.int64))],
                                      ["flat_out"]))
        dense = [_init(inits, "fc_w", rng.normal(0, 1.5 / np.sqrt(size), (size, 6))),
                 _init(inits, "fc_b", rng.normal(0, 0.1, 6))]
        nodes.append(helper.make_node("Gemm", ["flat_out", *dense], ["logits"]))
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], **({"axis": 1} if opset < 13 else {})))
        result = "probs"
    steps_dim = "T" if dynamic_steps else steps
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, steps_dim, features])]
    inputs += [helper.make_tensor_value_info(i, TensorProto.FLOAT, [1, 1, hidden])
               for node in nodes for i in node.input if i.endswith("h0_input")]
    graph = helper.make_graph(nodes, name, inputs,
                              [helper.make_tensor_value_info(result, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset < 15 else 8
    model = onnx.shape_inference.infer_shapes(model)
    path = Path(directory) / f"{name}.onnx"
    onnx.save(model, path)
    return path


# ---------------------------------------------------------------- TFLite models

def _tfl_lstm(b: ModelBuilder, rng, x: int, prefix: str, *, steps: int, features: int, hidden: int, projection: int,
              peepholes: bool, cell_clip: float, proj_clip: float, time_major: bool, cifg: bool, layer_norm: bool,
              asymmetric: bool, batch: int) -> int:
    """One UNIDIRECTIONAL_SEQUENCE_LSTM reading x; returns its output sequence."""
    out_size = projection or hidden
    gates_present = "fco" if cifg else "ifco"

    def per_gate(what: str, shape, scale: float) -> list[int]:
        return [b.const(f"{prefix}{what}_{g}", rng.normal(0, scale, shape).astype(np.float32))
                if g in gates_present else -1 for g in "ifco"]

    inputs = [x, *per_gate("w", (hidden, features), 1 / np.sqrt(features)),
              *per_gate("r", (hidden, out_size), 1 / np.sqrt(out_size))]
    inputs += ([b.const(f"{prefix}p_{g}", rng.normal(0, 0.5, hidden).astype(np.float32)) if g in gates_present else -1
                for g in "ifo"] if peepholes else [-1] * 3)
    inputs += per_gate("b", (hidden,), 0.2)
    inputs += ([b.const(f"{prefix}proj", rng.normal(0, 1 / np.sqrt(hidden), (out_size, hidden)).astype(np.float32)),
                -1] if projection else [-1, -1])
    for state, size in (("h_state", out_size), ("c_state", hidden)):
        inputs.append(b.tensor(f"{prefix}{state}", [batch, size]))
        b.tensors[-1].isVariable = True
    if layer_norm:
        inputs += [b.const(f"{prefix}ln_{g}", rng.uniform(0.5, 1.5, hidden).astype(np.float32))
                   if g in gates_present else -1 for g in "ifco"]
    inputs += [-1] * (INPUT_COUNT - len(inputs))
    y = b.tensor(f"{prefix}y", [steps, 1, out_size] if time_major else [batch, steps, out_size])
    b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [y],
         options("UnidirectionalSequenceLSTM", fusedActivationFunction=4, cellClip=cell_clip, projClip=proj_clip,
                 timeMajor=time_major, asymmetricQuantizeInputs=asymmetric))
    return y


def tflite_model(directory: Path, name: str, *, steps: int, features: int, hidden: int = 8, projection: int = 0,
                 peepholes: bool = False, cell_clip: float = 0.0, proj_clip: float = 0.0, time_major: str = "",
                 last: bool = False, cifg: bool = False, layer_norm: bool = False, asymmetric: bool = False,
                 head: bool = False, seed: int = 0, dynamic_steps: bool = False, batch: int = 1, layers: int = 1,
                 flat_head: bool = False) -> Path:
    """x [1, T, F] -> UNIDIRECTIONAL_SEQUENCE_LSTM (layers of them, each reading the previous one's sequence)
    -> its sequence, or (last) the STRIDED_SLICE of its last step, optionally FULLY_CONNECTED + SOFTMAX over
    that step (head) or over the flattened sequence (flat_head). time_major: "" (batch-first), "transpose" (a
    TRANSPOSE of the model input feeds the time-major layer) or "input" (a time-major model input [T, 1, F])."""
    rng = np.random.default_rng(seed)
    out_size = projection or hidden
    b = ModelBuilder()
    x = model_input = b.tensor("x", [steps, 1, features] if time_major == "input" else [batch, steps, features],
                               signature=[1, -1, features] if dynamic_steps else None)
    if time_major == "transpose":  # the layer reads a time-major TRANSPOSE of a batch-first model input
        x = b.tensor("x_time_major", [steps, 1, features])
        b.op("TRANSPOSE", [model_input, b.const("perm", np.array([1, 0, 2], np.int32), "INT32")], [x])
    y = x
    for layer in range(layers):
        y = _tfl_lstm(b, rng, y, f"l{layer + 1}_", steps=steps, features=features if layer == 0 else out_size,
                      hidden=hidden, projection=projection, peepholes=peepholes, cell_clip=cell_clip,
                      proj_clip=proj_clip, time_major=bool(time_major), cifg=cifg, layer_norm=layer_norm,
                      asymmetric=asymmetric, batch=batch)
    size = out_size
    if last or head:
        begin, end = ([-1, 0, 0], [steps, 1, out_size]) if time_major else ([0, -1, 0], [1, steps, out_size])
        ints = [b.const(what, np.array(v, np.int32), "INT32") for what, v in
                (("begin", begin), ("end", end), ("strides", [1, 1, 1]))]
        last_step = b.tensor("last", [1, out_size])
        b.op("STRIDED_SLICE", [y, *ints], [last_step], options("StridedSlice", shrinkAxisMask=1 if time_major else 2))
        y = last_step
    elif flat_head:
        size = steps * out_size
        flat = b.tensor("flat", [1, size])
        b.op("RESHAPE", [y, b.const("flat_shape", np.array([1, size], np.int32), "INT32")], [flat])
        y = flat
    if head or flat_head:
        w = b.const("fc_w", rng.normal(0, 1.5 / np.sqrt(size), (6, size)).astype(np.float32))
        bias = b.const("fc_b", rng.normal(0, 0.1, 6).astype(np.float32))
        logits = b.tensor("logits", [1, 6])
        b.op("FULLY_CONNECTED", [y, w, bias], [logits], options("FullyConnected"))
        probs = b.tensor("probs", [1, 6])
        b.op("SOFTMAX", [logits], [probs], options("Softmax", beta=1.0))
        y = probs
    return b.save(directory, [model_input], [y], name=f"{name}.tflite")


def build(variant: Variant, directory: Path) -> Path:
    args = dict(steps=variant.steps, features=variant.features, **variant.build)
    if variant.fmt == "onnx":
        return onnx_model(directory, variant.name, **args)
    return tflite_model(directory, variant.name, **args)


# ---------------------------------------------------------------- the matrix

def _onnx(name: str, steps: int = 3, features: int = 10, expect: str = "ok", **build) -> Variant:
    return Variant(name, "onnx", build, steps, features, expect)


def _tfl(name: str, steps: int = 3, features: int = 10, expect: str = "ok", **build) -> Variant:
    return Variant(name, "tflite", build, steps, features, expect)


def matrix() -> list[Variant]:
    """Every variant, supported ones first per family; names are stable (tests pick them by name)."""
    v: list[Variant] = []
    for op in ("LSTM", "GRU"):
        p = op.lower()
        for hidden, features, steps in ((8, 1, 1), (20, 10, 3), (64, 40, 49), (130, 10, 3), (8, 40, 49)):
            v.append(_onnx(f"{p}-h{hidden}-f{features}-t{steps}", steps, features, op=op, hidden=hidden))
        for seed in (1, 2):
            v.append(_onnx(f"{p}-seed{seed}", 5, 10, op=op, hidden=20, seed=seed, head=True))
        v.append(_onnx(f"{p}-no-bias", op=op, bias=False))
        v.append(_onnx(f"{p}-init-zero", op=op, init="zero"))
        v.append(_onnx(f"{p}-init-const", 5, op=op, init="const"))
        v.append(_onnx(f"{p}-layout1", 5, op=op, layout=1, init="const", use="Y"))
        v.append(_onnx(f"{p}-layout1-last", 5, op=op, layout=1, use="last"))
        v.append(_onnx(f"{p}-default-acts", op=op, attrs={"activations": ["Sigmoid", "Tanh", "Tanh"][:GATES[op] - 1
                                                                                                     if op == "GRU"
                                                                                                     else 3]}))
        v.append(_onnx(f"{p}-seqlens-full", op=op, seq_lens="full"))
        v.append(_onnx(f"{p}-seqlens-shape", op=op, seq_lens="shape"))
        v.append(_onnx(f"{p}-seqlens-short", op=op, seq_lens="short",
                       expect="sequence_lens must be a constant equal to the sequence length"))
        for use in ("Y", "Y_sq", "last"):
            v.append(_onnx(f"{p}-use-{use}", 4, op=op, use=use))
        v.append(_onnx(f"{p}-Y-and-Y_h", 4, op=op, use="Y+Y_h", stacked=True))
        v.append(_onnx(f"{p}-stacked", 4, op=op, stacked=True))
        v.append(_onnx(f"{p}-stacked-seq-head", 4, op=op, stacked=True, use="Y_sq", head=True))
        v.append(_onnx(f"{p}-head", 4, op=op, head=True))
        for tail in ("gather_last", "bf_gather_last", "bf_flat", "bf4_gather_last"):
            v.append(_onnx(f"{p}-torch-{tail}", 4, op=op, use="Y", tail=tail, head=True))
        v.append(_onnx(f"{p}-torch-hn_gather", 4, op=op, use="Y_h", tail="hn_gather", head=True))
        v.append(_onnx(f"{p}-torch-layout1-gather", 4, op=op, layout=1, use="Y", tail="gather_last", head=True))
        v.append(_onnx(f"{p}-opset7", 4, op=op, opset=7, head=True))
        v.append(_onnx(f"{p}-opset7-seq", 4, op=op, opset=7, use="Y_sq"))
        v.append(_onnx(f"{p}-opset14-layout0", 4, op=op, opset=14, attrs={"layout": 0}))
        v.append(_onnx(f"{p}-bidirectional", op=op, attrs={"direction": "bidirectional"},
                       expect="direction 'bidirectional' is not supported"))
        v.append(_onnx(f"{p}-reverse", op=op, attrs={"direction": "reverse"},
                       expect="direction 'reverse' is not supported"))
        v.append(_onnx(f"{p}-batch2", op=op, batch=2, expect="batch size 2 is not supported"))
        v.append(_onnx(f"{p}-dynamic-T", op=op, dynamic_steps=True, expect="dynamic dimension 1"))
        v.append(_onnx(f"{p}-dynamic-batch", op=op, batch="N", head=True))
        v.append(_onnx(f"{p}-torch-zero-state", 4, op=op, init="zeros_of_shape", use="Y", tail="bf_gather_last",
                       head=True))
        v.append(_onnx(f"{p}-init-input", op=op, init="input", expect="initial_h ('l1_h0_input') must be a constant"))
        v.append(_onnx(f"{p}-stacked-20-6", 6, op=op, stacked=True, hidden=20, hidden2=6, head=True))
        v.append(_onnx(f"{p}-t1-use-Y", 1, op=op, use="Y"))
        v.append(_onnx(f"{p}-relu", op=op, attrs={"activations": ["Sigmoid", "Relu", "Relu"][:3 if op == "LSTM"
                                                                                             else 2]},
                       expect="are not supported"))
        v.append(_onnx(f"{p}-clip3", op=op, attrs={"clip": 3.0}, expect="clip 3 (gate pre-activations clipped)"))
        v.append(_onnx(f"{p}-clip50", op=op, attrs={"clip": 50.0}))
        v.append(_onnx(f"{p}-clip8-bites", 5, op=op, attrs={"clip": 8.0}, weight_scale=4.0))
        # gate pre-activation parts beyond the int16 Q3.12 range: each part saturates before the sum (CMSIS-NN's
        # LSTM and kwscc_gru_s8 alike), a known weakness these rows measure
        v.append(_onnx(f"{p}-weights-x6", 5, op=op, weight_scale=6.0))
    v.append(_onnx("lstm-peepholes", 5, op="LSTM", peepholes=True))
    v.append(_onnx("lstm-peepholes-init", 5, op="LSTM", peepholes=True, init="const", hidden=20))
    v.append(_onnx("lstm-clip8-peepholes", 5, op="LSTM", peepholes=True, init="const", attrs={"clip": 8.0},
                   weight_scale=4.0))
    v.append(_onnx("lstm-input-forget", op="LSTM", attrs={"input_forget": 1}, expect="input_forget"))
    v.append(_onnx("lstm-use-Y_c", op="LSTM", use="Y_c", expect="final cell state output Y_c"))
    v.append(_onnx("lstm-opset14-layout1-peep", 4, op="LSTM", layout=1, peepholes=True, init="const"))
    for lbr in (0, 1):
        v.append(_onnx(f"gru-lbr{lbr}", 5, op="GRU", hidden=20, attrs={"linear_before_reset": lbr}))
        v.append(_onnx(f"gru-lbr{lbr}-init", 5, op="GRU", hidden=20, init="const", attrs={"linear_before_reset": lbr}))
        v.append(_onnx(f"gru-lbr{lbr}-opset7", 4, op="GRU", opset=7, attrs={"linear_before_reset": lbr}))
    v.append(_onnx("rnn-tanh", op="RNN", expect="op 'RNN' is not supported"))
    # TFLite UNIDIRECTIONAL_SEQUENCE_LSTM (float)
    for time_major in ("", "transpose"):
        tm = "-time-major" if time_major else ""
        v.append(_tfl(f"tfl{tm}", 5, time_major=time_major))
        v.append(_tfl(f"tfl{tm}-last-head", 5, time_major=time_major, head=True))
    v.append(_tfl("tfl-time-major-input", 5, time_major="input", head=True, expect="is time-major [T, batch, 10]"))
    v.append(_tfl("tfl-h64-f40-t49", 49, 40, hidden=64, last=True))
    v.append(_tfl("tfl-stacked", 5, layers=2, hidden=12, head=True))
    v.append(_tfl("tfl-stacked-time-major", 5, layers=2, hidden=12, time_major="transpose", head=True))
    v.append(_tfl("tfl-flat-head", 5, flat_head=True))
    v.append(_tfl("tfl-stacked-proj-flat", 5, layers=2, hidden=12, projection=6, peepholes=True, flat_head=True))
    v.append(_tfl("tfl-cell-clip", 5, cell_clip=0.8))
    v.append(_tfl("tfl-peepholes", 5, peepholes=True))
    v.append(_tfl("tfl-projection", 5, hidden=12, projection=6))
    v.append(_tfl("tfl-projection-clip", 5, hidden=12, projection=6, proj_clip=0.3))
    v.append(_tfl("tfl-peep-proj-clips", 5, hidden=12, projection=6, peepholes=True, cell_clip=1.0, proj_clip=0.5,
                  last=True))
    v.append(_tfl("tfl-asymmetric-inputs", 5, asymmetric=True))
    v.append(_tfl("tfl-dynamic-T", 5, dynamic_steps=True, last=True, expect="has a dynamic dimension"))
    v.append(_tfl("tfl-batch2", 5, batch=2, expect="batch size 2 is not supported"))
    v.append(_tfl("tfl-cifg", 5, cifg=True, expect="CIFG"))
    v.append(_tfl("tfl-layer-norm", 5, layer_norm=True, expect="layer normalisation"))
    return v


# ---------------------------------------------------------------- running one variant

def _runtime(path: Path, x: np.ndarray) -> np.ndarray:
    """The model's own float runtime, one sample at a time, LiteRT's state variables reset before each."""
    if path.suffix == ".onnx":
        import onnxruntime as ort
        from onnx.reference import ReferenceEvaluator

        try:
            options = ort.SessionOptions()
            options.log_severity_level = 4
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception:  # onnxruntime has no layout=1 LSTM/GRU: onnx's reference implementation
            evaluator = ReferenceEvaluator(str(path))
            return np.stack([evaluator.run(None, {"x": row[None]})[0] for row in x])
        name = session.get_inputs()[0].name
        return np.stack([session.run(None, {name: row[None]})[0] for row in x])
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path))
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rows = []
    for row in x:
        it.reset_all_variables()
        it.set_tensor(inp["index"], row.reshape(inp["shape"]))
        it.invoke()
        rows.append(it.get_tensor(out["index"]).copy())
    return np.stack(rows)


def _data(variant: Variant, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (count, variant.steps, variant.features)).astype(np.float32)


def check(variant: Variant, directory: Path, calib: int = 32, test: int = 16, compile_c: bool = True) -> dict:
    """What kwscc does with the variant: {"result": "ok" | "refused" | "FAIL", "detail", numbers...}.
    ok: float IR within FLOAT_TOLERANCE of the runtime, and (compile_c) C == simulator and SQNR >= the bound.
    refused: one line naming the node, containing variant.expect. Anything else is FAIL."""
    from kwscc.driver import CompileOptions, compile_model
    from kwscc.errors import KwsccError
    from kwscc.frontends import read_model
    from kwscc.ir.execute import run_float
    from kwscc.passes import run_pipeline
    from kwscc.validate.validate import validate

    start = time.monotonic()
    out = {"variant": variant.name, "expect": variant.expect}
    path = build(variant, directory)
    try:
        graph = run_pipeline(read_model(path))
        x = _data(variant, 4, 3)
        ref = _runtime(path, x)
        name = graph.inputs[0]
        got = np.stack([run_float(graph, {name: row.reshape(graph.tensors[name].shape)})[graph.outputs[0]]
                        for row in x])
        if got.size != ref.size:
            return {**out, "result": "FAIL", "detail": f"float output size {got.size} vs runtime {ref.size}"}
        err = float(np.abs(got.reshape(ref.shape) - ref).max() / max(1.0, float(np.abs(ref).max())))
        out["float_err"] = err
        out["layers"] = "+".join(n.op for n in graph.nodes() if n.op in ("LSTM", "GRU"))
        if err > FLOAT_TOLERANCE:
            return {**out, "result": "FAIL", "detail": f"float IR vs runtime {err:.2e}"}
        if compile_c:
            np.save(directory / "calib.npy", _data(variant, calib, 1))
            np.save(directory / "test.npy", _data(variant, test, 2))
            compiled = compile_model(path, CompileOptions(calib=str(directory / "calib.npy")))
            result = validate(compiled, str(directory / "test.npy"))
            out["mismatches"] = result["c_vs_simulator_mismatches"]
            out["sqnr_db"] = result["output_sqnr_db"]
            classifier = variant.build.get("head") or variant.build.get("flat_head")
            out["top1"] = result["top1_agreement"] if classifier else None
            out["arena"] = result["arena_bytes"]
            out["kernels"] = ",".join(c.function for c in compiled.calls if c.node.op in ("LSTM", "GRU"))
            if out["mismatches"] or out["sqnr_db"] < variant.min_sqnr_db:
                return {**out, "result": "FAIL", "detail": f"mismatches {out['mismatches']}, "
                                                           f"SQNR {out['sqnr_db']:.1f} dB"}
    except KwsccError as exc:
        text = str(exc)
        ok = variant.expect != "ok" and variant.expect in text and "\n" not in text
        return {**out, "result": "refused" if ok else "FAIL", "detail": text, "seconds": time.monotonic() - start}
    except Exception as exc:  # a crash is a bug whatever the variant
        return {**out, "result": "FAIL", "detail": f"{type(exc).__name__}: {exc}"}
    out["seconds"] = time.monotonic() - start
    if variant.expect != "ok":
        return {**out, "result": "FAIL", "detail": f"accepted, expected a refusal containing '{variant.expect}'"}
    return {**out, "result": "ok", "detail": ""}
