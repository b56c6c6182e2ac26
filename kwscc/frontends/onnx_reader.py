"""ONNX frontend (opsets 11-21; 7-10 converted on load): maps each ONNX node to canonical kwscc ops through ONNX_OPS."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from kwscc.check.limits import check_shape
from kwscc.check.onnx_model import check_model, check_node
from kwscc.errors import ModelError, UnsupportedError
from kwscc.frontends import onnx_loops
from kwscc.frontends.frames import Frames
from kwscc.frontends.onnx_recurrent import recurrent, slice_last_step
from kwscc.ir import Graph, Node, Tensor
from kwscc.passes.rewrite import remove_dead_nodes

log = logging.getLogger(__name__)

MIN_OPSET, MAX_OPSET = 11, 21
OLDEST_CONVERTIBLE = 7  # opsets 7-10 are converted in memory with onnx.version_converter
CONVERT_TO = 13


class Reader:
    """State while one ONNX graph is read: the IR graph under construction and the opset."""

    def __init__(self, graph: Graph, opset: int) -> None:
        self.graph = graph
        self.opset = opset
        self.dynamic_first: set[str] = set()  # inputs whose first dimension the file leaves open
        self.cell_outputs: dict[str, object] = {}  # LSTM Y_c outputs (not supported) -> their node
        self.frames = Frames(graph)  # time frames of sequences (unrolled Scan loops)
        self.consumed: set[str] = set()  # every tensor name a node or graph output reads
        self._derived: dict[tuple[str, str], str] = {}
        self.converters = ONNX_OPS

    def derived_const(self, source: str, tag: str, make: Callable[[], np.ndarray]) -> str:
        """The IR constant `make()` computes from constant `source` (e.g. transposed weights), added
        once per (source, tag): every step of an unrolled loop reads the same one."""
        key = (source, tag)
        if key not in self._derived:
            value = np.ascontiguousarray(make(), np.float32)
            self._derived[key] = self.graph.add_const(f"{source}_kwscc_{tag[:1]}", value).name
        return self._derived[key]

    def convert(self, onode) -> None:
        """Map one ONNX node to IR nodes (graph nodes, and each step's copy of a Scan body's nodes)."""
        if onode.domain not in ("", "ai.onnx"):
            raise UnsupportedError(f"node '{onode.name}': op '{onode.domain}.{onode.op_type}' is not supported")
        handler = ONNX_OPS.get(onode.op_type)
        if handler is None:
            raise UnsupportedError(
                f"node '{onode.name}': op '{onode.op_type}' is not supported; supported ONNX ops: "
                + ", ".join(supported_ops())
            )
        _refuse_cell_state(self, f"node '{onode.name}'", onode.input)
        check_node(onode, self.graph.tensors)
        try:
            handler(self, onode)
        except (KeyError, IndexError, ValueError) as exc:
            raise ModelError(f"node '{onode.name}' ({onode.op_type}): malformed ({exc})") from None

    def tensor(self, name: str) -> Tensor:
        return self.graph.tensors[name]

    def const(self, onode, index: int, what: str) -> np.ndarray:
        """The value of input `index`, which must be a constant (an initializer or folded)."""
        name = onode.input[index]
        tensor = self.graph.tensors.get(name)
        if tensor is None or not tensor.is_const:
            raise UnsupportedError(f"node '{onode.name}' ({onode.op_type}): {what} ('{name}') must be a constant")
        return tensor.data

    def optional_const(self, onode, index: int, what: str) -> np.ndarray | None:
        if len(onode.input) <= index or onode.input[index] == "":
            return None
        return self.const(onode, index, what)

    def emit(self, onode, op: str, inputs: list[str], attrs: dict | None = None, outputs: list[str] | None = None) -> None:
        node = self.graph.add_node(Node(onode.name, op, list(inputs), list(outputs or onode.output[:1]), attrs or {}))
        self.graph.node_sources[node.name] = onode.op_type


def attrs_of(onode) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in onode.attribute}


def _spatial_pads(onode, attrs, in_hw, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """Explicit (top, left, bottom, right) pads from `pads` or `auto_pad`."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise UnsupportedError(f"node '{onode.name}' ({onode.op_type}): only 2-D spatial ops are supported")
        return tuple(int(p) for p in pads)
    if auto == "VALID":
        return (0, 0, 0, 0)
    pads = []
    for i in range(2):
        out = -(-in_hw[i] // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_hw[i])
        small, big = total // 2, total - total // 2
        pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _require_4d(r: Reader, onode) -> tuple[int, ...]:
    shape = r.tensor(onode.input[0]).shape
    if len(shape) != 4:
        raise UnsupportedError(
            f"node '{onode.name}' ({onode.op_type}): input rank {len(shape)} not supported (only 4-D NCHW)"
        )
    return shape


def _conv(r: Reader, onode) -> None:
    a = attrs_of(onode)
    x = _require_4d(r, onode)
    w = r.const(onode, 1, "weights")
    strides = tuple(a.get("strides", [1, 1]))
    dilations = tuple(a.get("dilations", [1, 1]))
    pads = _spatial_pads(onode, a, x[2:], w.shape[2:], strides, dilations)
    inputs = list(onode.input[:3]) if len(onode.input) > 2 and onode.input[2] else list(onode.input[:2])
    if len(inputs) > 2:
        r.const(onode, 2, "bias")
    attrs = {"layout": "NCHW", "strides": strides, "pads": pads, "dilations": dilations,
             "group": int(a.get("group", 1)), "act": None}
    r.emit(onode, "Conv", inputs, attrs)


def _gemm(r: Reader, onode) -> None:
    a = attrs_of(onode)
    if a.get("transA", 0):
        raise UnsupportedError(f"node '{onode.name}' (Gemm): transA=1 is not supported")
    b = r.const(onode, 1, "weights").astype(np.float32)
    alpha, trans = np.float32(a.get("alpha", 1.0)), a.get("transB", 0)
    weights = r.derived_const(onode.input[1], f"w{trans}/{alpha!r}", lambda: (b if trans else b.T) * alpha)
    rows = r.tensor(weights).shape[0]
    inputs = [onode.input[0], weights]
    c = r.optional_const(onode, 2, "bias")
    if c is not None:
        if c.size not in (1, rows):
            raise UnsupportedError(f"node '{onode.name}' (Gemm): a bias of shape {list(c.shape)} (one per row) is not supported")
        beta = np.float32(a.get("beta", 1.0))
        inputs.append(r.derived_const(onode.input[2], f"b{rows}/{beta!r}",
                                      lambda: np.broadcast_to(c.reshape(-1).astype(np.float32) * beta, (rows,))))
    _dense(r, onode, inputs)


def _matmul(r: Reader, onode) -> None:
    b = r.const(onode, 1, "weights")
    if b.ndim != 2:
        raise UnsupportedError(f"node '{onode.name}' (MatMul): only 2-D constant weights are supported")
    w = r.derived_const(onode.input[1], "wT", lambda: b.T.astype(np.float32))
    _dense(r, onode, [onode.input[0], w])


def _dense(r: Reader, onode, inputs: list[str]) -> None:
    if len(r.tensor(inputs[0]).shape) != 2:
        raise UnsupportedError(
            f"node '{onode.name}' ({onode.op_type}): input must be 2-D [batch, features], "
            f"got {list(r.tensor(inputs[0]).shape)}"
        )
    r.emit(onode, "Dense", inputs, {"act": None})


def _batchnorm(r: Reader, onode) -> None:
    a = attrs_of(onode)
    if a.get("training_mode", 0):
        raise UnsupportedError(f"node '{onode.name}' (BatchNormalization): training_mode=1 is not supported")
    for i, what in enumerate(["scale", "bias", "mean", "variance"], start=1):
        r.const(onode, i, what)
    r.emit(onode, "BatchNormalization", onode.input[:5], {"epsilon": float(a.get("epsilon", 1e-5)), "layout": "NCHW"})


def _clip(r: Reader, onode) -> None:
    if r.opset < 11:
        a = attrs_of(onode)
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
    else:
        lo_v, hi_v = r.optional_const(onode, 1, "min"), r.optional_const(onode, 2, "max")
        lo = -np.inf if lo_v is None else float(lo_v)
        hi = np.inf if hi_v is None else float(hi_v)
    r.emit(onode, "Clip", onode.input[:1], {"min": float(lo), "max": float(hi)})


def _pool(r: Reader, onode) -> None:
    a = attrs_of(onode)
    x = _require_4d(r, onode)
    if len(onode.output) > 1 and onode.output[1]:
        raise UnsupportedError(f"node '{onode.name}' (MaxPool): the indices output is not supported")
    kernel = tuple(a["kernel_shape"])
    strides = tuple(a.get("strides", [1, 1]))
    if tuple(a.get("dilations", [1, 1])) != (1, 1):
        raise UnsupportedError(f"node '{onode.name}' ({onode.op_type}): dilated pooling is not supported")
    pads = _spatial_pads(onode, a, x[2:], kernel, strides, (1, 1))
    if a.get("count_include_pad", 0) and any(pads):
        raise UnsupportedError(
            f"node '{onode.name}' (AveragePool): count_include_pad=1 with padding is not supported "
            "(CMSIS-NN averages over in-image taps only)"
        )
    if a.get("ceil_mode", 0):
        floor_out = [(x[2 + i] + pads[i] + pads[i + 2] - kernel[i]) // strides[i] + 1 for i in range(2)]
        ceil_out = [-(-(x[2 + i] + pads[i] + pads[i + 2] - kernel[i]) // strides[i]) + 1 for i in range(2)]
        if floor_out != ceil_out:
            raise UnsupportedError(f"node '{onode.name}' ({onode.op_type}): ceil_mode=1 is not supported")
    attrs = {"layout": "NCHW", "kernel": kernel, "strides": strides, "pads": pads, "act": None}
    r.emit(onode, onode.op_type, onode.input[:1], attrs)


def _global_pool(r: Reader, onode) -> None:
    x = _require_4d(r, onode)
    attrs = {"layout": "NCHW", "kernel": (x[2], x[3]), "strides": (1, 1), "pads": (0, 0, 0, 0), "act": None}
    r.emit(onode, "AveragePool", onode.input[:1], attrs)


def _reduce_mean(r: Reader, onode) -> None:
    """ReduceMean over H, W or both of a 4-D NCHW tensor: an average pool whose window spans those axes."""
    a = attrs_of(onode)
    x = r.tensor(onode.input[0]).shape
    axes = _axes(r, onode)
    if axes is None and not a.get("noop_with_empty_axes", 0):
        axes = list(range(len(x)))
    axes = sorted({int(ax) % len(x) for ax in (axes or [])})
    if len(x) != 4 or not axes or not set(axes) <= {2, 3}:
        raise UnsupportedError(f"node '{onode.name}' (ReduceMean): only the mean over spatial axes (H, W or both) "
                               f"of a 4-D NCHW tensor is supported, not axes {axes} of shape {list(x)}")
    kernel = (x[2] if 2 in axes else 1, x[3] if 3 in axes else 1)
    pooled = onode.output[0] if a.get("keepdims", 1) else onode.output[0] + "_kwscc_pooled"
    attrs = {"layout": "NCHW", "kernel": kernel, "strides": (1, 1), "pads": (0, 0, 0, 0), "act": None}
    r.emit(onode, "AveragePool", onode.input[:1], attrs, outputs=[pooled])
    if pooled != onode.output[0]:
        r.emit(onode, "Reshape", [pooled], {"shape": tuple(d for i, d in enumerate(x) if i not in axes)})


def _pad(r: Reader, onode) -> None:
    a = attrs_of(onode)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise UnsupportedError(f"node '{onode.name}' (Pad): mode '{mode}' is not supported (only 'constant')")
    rank = len(r.tensor(onode.input[0]).shape)
    pads = [int(p) for p in r.const(onode, 1, "pads")]
    value = r.optional_const(onode, 2, "constant_value")
    axes = r.optional_const(onode, 3, "axes")
    axes = list(range(rank)) if axes is None else [int(ax) % rank for ax in axes]
    if len(pads) != 2 * len(axes):
        raise ModelError(f"node '{onode.name}' (Pad): {len(pads)} pads for {len(axes)} axes")
    pairs = [(0, 0)] * rank
    for i, ax in enumerate(axes):
        pairs[ax] = (pads[i], pads[i + len(axes)])
    if any(p < 0 for pair in pairs for p in pair):
        raise UnsupportedError(f"node '{onode.name}' (Pad): negative pads (cropping) are not supported")
    value = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
    r.emit(onode, "Pad", onode.input[:1], {"pads": tuple(pairs), "value": value})


def _split(r: Reader, onode) -> None:
    """Split of an activation: one Crop per output (sizes from the `split` input or attribute, else equal parts)."""
    a = attrs_of(onode)
    x = r.tensor(onode.input[0]).shape
    axis = int(a.get("axis", 0)) % len(x)
    sizes = r.optional_const(onode, 1, "split") if r.opset >= 13 else a.get("split")
    outputs = list(onode.output)
    if sizes is None or len(sizes) == 0:
        parts = int(a.get("num_outputs", len(outputs)))
        step = -(-x[axis] // parts)  # opset 18: the last part may be smaller
        sizes = [min(step, x[axis] - i * step) for i in range(parts)]
    sizes = [int(s) for s in sizes]
    if len(sizes) != len(outputs) or sum(sizes) != x[axis] or min(sizes) < 0:
        raise ModelError(f"node '{onode.name}' (Split): sizes {sizes} do not split axis {axis} of {list(x)} "
                         f"into {len(outputs)} outputs")
    start = 0
    for out, size in zip(outputs, sizes):
        r.emit(onode, "Crop", onode.input[:1], {"axis": axis, "start": start, "end": start + size}, outputs=[out])
        start += size


def _prelu(r: Reader, onode) -> None:
    slope = r.const(onode, 1, "slope").astype(np.float32)
    r.emit(onode, "PRelu", [onode.input[0], r.graph.add_const(onode.input[1] + "_kwscc_slope", slope).name])


def _table_activation(op: str, defaults: dict) -> Callable:
    """Handler for an activation kwscc runs through a lookup table; `defaults`: its float attributes."""
    def handler(r: Reader, onode) -> None:
        a = attrs_of(onode)
        r.emit(onode, op, onode.input[:1], {k: float(a.get(k, v)) for k, v in defaults.items()})
    return handler


def _reshape_to(r: Reader, onode, shape) -> None:
    r.emit(onode, "Reshape", onode.input[:1], {"shape": tuple(int(d) for d in shape)})


def _reshape(r: Reader, onode) -> None:
    x = r.tensor(onode.input[0]).shape
    target = [int(d) for d in r.const(onode, 1, "shape")]
    if not attrs_of(onode).get("allowzero", 0):
        target = [x[i] if d == 0 else d for i, d in enumerate(target)]
    if -1 in target:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = int(np.prod(x)) // max(known, 1)
    if int(np.prod(target)) != int(np.prod(x)):
        raise ModelError(f"node '{onode.name}' (Reshape): cannot reshape {list(x)} to {target}")
    _reshape_to(r, onode, target)


def _axes(r: Reader, onode) -> list[int] | None:
    a = attrs_of(onode)
    if "axes" in a:
        return list(a["axes"])
    value = r.optional_const(onode, 1, "axes")
    return None if value is None else [int(v) for v in value]


def _squeeze(r: Reader, onode) -> None:
    x = r.tensor(onode.input[0]).shape
    axes = _axes(r, onode)
    axes = [i for i, d in enumerate(x) if d == 1] if axes is None else [ax % len(x) for ax in axes]
    _reshape_to(r, onode, [d for i, d in enumerate(x) if i not in axes])


def _unsqueeze(r: Reader, onode) -> None:
    shape = list(r.tensor(onode.input[0]).shape)
    axes = _axes(r, onode) or []
    rank = len(shape) + len(axes)
    for ax in sorted(a % rank for a in axes):
        shape.insert(ax, 1)
    _reshape_to(r, onode, shape)


def _flatten(r: Reader, onode) -> None:
    x = r.tensor(onode.input[0]).shape
    axis = attrs_of(onode).get("axis", 1) % max(len(x), 1)
    _reshape_to(r, onode, [int(np.prod(x[:axis])), int(np.prod(x[axis:]))])


def _transpose(r: Reader, onode) -> None:
    x = r.tensor(onode.input[0]).shape
    perm = attrs_of(onode).get("perm", list(reversed(range(len(x)))))
    r.emit(onode, "Transpose", onode.input[:1], {"perm": tuple(int(p) for p in perm)})


def _softmax(r: Reader, onode) -> None:
    x = r.tensor(onode.input[0]).shape
    axis = attrs_of(onode).get("axis", 1 if r.opset < 13 else -1) % len(x)
    if any(d != 1 for d in x[axis + 1:]):  # before opset 13 the axes from `axis` on are flattened into one
        raise UnsupportedError(f"node '{onode.name}' (Softmax): only softmax over the last non-unit axis is supported")
    r.emit(onode, "Softmax", onode.input[:1], {"axis": axis})


def _identity(r: Reader, onode) -> None:
    if onode.op_type == "Dropout":
        training = r.optional_const(onode, 2, "training_mode")
        if training is not None and bool(training):
            raise UnsupportedError(f"node '{onode.name}' (Dropout): training_mode=true is not supported")
        if len(onode.output) > 1 and onode.output[1]:
            raise UnsupportedError(f"node '{onode.name}' (Dropout): the mask output is not supported")
    r.emit(onode, "Identity", onode.input[:1])


def _constant(r: Reader, onode) -> None:
    a = onode.attribute[0]
    if a.name == "value":
        value = numpy_helper.to_array(a.t)
    elif a.name in ("value_float", "value_floats"):
        value = np.array(helper.get_attribute_value(a), np.float32)
    elif a.name in ("value_int", "value_ints"):
        value = np.array(helper.get_attribute_value(a), np.int64)
    else:
        raise UnsupportedError(f"node '{onode.name}' (Constant): attribute '{a.name}' is not supported")
    r.graph.add_tensor(Tensor(onode.output[0], tuple(value.shape), str(value.dtype), value))


def _constant_of_shape(r: Reader, onode) -> None:
    """ConstantOfShape of a constant shape (PyTorch's traced torch.zeros initial states, their shape computed
    from the input's static shape) is a constant."""
    shape = r.const(onode, 0, "shape").astype(np.int64).reshape(-1)
    attrs = attrs_of(onode)
    fill = numpy_helper.to_array(attrs["value"]).reshape(-1) if "value" in attrs else np.zeros(1, np.float32)
    if fill.size != 1:
        raise ModelError(f"node '{onode.name}' (ConstantOfShape): value must hold one element, got {fill.size}")
    value = np.full(check_shape(shape, f"node '{onode.name}' (ConstantOfShape)"), fill[0], fill.dtype)
    r.graph.add_tensor(Tensor(onode.output[0], tuple(value.shape), str(value.dtype), value))


def _variadic(r: Reader, onode) -> None:
    """Max / Min of any number of inputs: a chain of two-input nodes (one input: Identity)."""
    inputs = [name for name in onode.input if name]
    if not inputs:
        raise ModelError(f"node '{onode.name}' ({onode.op_type}): no inputs")
    acc = inputs[0]
    for i, name in enumerate(inputs[1:], start=1):
        last = i == len(inputs) - 1
        out = onode.output[0] if last else r.graph.unique_tensor_name(f"{onode.output[0]}_part{i}")
        r.graph.add_node(Node(onode.name if last else f"{onode.name}_part{i}", onode.op_type, [acc, name], [out]))
        acc = out
    if len(inputs) == 1:
        r.emit(onode, "Identity", inputs)


def _gather(r: Reader, onode) -> None:
    """Gather of one frame of an activation with a constant index (a loop reading step t) is a Crop;
    anything else is shape arithmetic on constants."""
    data, index = r.tensor(onode.input[0]), r.graph.tensors.get(onode.input[1])
    if data.is_const or index is None or not index.is_const or index.data.size != 1:
        return _simple("Gather")(r, onode)
    shape = data.shape
    axis = attrs_of(onode).get("axis", 0) % len(shape)
    t = int(index.data.reshape(-1)[0])
    t = t + shape[axis] if t < 0 else t
    out_shape = shape[:axis] + index.data.shape + shape[axis + 1:]
    r.frames.take(data.name, axis, t, onode.output[0], out_shape, f"node '{onode.name}' (Gather)", "Gather")


def _simple(op: str) -> Callable:
    """Handler for ops whose ONNX form is already canonical (attrs `axis` and `to` kept)."""
    def handler(r: Reader, onode) -> None:
        attrs = {k: v for k, v in attrs_of(onode).items() if k in ("axis", "start", "end")}
        if op == "Slice" and not all(r.tensor(n).is_const for n in onode.input if n):
            if slice_last_step(r, onode):
                return
            raise UnsupportedError(f"node '{onode.name}' (Slice): only slices of constants (shape arithmetic) "
                                   "and the last step of an LSTM/GRU output are supported")
        if op == "Cast":
            attrs["to"] = str(helper.tensor_dtype_to_np_dtype(attrs_of(onode)["to"]))
        r.emit(onode, op, list(onode.input), attrs)
    return handler


ONNX_OPS: dict[str, Callable[[Reader, object], None]] = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batchnorm,
    "Relu": lambda r, n: r.emit(n, "Relu", n.input[:1]), "Clip": _clip,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool, "ReduceMean": _reduce_mean,
    "Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Transpose": _transpose, "Softmax": _softmax, "Identity": _identity, "Dropout": _identity,
    "Constant": _constant, "ConstantOfShape": _constant_of_shape, "Shape": _simple("Shape"), "Gather": _gather,
    "Concat": _simple("Concat"), "Cast": _simple("Cast"), "Slice": _simple("Slice"),
    "Add": _simple("Add"), "Sub": _simple("Sub"), "Mul": _simple("Mul"), "Div": _simple("Div"),
    "Max": _variadic, "Min": _variadic,
    "Pad": _pad, "PRelu": _prelu, "Split": _split, "Sigmoid": _table_activation("Sigmoid", {}), "Tanh": _table_activation("Tanh", {}),
    "HardSigmoid": _table_activation("HardSigmoid", {"alpha": 0.2, "beta": 0.5}),
    "HardSwish": _table_activation("HardSwish", {}), "LeakyRelu": _table_activation("LeakyRelu", {"alpha": 0.01}),
    "LSTM": recurrent, "GRU": recurrent, "Scan": onnx_loops.scan, "Loop": onnx_loops.loop,
}


def supported_ops() -> list[str]:
    return sorted(ONNX_OPS)


def _load(path: Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path), load_external_data=False)  # its locations are checked first
    except Exception as exc:  # protobuf raises several unrelated types for corrupt files
        raise ModelError(f"{path.name}: not a readable ONNX file ({type(exc).__name__}: {_first_line(exc)})") from None
    if not model.graph.node and not model.graph.output:
        raise ModelError(f"{path.name}: not an ONNX model (empty or truncated graph)")
    check_model(model, path)
    try:
        onnx.load_external_data_for_model(model, str(path.resolve().parent))
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelError(f"{path.name}: invalid ONNX model: {_first_line(exc)}") from None
    return model


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _opset(model) -> int:
    versions = {o.domain: o.version for o in model.opset_import}
    return versions.get("", versions.get("ai.onnx", 0))


def _upgraded(model, path: Path):
    """The model at an opset kwscc reads: opsets 7-10 are converted in memory (the file is untouched)."""
    opset = _opset(model)
    if MIN_OPSET <= opset <= MAX_OPSET:
        return model
    if not OLDEST_CONVERTIBLE <= opset < MIN_OPSET:
        raise UnsupportedError(f"{path.name}: ONNX opset {opset} is not supported (supported: {MIN_OPSET}-{MAX_OPSET}, "
                               f"and {OLDEST_CONVERTIBLE}-{MIN_OPSET - 1} converted on load)")
    import onnx.version_converter  # noqa: F401  (a submodule onnx does not import by itself)

    try:
        converted = onnx.version_converter.convert_version(model, CONVERT_TO)
        onnx.checker.check_model(converted)
    except Exception as exc:  # the converter raises bare RuntimeErrors from C++
        raise UnsupportedError(f"{path.name}: ONNX opset {opset} could not be converted to opset {CONVERT_TO} "
                               f"({_first_line(exc)}); re-export the model at opset {MIN_OPSET} or later") from None
    log.info("%s: converted from ONNX opset %d to %d in memory", path.name, opset, CONVERT_TO)
    return converted


def _input_shape(vi, overrides: dict) -> tuple[int, ...]:
    if vi.name in overrides:
        return check_shape(overrides[vi.name], f"--input-shape {vi.name}")
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        raise UnsupportedError(f"input '{vi.name}' has no shape: give one with --input-shape NAME=D1,D2,...")
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value >= 0:  # 0 is refused by check_shape; -1 means dynamic
            dims.append(int(d.dim_value))
        elif i == 0:
            log.info("input %s: dynamic batch dimension set to 1", vi.name)
            dims.append(1)
        else:
            raise UnsupportedError(
                f"input '{vi.name}' has a dynamic dimension {i} ('{d.dim_param or '?'}'): "
                f"give a fixed shape with --input-shape {vi.name}=D1,D2,..."
            )
    return check_shape(dims, f"input '{vi.name}'")


def _add_initializers(graph: Graph, model) -> None:
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ModelError(f"initializer '{init.name}' contains NaN or Inf values")
        if value.dtype.kind in "fc" and value.dtype != np.float32:
            raise UnsupportedError(f"initializer '{init.name}' has type {value.dtype}; kwscc reads float32 models")
        graph.add_tensor(Tensor(init.name, tuple(value.shape), str(value.dtype), value))


def _refuse_cell_state(r: Reader, reader: str, names) -> None:
    for name in names:
        if name in r.cell_outputs:
            onode = r.cell_outputs[name]
            raise UnsupportedError(f"node '{onode.name}' (LSTM): its final cell state output Y_c ('{name}') is read "
                                   f"by {reader}; only Y and Y_h are supported")


def _consumed(graph) -> set[str]:
    """Names read by the graph's nodes (those of loop bodies included) and outputs."""
    names = {o.name for o in graph.output}
    for onode in graph.node:
        names.update(onode.input)
        for a in onode.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                names |= _consumed(a.g)
    return names


def read(path: Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    model = _upgraded(_load(path), path)
    if model.functions:  # exporters (torch dynamo) may wrap parts of the graph in local functions
        from onnx import inliner

        model = inliner.inline_local_functions(model)
    r = Reader(Graph(path.stem), _opset(model))
    _add_initializers(r.graph, model)
    for vi in model.graph.input:
        if vi.name in r.graph.tensors:
            continue  # old exporters list initializers as inputs
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise UnsupportedError(f"input '{vi.name}' is not float32")
        r.graph.add_tensor(Tensor(vi.name, _input_shape(vi, input_shapes or {})))
        r.graph.inputs.append(vi.name)
        dims = vi.type.tensor_type.shape.dim
        if vi.name not in (input_shapes or {}) and dims and not dims[0].dim_value > 0:
            r.dynamic_first.add(vi.name)
    r.consumed = _consumed(model.graph)
    for i, onode in enumerate(model.graph.node):
        if not onode.name:
            onode.name = f"{onode.op_type}_{i}"
        r.convert(onode)
    r.graph.outputs = [o.name for o in model.graph.output]
    _refuse_cell_state(r, "graph output", r.graph.outputs)
    for name in r.graph.outputs:
        if name not in r.graph.tensors:
            raise ModelError(f"{path.name}: graph output '{name}' is not produced by any node")
    if r.frames.made_views:  # a time-major reshape whose frames are read batch-first is left unused
        remove_dead_nodes(r.graph)
        r.graph.remove_unused_tensors()
    return r.graph
