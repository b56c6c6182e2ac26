"""Checks of an ONNX model before kwscc reads it: one ModelError/UnsupportedError per problem.

check_model() looks at the whole file (names, initializers, external data, graph inputs and outputs);
check_node() looks at one node, its attributes and the shapes and values of its inputs, right before
the reader turns it into IR. Every message names the user's node and op.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from kwscc.check.limits import MAX_DIM, check_shape
from kwscc.errors import ModelError, UnsupportedError
from kwscc.ir import Tensor

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
# which inputs of an op must be float (data, weights): the others are integer shapes and axes
FLOAT_INPUTS = {
    "Conv": (0, 1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1), "BatchNormalization": (0, 1, 2, 3, 4),
    "Relu": (0,), "Clip": (0, 1, 2), "MaxPool": (0,), "AveragePool": (0,), "GlobalAveragePool": (0,),
    "ReduceMean": (0,), "Softmax": (0,), "Dropout": (0,), "Sigmoid": (0,), "Tanh": (0,), "HardSigmoid": (0,),
    "HardSwish": (0,), "LeakyRelu": (0,), "PRelu": (0, 1), "Pad": (0, 2), "Split": (0,),
    "LSTM": (0, 1, 2, 3, 5, 6, 7), "GRU": (0, 1, 2, 3, 5),
}
# ops whose inputs must all have one type (ONNX binds them to one type parameter T)
SAME_TYPE_INPUTS = ("Add", "Sub", "Mul", "Div", "Concat")
# inputs that must be int64: shapes, axes, slice bounds
INT64_INPUTS = {"Reshape": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "ReduceMean": (1,), "Slice": (1, 2, 3, 4),
                "Loop": (0,)}
# inputs that must be int32 (LSTM/GRU sequence_lens) or bool (a Loop's condition)
INT32_INPUTS = {"LSTM": (4,), "GRU": (4,)}
BOOL_INPUTS = {"Loop": (1,)}
# numpy kinds an initializer may have at all (strings, complex numbers and objects never)
CONST_KINDS = "fiub"


def _where(onode) -> str:
    return f"node '{onode.name}' ({onode.op_type})"


# ---------------------------------------------------------------------------------------------------
# the whole model
# ---------------------------------------------------------------------------------------------------
def check_model(model: onnx.ModelProto, path: Path) -> None:
    graph = model.graph
    _check_node_names(graph)
    init_names = [init.name for init in graph.initializer]
    if len(set(init_names)) != len(init_names):
        dup = next(n for n in init_names if init_names.count(n) > 1)
        raise ModelError(f"{path.name}: two initializers are named '{dup}'")
    inits = {init.name: init for init in graph.initializer}
    for init in graph.initializer:
        _check_initializer(init, path)
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                _check_initializer(a.t, path, f"{_where(node)}: attribute '{a.name}'")
    inputs = [vi.name for vi in graph.input]
    for vi in graph.input:
        if vi.name in inits:
            declared = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            if vi.type.tensor_type.HasField("shape") and declared != list(inits[vi.name].dims):
                raise ModelError(f"{path.name}: initializer '{vi.name}' (shape {list(inits[vi.name].dims)}) shadows "
                                 f"graph input '{vi.name}' of shape {declared}")
    if graph.input and all(name in inits for name in inputs):
        raise ModelError(f"{path.name}: every graph input is shadowed by an initializer of the same name "
                         f"({', '.join(inputs)}): the model has no input to feed")
    for vi in graph.output:
        if vi.name in inits:
            raise ModelError(f"{path.name}: graph output '{vi.name}' is an initializer (a constant), not computed")
        if vi.name in inputs:
            raise ModelError(f"{path.name}: graph output '{vi.name}' is a graph input, not computed")


def _check_node_names(graph) -> None:
    seen: dict[str, str] = {}
    for node in graph.node:
        if not node.name:
            continue
        if node.name in seen:
            raise ModelError(f"two nodes are named '{node.name}' (ops {seen[node.name]} and {node.op_type}): "
                             "node names must be unique")
        seen[node.name] = node.op_type
    produced: dict[str, str] = {}
    for node in graph.node:
        for out in node.output:
            if out and out in produced:
                raise ModelError(f"{_where(node)}: output '{out}' is also written by node '{produced[out]}'")
            if out:
                produced[out] = node.name


def _check_initializer(init: onnx.TensorProto, path: Path, what: str | None = None) -> None:
    what = what or f"initializer '{init.name}'"
    if init.HasField("segment"):
        raise UnsupportedError(f"{what}: segmented tensors (field segment) are not supported")
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type))
    except Exception:  # an unknown or undefined data_type
        raise ModelError(f"{what}: unknown data type {init.data_type}") from None
    if dtype.kind not in CONST_KINDS:
        raise UnsupportedError(f"{what}: constants of type {dtype} are not supported")
    if any(d < 0 or d > MAX_DIM for d in init.dims):
        raise ModelError(f"{what}: dimensions {list(init.dims)} out of range")
    count = math.prod(init.dims)
    if init.data_location == onnx.TensorProto.EXTERNAL:
        _check_external(init, path, what, count * dtype.itemsize)
        return
    if init.HasField("raw_data"):
        if len(init.raw_data) != count * dtype.itemsize:
            raise ModelError(f"{what}: raw_data holds {len(init.raw_data)} bytes, but shape {list(init.dims)} "
                             f"of {dtype} needs {count * dtype.itemsize}")
        return
    stored = max(len(init.float_data), len(init.int32_data), len(init.int64_data), len(init.double_data),
                 len(init.uint64_data))
    if stored != count:
        raise ModelError(f"{what}: holds {stored} values, but shape {list(init.dims)} needs {count}")


def _check_external(init: onnx.TensorProto, path: Path, what: str, nbytes: int) -> None:
    """External data must be a regular file inside the model's folder, symlinks resolved."""
    info = {e.key: e.value for e in init.external_data}
    location = info.get("location", "")
    folder = path.resolve().parent
    target = (folder / location).resolve()
    if not location or os.path.isabs(location) or folder not in target.parents:
        raise ModelError(f"{what}: external data '{location}' lies outside the model's folder: refused")
    if not target.is_file():
        raise ModelError(f"{what}: external data file '{location}' not found beside the model")
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", nbytes))
    except ValueError:
        raise ModelError(f"{what}: external data offset/length are not numbers") from None
    if offset < 0 or length != nbytes or offset + length > target.stat().st_size:
        raise ModelError(f"{what}: external data ({location}, offset {offset}, length {length}) does not hold "
                         f"the {nbytes} bytes its shape needs")


# ---------------------------------------------------------------------------------------------------
# one node, with the shapes (and constant values) of its inputs
# ---------------------------------------------------------------------------------------------------
def check_node(onode, tensors: dict[str, Tensor]) -> None:
    where = _where(onode)
    inputs = [tensors.get(name) if name else None for name in onode.input]
    for name, t in zip(onode.input, inputs):
        if name and t is None:
            raise ModelError(f"{where}: input '{name}' is not a graph input, an initializer or an earlier node's "
                             "output")
    for i in FLOAT_INPUTS.get(onode.op_type, ()):
        if i < len(inputs) and inputs[i] is not None and np.dtype(inputs[i].dtype) != np.float32:
            raise UnsupportedError(f"{where}: input {i} ('{onode.input[i]}') has type {inputs[i].dtype}; "
                                   "kwscc reads float32 models (float32 data and weights)")
    if onode.op_type in SAME_TYPE_INPUTS and len({t.dtype for t in inputs if t is not None}) > 1:
        types = ", ".join(f"'{n}' {t.dtype}" for n, t in zip(onode.input, inputs) if t is not None)
        raise ModelError(f"{where}: inputs of different types ({types}); ONNX needs one type for all")
    for table, dtype in ((INT64_INPUTS, np.int64), (INT32_INPUTS, np.int32), (BOOL_INPUTS, np.bool_)):
        for i in table.get(onode.op_type, ()):
            if i < len(inputs) and inputs[i] is not None and np.dtype(inputs[i].dtype) != dtype:
                raise ModelError(f"{where}: input {i} ('{onode.input[i]}') has type {inputs[i].dtype}; ONNX needs "
                                 f"{np.dtype(dtype).name}")
    attrs = {a.name: helper.get_attribute_value(a) for a in onode.attribute}
    check = NODE_CHECKS.get(onode.op_type)
    if check is not None:
        check(where, attrs, inputs)


def _ints(where: str, attrs: dict, name: str, count: int, default, low: int, high: int = MAX_DIM) -> list[int]:
    value = list(attrs.get(name, default))
    if len(value) != count:
        raise UnsupportedError(f"{where}: {name} {value} has {len(value)} values; kwscc supports 2-D ops "
                               f"({count} values)")
    if any(v < low or v > high for v in value):
        raise ModelError(f"{where}: {name} {value} out of range (each must be {low}..{high})")
    return [int(v) for v in value]


def _auto_pad(where: str, attrs: dict) -> str:
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode(errors="replace") if isinstance(auto, bytes) else str(auto)
    auto = auto or "NOTSET"
    if auto not in AUTO_PADS:
        raise ModelError(f"{where}: auto_pad '{auto}' is not one of {', '.join(AUTO_PADS)}")
    if auto != "NOTSET" and "pads" in attrs:
        raise ModelError(f"{where}: auto_pad {auto} and explicit pads are both given")
    return auto


def _rank(where: str, t: Tensor | None, rank: int, what: str = "input") -> tuple[int, ...]:
    if t is None:
        raise ModelError(f"{where}: the {what} is missing")
    if len(t.shape) != rank:
        raise UnsupportedError(f"{where}: {what} '{t.name}' has rank {len(t.shape)} (shape {list(t.shape)}); "
                               f"only rank {rank} is supported here")
    return t.shape


def _window(where: str, attrs: dict, x, kernel, strides, dilations) -> None:
    """Pads, and a kernel that fits the padded input."""
    auto = _auto_pad(where, attrs)
    pads = _ints(where, attrs, "pads", 4, [0, 0, 0, 0], 0, MAX_DIM) if auto == "NOTSET" else [0, 0, 0, 0]
    for i, axis in enumerate("HW"):
        span = (kernel[i] - 1) * dilations[i] + 1
        padded = x[2 + i] + pads[i] + pads[i + 2]
        if auto == "NOTSET" and span > padded:
            raise ModelError(f"{where}: the kernel spans {span} along {axis}, more than the padded input "
                             f"({x[2 + i]} + pads {pads[i]}+{pads[i + 2]})")
        if strides[i] > padded:
            raise ModelError(f"{where}: stride {strides[i]} along {axis} is larger than the input ({padded})")


def _conv(where: str, attrs: dict, inputs) -> None:
    x = _rank(where, inputs[0], 4)
    w = _rank(where, inputs[1] if len(inputs) > 1 else None, 4, "weights")
    strides = _ints(where, attrs, "strides", 2, [1, 1], 1)
    dilations = _ints(where, attrs, "dilations", 2, [1, 1], 1)
    group = int(attrs.get("group", 1))
    if group < 1 or x[1] % group or w[0] % group:
        raise ModelError(f"{where}: group {group} must be >= 1 and divide the {x[1]} input and {w[0]} output channels")
    if w[1] * group != x[1]:
        raise ModelError(f"{where}: weights of shape {list(w)} do not fit {x[1]} input channels in {group} group(s)")
    if "kernel_shape" in attrs and list(attrs["kernel_shape"]) != list(w[2:]):
        raise ModelError(f"{where}: kernel_shape {list(attrs['kernel_shape'])} differs from the weights' {list(w[2:])}")
    if len(inputs) > 2 and inputs[2] is not None and inputs[2].shape != (w[0],):
        raise ModelError(f"{where}: bias of shape {list(inputs[2].shape)}, expected [{w[0]}]")
    _window(where, attrs, x, w[2:], strides, dilations)


def _pool(where: str, attrs: dict, inputs) -> None:
    x = _rank(where, inputs[0], 4)
    if "kernel_shape" not in attrs:
        raise ModelError(f"{where}: kernel_shape is missing")
    kernel = _ints(where, attrs, "kernel_shape", 2, [], 1)
    strides = _ints(where, attrs, "strides", 2, [1, 1], 1)
    _ints(where, attrs, "dilations", 2, [1, 1], 1)
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) == 4 and any(p >= kernel[i % 2] for i, p in enumerate(pads)):
        raise ModelError(f"{where}: pads {pads} must be smaller than the kernel {kernel}")
    _window(where, attrs, x, kernel, strides, (1, 1))


def _global_pool(where: str, attrs: dict, inputs) -> None:
    _rank(where, inputs[0], 4)


def _gemm(where: str, attrs: dict, inputs) -> None:
    a = _rank(where, inputs[0], 2)
    b = _rank(where, inputs[1] if len(inputs) > 1 else None, 2, "weights")
    for name in ("alpha", "beta"):
        if not math.isfinite(float(attrs.get(name, 1.0))):
            raise ModelError(f"{where}: {name} is {attrs[name]}; it must be a finite number")
    for name in ("transA", "transB"):
        if attrs.get(name, 0) not in (0, 1):
            raise ModelError(f"{where}: {name} must be 0 or 1, got {attrs[name]}")
    k_in = a[0] if attrs.get("transA", 0) else a[1]
    k_w = b[1] if attrs.get("transB", 0) else b[0]
    if k_in != k_w:
        raise ModelError(f"{where}: the input has {k_in} features but the weights {list(b)} expect {k_w}")


def _matmul(where: str, attrs: dict, inputs) -> None:
    a = inputs[0].shape if inputs[0] is not None else ()
    b = _rank(where, inputs[1] if len(inputs) > 1 else None, 2, "weights")
    if not a or a[-1] != b[0]:
        raise ModelError(f"{where}: the input {list(a)} has {a[-1] if a else 0} features but the weights {list(b)} "
                         f"expect {b[0]}")


def _batchnorm(where: str, attrs: dict, inputs) -> None:
    x = inputs[0].shape if inputs[0] is not None else ()
    if len(x) < 2:
        raise ModelError(f"{where}: input of shape {list(x)} has no channel axis")
    eps = float(attrs.get("epsilon", 1e-5))
    if not math.isfinite(eps) or eps < 0:
        raise ModelError(f"{where}: epsilon {eps} must be a finite number >= 0")
    for i, what in enumerate(("scale", "bias", "mean", "variance"), start=1):
        t = inputs[i] if i < len(inputs) else None
        if t is None:
            raise ModelError(f"{where}: {what} is missing")
        if t.shape != (x[1],):
            raise ModelError(f"{where}: {what} has shape {list(t.shape)}, expected [{x[1]}] (one per channel)")
    var = inputs[4].data
    if var is not None and np.any(var.astype(np.float64) + eps <= 0):
        raise ModelError(f"{where}: variance + epsilon must be > 0 for every channel (variance has "
                         f"{int(np.sum(var < 0))} negative values, epsilon {eps})")


def _axis(where: str, attrs: dict, rank: int, default: int, name: str = "axis", inclusive: bool = False) -> None:
    axis = int(attrs.get(name, default))
    high = rank if inclusive else rank - 1
    if not -rank <= axis <= high:
        raise ModelError(f"{where}: {name} {axis} is out of range for a rank-{rank} input")


def _softmax(where: str, attrs: dict, inputs) -> None:
    rank = len(inputs[0].shape)
    if rank == 0:
        raise ModelError(f"{where}: the input is a scalar")
    _axis(where, attrs, rank, -1)


def _flatten(where: str, attrs: dict, inputs) -> None:
    _axis(where, attrs, len(inputs[0].shape), 1, inclusive=True)


def _transpose(where: str, attrs: dict, inputs) -> None:
    rank = len(inputs[0].shape)
    if "perm" in attrs and sorted(int(p) for p in attrs["perm"]) != list(range(rank)):
        raise ModelError(f"{where}: perm {list(attrs['perm'])} is not a permutation of the {rank} axes")


def _clip(where: str, attrs: dict, inputs) -> None:
    bounds = []
    for i, name in ((1, "min"), (2, "max")):
        t = inputs[i] if i < len(inputs) else None
        if t is not None and (t.data is None or t.data.size != 1):
            raise UnsupportedError(f"{where}: {name} must be a constant scalar")
        value = attrs.get(name) if t is None else float(t.data.reshape(-1)[0])
        if value is not None and math.isnan(float(value)):
            raise ModelError(f"{where}: {name} is NaN")
        bounds.append(value)
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise ModelError(f"{where}: min {bounds[0]:g} is greater than max {bounds[1]:g}")


def _finite_attrs(where: str, attrs: dict, inputs) -> None:
    """HardSigmoid / LeakyRelu: alpha and beta define the lookup table; they must be numbers."""
    for name in ("alpha", "beta"):
        if name in attrs and not math.isfinite(float(attrs[name])):
            raise ModelError(f"{where}: {name} is {attrs[name]}; it must be a finite number")


def _axes_in_range(where: str, attrs: dict, inputs) -> None:
    rank = len(inputs[0].shape)
    axes = attrs.get("axes")
    if axes is None and len(inputs) > 1 and inputs[1] is not None and inputs[1].data is not None:
        axes = inputs[1].data.reshape(-1).tolist()
    if axes is not None and any(not -rank <= int(a) < rank for a in axes):
        raise ModelError(f"{where}: axes {list(axes)} out of range for a rank-{rank} input")


def _squeeze(where: str, attrs: dict, inputs) -> None:
    _axes_in_range(where, attrs, inputs)
    shape = inputs[0].shape
    axes = attrs.get("axes")
    if axes is None and len(inputs) > 1 and inputs[1] is not None and inputs[1].data is not None:
        axes = inputs[1].data.reshape(-1).tolist()
    wide = [int(a) for a in axes or [] if shape[int(a)] != 1]
    if wide:
        raise ModelError(f"{where}: cannot squeeze axes {wide} of shape {list(shape)}: their size is not 1")


def _unsqueeze(where: str, attrs: dict, inputs) -> None:
    axes = attrs.get("axes")
    if axes is None and len(inputs) > 1 and inputs[1] is not None and inputs[1].data is not None:
        axes = inputs[1].data.reshape(-1).tolist()
    rank = len(inputs[0].shape) + len(axes or [])
    if axes is not None and (any(not -rank <= int(a) < rank for a in axes) or len(set(axes)) != len(axes)):
        raise ModelError(f"{where}: axes {list(axes)} out of range for a rank-{rank} output")


def _gather_concat(where: str, attrs: dict, inputs) -> None:
    ranks = {len(t.shape) for t in inputs if t is not None}
    if ranks and min(ranks) > 0:
        _axis(where, attrs, min(ranks), 0)


def _reshape(where: str, attrs: dict, inputs) -> None:
    t = inputs[1] if len(inputs) > 1 else None
    if t is not None and t.data is not None:
        target = t.data.reshape(-1)
        if target.dtype.kind not in "iu" or np.any(target < -1) or np.sum(target == -1) > 1:
            raise ModelError(f"{where}: target shape {target.tolist()} is not a valid shape")
        if np.any(target > MAX_DIM):
            check_shape(target.tolist(), where)


# ---------------------------------------------------------------------------------------------------
# recurrent layers and loops
# ---------------------------------------------------------------------------------------------------
RNN_GATES = {"LSTM": 4, "GRU": 3}
RNN_ACTIVATION_COUNT = {"LSTM": 3, "GRU": 2}  # per direction
RNN_DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}
RNN_ACTIVATIONS = ("relu", "tanh", "sigmoid", "affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid",
                   "elu", "softsign", "softplus")
RNN_FLAGS = {"LSTM": ("layout", "input_forget"), "GRU": ("layout", "linear_before_reset")}


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _recurrent(op: str, where: str, attrs: dict, inputs) -> None:
    """LSTM / GRU attributes and the shapes of W, R, B, sequence_lens, the initial states and peepholes
    (ONNX's definitions), before the reader maps the node."""
    gates = RNN_GATES[op]
    direction = _text(attrs.get("direction", b"forward"))
    if direction not in RNN_DIRECTIONS:
        raise ModelError(f"{where}: direction '{direction}' is not one of {', '.join(RNN_DIRECTIONS)}")
    dirs = RNN_DIRECTIONS[direction]
    for name in RNN_FLAGS[op]:
        if attrs.get(name, 0) not in (0, 1):
            raise ModelError(f"{where}: {name} must be 0 or 1, got {attrs[name]}")
    if "clip" in attrs and not (math.isfinite(float(attrs["clip"])) and float(attrs["clip"]) > 0):
        raise ModelError(f"{where}: clip {attrs['clip']} must be a finite number > 0")
    activations = [_text(a) for a in attrs.get("activations", [])]
    if activations and len(activations) != RNN_ACTIVATION_COUNT[op] * dirs:
        raise ModelError(f"{where}: {len(activations)} activations {activations}; {op} needs "
                         f"{RNN_ACTIVATION_COUNT[op] * dirs} for direction {direction}")
    unknown = [a for a in activations if a.lower() not in RNN_ACTIVATIONS]
    if unknown:
        raise ModelError(f"{where}: unknown activation(s) {unknown}")
    for name in ("activation_alpha", "activation_beta"):
        if any(not math.isfinite(float(v)) for v in attrs.get(name, [])):
            raise ModelError(f"{where}: {name} {list(attrs[name])} must hold finite numbers")
    hidden = int(attrs.get("hidden_size", 0))
    if not 1 <= hidden <= MAX_DIM:
        raise ModelError(f"{where}: hidden_size {attrs.get('hidden_size', 'missing')} must be 1..{MAX_DIM}")
    if dirs != 1:
        return  # the reader refuses a bidirectional layer by name, whatever its shapes
    x = _rank(where, inputs[0], 3)
    layout = int(attrs.get("layout", 0))
    batch, features = (x[0] if layout else x[1]), x[2]
    expected = {1: ("W", (1, gates * hidden, features)), 2: ("R", (1, gates * hidden, hidden)),
                3: ("B", (1, 2 * gates * hidden)), 4: ("sequence_lens", (batch,)),
                5: ("initial_h", (batch, 1, hidden) if layout else (1, batch, hidden))}
    if op == "LSTM":
        expected[6] = ("initial_c", expected[5][1])
        expected[7] = ("P", (1, 3 * hidden))
    for i in (1, 2):
        if i >= len(inputs) or inputs[i] is None:
            raise ModelError(f"{where}: {expected[i][0]} (input {i}) is missing")
    for i, (what, shape) in expected.items():
        t = inputs[i] if i < len(inputs) else None
        if t is not None and tuple(t.shape) != shape:
            raise ModelError(f"{where}: {what} '{t.name}' has shape {list(t.shape)}; with hidden_size {hidden}, "
                             f"{features} input features and batch {batch} it must be {list(shape)}")


def _loop(where: str, attrs: dict, inputs) -> None:
    """A Loop's trip count M and first condition: scalars (the types are checked above)."""
    for i, what in ((0, "trip count M"), (1, "condition")):
        t = inputs[i] if i < len(inputs) else None
        if t is not None and math.prod(t.shape) != 1:
            raise ModelError(f"{where}: the {what} ('{t.name}') has shape {list(t.shape)}; it must be a scalar")


NODE_CHECKS = {
    "LSTM": lambda *args: _recurrent("LSTM", *args), "GRU": lambda *args: _recurrent("GRU", *args), "Loop": _loop,
    "Conv": _conv, "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool,
    "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batchnorm, "Softmax": _softmax,
    "Flatten": _flatten, "Transpose": _transpose, "Clip": _clip, "Squeeze": _squeeze,
    "ReduceMean": _axes_in_range, "Unsqueeze": _unsqueeze, "Gather": _gather_concat, "Concat": _gather_concat,
    "Reshape": _reshape, "HardSigmoid": _finite_attrs, "LeakyRelu": _finite_attrs,
}
