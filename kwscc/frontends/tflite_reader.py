"""TFLite frontend: single-subgraph .tflite models (float32, hybrid or int8) -> the kwscc IR.

Two steps. parse() turns the flatbuffer into plain records (TflModel, TflTensor, TflOp), reporting
a corrupt or truncated file as one ModelError; read() then maps each operator to canonical kwscc
ops through TFLITE_OPS. TFLite is NHWC already: spatial nodes carry layout "NHWC", so the layout
pass leaves them alone.

- Quantized weights (int8 models and hybrid ones) are dequantized with their own scales; kwscc
  quantizes them again to its power-of-two formats.
- Quantized activations keep the range their (scale, zero point) can represent in
  Graph.recorded_ranges, so a full int8 model compiles with no calibration data.
- QUANTIZE / DEQUANTIZE of activations are pass-throughs (the IR is float); DEQUANTIZE of a constant
  folds into it. The IR input is float even when the file's input is int8.
- PAD / PADV2 become Pad nodes; zero pads before CONV_2D / DEPTHWISE_CONV_2D then fold into the
  convolution's pads (kwscc.passes.fold_pad).
- The per-step int32 biases of an unrolled int8 recurrent cell are read as the one float bias they
  were all quantized from (kwscc.frontends.tflite_int8), so the T steps repeat one cell as in the
  float file, and an int8 constant that rounds part of such a bias (a step 0 the converter folded
  with the zero initial state) is read as that part. Requantizing QUANTIZE ops (int8 -> int8) pass
  through like the others, and the range of their copy widens the range of the values they copy
  (back to the model input: its int8 scale may clip what the other frames record).
- IR tensors keep the TFLite tensor names (made unique), so LiteRT's values of every tensor
  (kwscc.frontends.litert_runtime) match them for calibration and validation.
"""
from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kwscc.check.limits import check_shape
from kwscc.check.tflite_model import check_model
from kwscc.errors import ModelError, UnsupportedError
from kwscc.frontends import tflite_int8, tflite_loops, tflite_recurrent
from kwscc.frontends.frames import Frames
from kwscc.ir import Graph, Node, Tensor
from kwscc.passes.rewrite import remove_dead_nodes

log = logging.getLogger(__name__)

FILE_IDENTIFIER = b"TFL3"

# TensorType -> numpy dtype (types without one cannot be constants or activations here)
TENSOR_TYPES = {
    0: ("FLOAT32", np.float32), 1: ("FLOAT16", np.float16), 2: ("INT32", np.int32), 3: ("UINT8", np.uint8),
    4: ("INT64", np.int64), 5: ("STRING", None), 6: ("BOOL", np.bool_), 7: ("INT16", np.int16),
    8: ("COMPLEX64", None), 9: ("INT8", np.int8), 10: ("FLOAT64", np.float64), 11: ("COMPLEX128", None),
    12: ("UINT64", np.uint64), 13: ("RESOURCE", None), 14: ("VARIANT", None), 15: ("UINT32", np.uint32),
    16: ("UINT16", np.uint16), 17: ("INT4", None), 18: ("BFLOAT16", None),
}
QUANTIZED_ACTIVATION_TYPES = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16}
ACTIVATION_TYPES = ("FLOAT32", *QUANTIZED_ACTIVATION_TYPES)

# fused_activation_function -> (name, clamp interval or None)
FUSED_ACTIVATIONS = {0: ("NONE", None), 1: ("RELU", (0.0, math.inf)), 2: ("RELU_N1_TO_1", (-1.0, 1.0)),
                     3: ("RELU6", (0.0, 6.0)), 4: ("TANH", None), 5: ("SIGN_BIT", None)}
SUPPORTED_FUSED = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
SAME, VALID = 0, 1


# ---------------------------------------------------------------------------------------------------
# Parsed model: plain records, no flatbuffer access after parse()
# ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class TflTensor:
    index: int
    name: str  # unique within the subgraph (IR tensor names are these)
    shape: tuple[int, ...]
    signature: tuple[int, ...] | None  # shape_signature: -1 marks a dynamic dimension
    type: str  # TensorType name, e.g. "INT8"
    data: np.ndarray | None = None  # a constant's raw values (not dequantized), shaped
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0
    sparse: bool = False

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.scale.size > 0


@dataclass(slots=True)
class TflOp:
    index: int
    name: str  # builtin operator name ("CONV_2D"), "CUSTOM" or "UNKNOWN(<code>)"
    custom_code: str | None
    inputs: list[int]  # tensor indices, -1 = optional input left out
    outputs: list[int]
    options: dict = field(default_factory=dict)
    subgraph: int = 0  # 0: the main subgraph; others are WHILE loops' cond / body

    @property
    def where(self) -> str:
        return f"op #{self.index} ({self.name})" + (f" of subgraph {self.subgraph}" if self.subgraph else "")


@dataclass(slots=True)
class TflModel:
    tensors: list[TflTensor]
    ops: list[TflOp]
    inputs: list[int]
    outputs: list[int]
    version: int
    subgraphs: dict[int, TflModel] = field(default_factory=dict)  # the main one's: WHILE cond / body by index


def _builtin_tables():
    import tflite

    ops = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    option_types = {k: v for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_") and isinstance(v, int)}
    return tflite, ops, option_types


# op -> (options table name, fields read from it); vectors end in "AsNumpy"
OPTIONS = {
    "CONV_2D": ("Conv2DOptions", ("Padding", "StrideH", "StrideW", "DilationHFactor", "DilationWFactor",
                                  "FusedActivationFunction")),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", ("Padding", "StrideH", "StrideW", "DilationHFactor",
                                                     "DilationWFactor", "DepthMultiplier", "FusedActivationFunction")),
    "FULLY_CONNECTED": ("FullyConnectedOptions", ("FusedActivationFunction", "WeightsFormat", "KeepNumDims")),
    "AVERAGE_POOL_2D": ("Pool2DOptions", ("Padding", "StrideH", "StrideW", "FilterHeight", "FilterWidth",
                                          "FusedActivationFunction")),
    "MAX_POOL_2D": ("Pool2DOptions", ("Padding", "StrideH", "StrideW", "FilterHeight", "FilterWidth",
                                      "FusedActivationFunction")),
    "MEAN": ("ReducerOptions", ("KeepDims",)),
    "RESHAPE": ("ReshapeOptions", ("NewShapeAsNumpy",)),
    "SQUEEZE": ("SqueezeOptions", ("SqueezeDimsAsNumpy",)),
    "SOFTMAX": ("SoftmaxOptions", ("Beta",)),
    "ADD": ("AddOptions", ("FusedActivationFunction",)),
    "SUB": ("SubOptions", ("FusedActivationFunction",)),
    "MUL": ("MulOptions", ("FusedActivationFunction",)),
    "CONCATENATION": ("ConcatenationOptions", ("Axis", "FusedActivationFunction")),
    "LEAKY_RELU": ("LeakyReluOptions", ("Alpha",)),
    "STRIDED_SLICE": tflite_recurrent.STRIDED_SLICE_OPTIONS,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": tflite_recurrent.LSTM_OPTIONS,
    "UNPACK": tflite_loops.UNPACK_OPTIONS,
    "PACK": ("PackOptions", ("ValuesCount", "Axis")),
    "GATHER": tflite_loops.GATHER_OPTIONS,
    "WHILE": tflite_loops.WHILE_OPTIONS,
}


def _check_container(buf: bytes, path: Path) -> None:
    if len(buf) < 8:
        raise ModelError(f"{path.name}: not a FlatBuffer (only {len(buf)} bytes)")
    root = int.from_bytes(buf[:4], "little")
    if root < 8 or root % 4 or root + 4 > len(buf):
        raise ModelError(f"{path.name}: not a FlatBuffer, or truncated (root table offset {root} does not fit "
                         f"a {len(buf)}-byte file)")
    if buf[4:8] != FILE_IDENTIFIER:
        raise ModelError(f"{path.name}: file identifier {bytes(buf[4:8])!r} is not {FILE_IDENTIFIER!r}: "
                         "not a TFLite model")


def _buffer_bytes(fb_model, index: int, buf: bytes, path: Path) -> bytes:
    """The bytes of buffer `index`, checked to lie inside the file (in place or at offset/size)."""
    b = fb_model.Buffers(index)
    if b is None:
        return b""
    offset, size = int(b.Offset()), int(b.Size())
    if offset > 1:  # large models keep buffers after the flatbuffer
        if offset + size > len(buf):
            raise ModelError(f"{path.name}: buffer {index} (offset {offset}, size {size}) lies beyond the end "
                             f"of the {len(buf)}-byte file: truncated")
        return bytes(buf[offset:offset + size])
    if b.DataLength() == 0:
        return b""
    data = b.DataAsNumpy()  # numpy raises if the vector runs past the end of the file
    return data.tobytes()


def _quantization(fb_tensor) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    q = fb_tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None, None, 0
    scale = np.asarray(q.ScaleAsNumpy(), np.float64)
    zero = np.asarray(q.ZeroPointAsNumpy(), np.int64) if q.ZeroPointLength() else np.zeros(scale.size, np.int64)
    return scale, zero, int(q.QuantizedDimension())


# integer tensor types whose quantization parameters are checked, with the range of their zero points
# (None: 32/64-bit biases, whose zero points LiteRT ignores)
INTEGER_RANGES = {"INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767), "INT32": None, "INT64": None}


def _check_quantization(name: str, type_name: str, scale: np.ndarray, zero: np.ndarray) -> None:
    """Scales must be finite and positive, zero points within the tensor type's range: a scale of 0,
    NaN or Inf (an edited file) would otherwise turn into garbage multipliers without a word."""
    bad = scale[~(np.isfinite(scale) & (scale > 0))]
    if bad.size:
        raise ModelError(f"tensor '{name}': quantization scale {bad[0]:g} (field scale); every scale must be a "
                         "finite number > 0")
    bounds = INTEGER_RANGES[type_name]
    if bounds is not None and np.any((zero < bounds[0]) | (zero > bounds[1])):
        value = int(zero[(zero < bounds[0]) | (zero > bounds[1])][0])
        raise ModelError(f"tensor '{name}': zero point {value} (field zero_point) is outside the range of "
                         f"{type_name} ({bounds[0]}..{bounds[1]})")


def _tensor(fb_model, sg, i: int, names: set, buf: bytes, path: Path) -> TflTensor:
    t = sg.Tensors(i)
    raw_name = (t.Name() or b"").decode("utf-8", "replace")
    name = raw_name or f"tensor_{i}"
    while name in names:  # LiteRT does not need unique names; kwscc's IR does
        name = f"{name}_{i}"
    names.add(name)
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    signature = tuple(int(d) for d in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else None
    code = int(t.Type())
    type_name, dtype = TENSOR_TYPES.get(code, (f"TYPE_{code}", None))
    scale, zero, qdim = _quantization(t)
    if scale is not None and zero.size not in (1, scale.size):
        raise ModelError(f"tensor '{name}': {zero.size} zero points for {scale.size} scales (field zero_point)")
    if scale is not None and type_name in INTEGER_RANGES:
        _check_quantization(name, type_name, scale, zero)
    if scale is not None and scale.size > 1 and len(shape) > 1 and not 0 <= qdim < len(shape):
        # (a 1-D tensor is read along axis 0 whatever its field says, as tflite-micro does)
        raise ModelError(f"tensor '{name}': quantized dimension {qdim} (field quantized_dimension) is outside its "
                         f"shape {list(shape)}")
    tensor = TflTensor(i, name, shape, signature, type_name, None, scale,
                       None if zero is None else np.broadcast_to(zero, scale.shape).copy(), qdim,
                       t.Sparsity() is not None)
    bidx = int(t.Buffer())
    if not 0 <= bidx < fb_model.BuffersLength():
        raise ModelError(f"tensor '{name}': buffer index {bidx} out of range (the model has "
                         f"{fb_model.BuffersLength()} buffers)")
    data = _buffer_bytes(fb_model, bidx, buf, path) if bidx else b""
    if data:
        if dtype is None:
            raise UnsupportedError(f"tensor '{name}': constant of type {type_name} is not supported")
        count = int(np.prod(shape, dtype=np.int64))
        if len(data) != count * np.dtype(dtype).itemsize:
            raise ModelError(f"tensor '{name}': buffer {bidx} holds {len(data)} bytes, but shape {list(shape)} "
                             f"of {type_name} needs {count * np.dtype(dtype).itemsize}")
        tensor.data = np.frombuffer(data, dtype).reshape(shape)
    return tensor


def _options(tflite, fb_op, op_name: str, option_types: dict, where: str) -> dict:
    if op_name not in OPTIONS:
        return {}
    table_name, fields = OPTIONS[op_name]
    table = fb_op.BuiltinOptions()
    if table is None:
        return {}
    if int(fb_op.BuiltinOptionsType()) != option_types[table_name]:
        raise ModelError(f"{where}: builtin_options_type {fb_op.BuiltinOptionsType()} is not {table_name}")
    opts = getattr(tflite, table_name)()
    opts.Init(table.Bytes, table.Pos)
    out = {}
    for f in fields:
        value = getattr(opts, f)()
        if f.endswith("AsNumpy"):
            out[f[:-len("AsNumpy")]] = [int(v) for v in value] if not isinstance(value, int) else []
        else:
            out[f] = value
    return out


def _op(tflite, fb_model, sg, i: int, ops: dict, option_types: dict, n_tensors: int) -> TflOp:
    fb_op = sg.Operators(i)
    code_index = int(fb_op.OpcodeIndex())
    if not 0 <= code_index < fb_model.OperatorCodesLength():
        raise ModelError(f"op #{i}: opcode_index {code_index} out of range (the model has "
                         f"{fb_model.OperatorCodesLength()} operator codes)")
    oc = fb_model.OperatorCodes(code_index)
    code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
    name = ops.get(code, f"UNKNOWN({code})")
    custom = (oc.CustomCode() or b"").decode("utf-8", "replace") if name == "CUSTOM" else None
    inputs = [int(v) for v in fb_op.InputsAsNumpy()] if fb_op.InputsLength() else []
    outputs = [int(v) for v in fb_op.OutputsAsNumpy()] if fb_op.OutputsLength() else []
    for kind, indices in (("input", inputs), ("output", outputs)):
        for idx in indices:
            if not -1 <= idx < n_tensors or (kind == "output" and idx < 0):
                raise ModelError(f"op #{i} ({name}): {kind} tensor index {idx} out of range "
                                 f"(the subgraph has {n_tensors} tensors)")
    op = TflOp(i, name, custom, inputs, outputs)
    op.options = _options(tflite, fb_op, name, option_types, op.where)
    return op


def _subgraph(tflite, fb_model, s: int, ops: dict, option_types: dict, buf: bytes, path: Path) -> TflModel:
    sg = fb_model.Subgraphs(s)
    names: set[str] = set()
    tensors = [_tensor(fb_model, sg, i, names, buf, path) for i in range(sg.TensorsLength())]
    n = len(tensors)
    model_ops = [_op(tflite, fb_model, sg, i, ops, option_types, n) for i in range(sg.OperatorsLength())]
    for op in model_ops:
        op.subgraph = s
    io = []
    for kind, length, get in (("inputs", sg.InputsLength(), sg.Inputs), ("outputs", sg.OutputsLength(), sg.Outputs)):
        indices = [int(get(j)) for j in range(length)]
        bad = [k for k in indices if not 0 <= k < n]
        if bad:
            raise ModelError(f"{path.name}: subgraph {s} {kind} index {bad[0]} out of range ({n} tensors)")
        io.append(indices)
    return TflModel(tensors, model_ops, io[0], io[1], int(fb_model.Version()))


def _check_loop_subgraphs(model: TflModel, count: int, path: Path) -> None:
    """Subgraphs other than the first are accepted only as the cond / body of WHILE loops."""
    used, todo = set(), [model]
    while todo:
        for op in todo.pop().ops:
            if op.name != "WHILE":
                continue
            for field_name in ("CondSubgraphIndex", "BodySubgraphIndex"):
                index = int(op.options.get(field_name, -1))
                if not 0 < index < count:
                    raise ModelError(f"{op.where}: {field_name} {index} is not a subgraph of the model "
                                     f"(it has {count}; subgraph 0 is the main one)")
                if index not in used:
                    used.add(index)
                    todo.append(model.subgraphs[index])
    if len(used) != count - 1:
        raise UnsupportedError(f"{path.name}: the model has {count} subgraphs (field subgraphs); only "
                               "single-subgraph models and the cond / body subgraphs of WHILE loops are supported")


def parse(buf: bytes, path: Path) -> TflModel:
    """The model's main subgraph as plain records (with its WHILE loops' subgraphs); ModelError for
    anything unreadable."""
    _check_container(buf, path)
    tflite, ops, option_types = _builtin_tables()
    try:
        fb_model = tflite.Model.GetRootAsModel(buf, 0)
        count = fb_model.SubgraphsLength()
        if count == 0:
            raise ModelError(f"{path.name}: the model has no subgraph")
        for b in range(fb_model.BuffersLength()):  # every buffer must lie inside the file
            _buffer_bytes(fb_model, b, buf, path)
        models = [_subgraph(tflite, fb_model, s, ops, option_types, buf, path) for s in range(count)]
    except (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError, AttributeError,
            OverflowError, MemoryError) as exc:
        raise ModelError(f"{path.name}: truncated or corrupt TFLite flatbuffer ({type(exc).__name__}: "
                         f"{str(exc)[:80]})") from None
    main = models[0]
    main.subgraphs = {s: m for s, m in enumerate(models) if s}
    _check_loop_subgraphs(main, count, path)
    return main


def load(path: Path) -> TflModel:
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    return parse(buf, path)


# ---------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------
def dequantize_const(t: TflTensor) -> np.ndarray:
    """A constant's real values: float types as they are, integer ones as (q - zero_point) * scale
    with one scale per slice along quantized_dimension (axis 0 for a 1-D tensor such as a bias)."""
    raw = t.data
    if raw.dtype.kind == "f":
        return raw.astype(np.float32)
    if not t.quantized:
        raise ModelError(f"tensor '{t.name}': {t.type} weights without quantization parameters (field quantization)")
    scale, zero = t.scale, t.zero_point
    if scale.size > 1:
        axis = 0 if raw.ndim == 1 else t.quantized_dimension
        if not 0 <= axis < raw.ndim or raw.shape[axis] != scale.size:
            raise ModelError(f"tensor '{t.name}': {scale.size} scales do not match dimension "
                             f"{t.quantized_dimension} (field quantized_dimension) of shape {list(raw.shape)}")
        view = [1] * raw.ndim
        view[axis] = scale.size
        scale, zero = scale.reshape(view), zero.reshape(view)
    return ((raw.astype(np.float64) - zero) * scale).astype(np.float32)


def activation_range(t: TflTensor) -> tuple[float, float] | None:
    """The real interval a quantized activation can hold: ((qmin - z) * s, (qmax - z) * s)."""
    if not t.quantized or t.type not in QUANTIZED_ACTIVATION_TYPES:
        return None
    if t.scale.size != 1:
        raise UnsupportedError(f"tensor '{t.name}': per-channel quantization of an activation is not supported")
    info = np.iinfo(QUANTIZED_ACTIVATION_TYPES[t.type])
    s, z = float(t.scale[0]), int(t.zero_point[0])
    return (info.min - z) * s, (info.max - z) * s


def quantize_samples(x: np.ndarray, t: TflTensor) -> np.ndarray:
    """Float samples in the quantized input's own format, as TFLite's QUANTIZE computes them."""
    dtype = np.dtype(QUANTIZED_ACTIVATION_TYPES[t.type])
    info = np.iinfo(dtype)
    v = np.asarray(x, np.float32) / np.float32(t.scale[0])
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)) + int(t.zero_point[0])  # round half away from zero
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_values(v: np.ndarray, t: TflTensor) -> np.ndarray:
    if t.quantized and t.type in QUANTIZED_ACTIVATION_TYPES:
        return ((v.astype(np.float32) - np.float32(t.zero_point[0])) * np.float32(t.scale[0])).astype(np.float32)
    return np.asarray(v, np.float32)


# ---------------------------------------------------------------------------------------------------
# IR construction
# ---------------------------------------------------------------------------------------------------
class Reader:
    """State while one subgraph is read: the graph under construction, pass-through aliases,
    and the tensor each internal tensor takes its recorded range from."""

    def __init__(self, model: TflModel, graph: Graph) -> None:
        self.m = model
        self.graph = graph
        self.alias: dict[int, str] = {}  # QUANTIZE / DEQUANTIZE output -> IR name of its input
        self.folded: dict[int, np.ndarray] = {}  # DEQUANTIZE of a constant, a shared bias -> its float value
        self.range_from: dict[str, int] = {}  # IR name -> tensor whose quantization gives its range
        self.const_names: dict[tuple[int, str], str] = {}
        self.requantized: dict[str, list[tuple[float, float]]] = {}  # IR name -> its QUANTIZE copies' ranges
        self.frames = Frames(graph)  # time frames of sequences (UNPACK, GATHER, unrolled loops)
        self.same_as: dict[int, int] = {}  # a per-step int8 bias -> the first of its group (kwscc.frontends.tflite_int8)
        shared = tflite_int8.shared_biases(model)
        for idx, (first, value) in shared.items():
            self.same_as[idx] = first
            self.folded[idx] = value
        self.folded.update(tflite_int8.bias_slices(model, shared))  # a step 0 folded with the zero state
        # a WHILE body's reader (kwscc.frontends.tflite_loops) shares frames and weights with the
        # outer one, prefixes its node names with the step, and treats the loop variables that hold
        # a constant at this step (a zero initial state, the counter) as values, never cached
        self.prefix = ""
        self.step_values: set[int] = set()
        self.check_shapes = True

    def tensor(self, idx: int) -> TflTensor:
        return self.m.tensors[idx]

    def name(self, idx: int) -> str:
        return self.m.tensors[idx].name

    def activation(self, op: TflOp | None, idx: int) -> str:
        """IR name of an activation input (or graph output when op is None)."""
        reader = op.where if op else "a graph output"
        if idx < 0:
            raise ModelError(f"{reader}: a required input is missing")
        if idx in self.alias:
            return self.alias[idx]
        t = self.tensor(idx)
        if idx in self.step_values:
            return self.graph.add_const(f"{t.name}_value", np.asarray(self.folded[idx])).name
        if t.is_const or idx in self.folded:
            raise UnsupportedError(f"{reader}: input '{t.name}' is a constant; only activations are supported there")
        if t.name not in self.graph.tensors:
            raise ModelError(f"{reader}: input '{t.name}' is not produced by an earlier op")
        return t.name

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.tensors[name].shape

    def const_value(self, op: TflOp, pos: int, what: str) -> np.ndarray:
        if pos >= len(op.inputs) or op.inputs[pos] < 0:
            raise ModelError(f"{op.where}: {what} (input {pos}) is missing")
        idx = op.inputs[pos]
        if idx in self.folded:
            return self.folded[idx]
        t = self.tensor(idx)
        if not t.is_const:
            raise UnsupportedError(f"{op.where}: {what} ('{t.name}') must be a constant")
        if t.sparse:
            raise UnsupportedError(f"{op.where}: {what} ('{t.name}') is sparse (field sparsity); not supported")
        return dequantize_const(t)

    def weights(self, op: TflOp, pos: int, what: str, transform: Callable | None = None, tag: str = "") -> str:
        """IR constant for a weight input, dequantized (and transformed); shared tensors are added once."""
        idx = op.inputs[pos] if pos < len(op.inputs) else -1
        key = (self.same_as.get(idx, idx), tag)
        if idx in self.step_values:
            self.const_names.pop(key, None)
        if key not in self.const_names:
            value = self.const_value(op, pos, what)
            if transform is not None:
                value = transform(value)
            if not np.all(np.isfinite(value)):
                raise ModelError(f"{op.where}: {what} ('{self.name(key[0])}') contains NaN or Inf values")
            base = self.name(key[0]) + (f"_kwscc_{tag}" if tag else "")
            self.const_names[key] = self.graph.add_const(base, np.ascontiguousarray(value, np.float32)).name
        return self.const_names[key]

    def optional_bias(self, op: TflOp, pos: int, channels: int) -> list[str]:
        if pos >= len(op.inputs) or op.inputs[pos] < 0:
            return []
        name = self.weights(op, pos, "bias")
        if self.graph.tensors[name].shape != (channels,):
            raise ModelError(f"{op.where}: bias '{name}' has shape {list(self.graph.tensors[name].shape)}, "
                             f"expected [{channels}]")
        return [name]

    def ints(self, op: TflOp, pos: int, what: str) -> list[int]:
        if pos >= len(op.inputs) or op.inputs[pos] < 0:
            raise ModelError(f"{op.where}: {what} (input {pos}) is missing")
        value = self.known_value(op.inputs[pos])
        if value is None or value.dtype.kind not in "iu":
            raise UnsupportedError(f"{op.where}: {what} ('{self.name(op.inputs[pos])}') must be an integer constant")
        return [int(v) for v in value.reshape(-1)]

    def known_value(self, idx: int) -> np.ndarray | None:
        """A tensor's value if known at compile time: a constant (integers as stored), a folded value
        (a loop counter, a DEQUANTIZE of a constant) or an IR constant; None for an activation."""
        if idx in self.folded:
            return np.asarray(self.folded[idx])
        t = self.tensor(idx)
        if t.is_const:
            return t.data if t.data.dtype.kind in "iub" and not t.quantized else dequantize_const(t)
        ir = self.graph.tensors.get(self.alias.get(idx, t.name))
        return ir.data if ir is not None and ir.is_const else None

    def convert(self, op: TflOp) -> None:
        """Map one operator to IR nodes (integer constant arithmetic folds instead)."""
        if tflite_loops.fold(self, op):
            return
        if op.name == "CUSTOM":
            raise UnsupportedError(f"{op.where}: custom op '{op.custom_code}' is not supported")
        handler = TFLITE_OPS.get(op.name)
        if handler is None:
            raise UnsupportedError(f"{op.where}: TFLite operator {op.name} is not supported; supported: "
                                   + ", ".join(supported_ops()))
        try:
            handler(self, op)
        except (KeyError, IndexError, ValueError) as exc:
            raise ModelError(f"{op.where}: malformed ({type(exc).__name__}: {exc})") from None
        if self.check_shapes:
            _check_shapes(self, op)

    def internal(self, base: str, like: int) -> str:
        """A name for a tensor kwscc adds; its recorded range is that of TFLite tensor `like`."""
        name = self.graph.unique_tensor_name(f"{base}_kwscc")
        self.range_from[name] = like
        return name

    def emit(self, op: TflOp, kind: str, inputs: list[str], attrs: dict | None = None,
             outputs: list[str] | None = None, helper: str = "") -> str:
        """Add a node for `op` (named like "conv_2d_3"; a helper node kwscc adds gets a suffix)."""
        name = f"{self.prefix}{op.name.lower()}_{op.index}" + (f"_{helper}" if helper else "")
        node = Node(name, kind, list(inputs), list(outputs or [self.name(op.outputs[0])]), attrs or {})
        self.graph.add_node(node)
        self.graph.node_sources[node.name] = op.name
        return node.outputs[0]


def _fused(op: TflOp) -> tuple[float, float] | None:
    code = int(op.options.get("FusedActivationFunction", 0))
    name, interval = FUSED_ACTIVATIONS.get(code, (f"code {code}", None))
    if name not in SUPPORTED_FUSED:
        raise UnsupportedError(f"{op.where}: fused activation {name} (field fused_activation_function) is not "
                               f"supported (supported: {', '.join(SUPPORTED_FUSED)})")
    return interval


def _require_4d(r: Reader, op: TflOp, name: str) -> tuple[int, ...]:
    shape = r.shape(name)
    if len(shape) != 4:
        raise UnsupportedError(f"{op.where}: input '{name}' has rank {len(shape)}; only 4-D NHWC is supported")
    return shape


def _pair(op: TflOp, h: str, w: str) -> tuple[int, int]:
    value = (int(op.options.get(h, 1)), int(op.options.get(w, 1)))
    if min(value) < 1:
        raise ModelError(f"{op.where}: {h}/{w} must be >= 1, got {list(value)}")
    return value


def _padding(op: TflOp, in_hw, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """Explicit (top, left, bottom, right) pads; SAME by TF's rule (the extra pixel goes after)."""
    mode = int(op.options.get("Padding", SAME))
    if mode == VALID:
        return (0, 0, 0, 0)
    if mode != SAME:
        raise UnsupportedError(f"{op.where}: padding mode {mode} (field padding) is not supported")
    before, after = [], []
    for i in range(2):
        out = -(-in_hw[i] // strides[i])
        total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_hw[i], 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return (before[0], before[1], after[0], after[1])


def _conv_common(r: Reader, op: TflOp, weights: str, group: int, x: str) -> None:
    xs = r.shape(x)
    w = r.graph.tensors[weights].data
    strides = _pair(op, "StrideH", "StrideW")
    dilations = _pair(op, "DilationHFactor", "DilationWFactor")
    pads = _padding(op, xs[1:3], w.shape[1:3], strides, dilations)
    attrs = {"layout": "NHWC", "strides": strides, "pads": pads, "dilations": dilations, "group": group,
             "act": _fused(op)}
    r.emit(op, "Conv", [x, weights] + r.optional_bias(op, 2, w.shape[0]), attrs)


def _conv(r: Reader, op: TflOp) -> None:
    x = r.activation(op, op.inputs[0])
    cin = _require_4d(r, op, x)[3]
    weights = r.weights(op, 1, "filter")
    w = r.graph.tensors[weights].shape
    if len(w) != 4 or cin % w[3] or w[0] % (cin // w[3]):
        raise ModelError(f"{op.where}: filter shape {list(w)} does not fit {cin} input channels")
    _conv_common(r, op, weights, cin // w[3], x)


def _depthwise(r: Reader, op: TflOp) -> None:
    x = r.activation(op, op.inputs[0])
    cin = _require_4d(r, op, x)[3]
    w = r.const_value(op, 1, "filter").shape  # [1, KH, KW, C * multiplier]
    if len(w) != 4 or w[0] != 1 or w[3] % cin:
        raise ModelError(f"{op.where}: filter shape {list(w)} does not fit {cin} input channels")
    declared = int(op.options.get("DepthMultiplier", 0))
    if declared and declared != w[3] // cin:
        log.debug("%s: depth_multiplier %d ignored; the filter gives %d", op.where, declared, w[3] // cin)
    weights = r.weights(op, 1, "filter", lambda v: v.transpose(3, 1, 2, 0), tag="ohwi")  # [C*mult, KH, KW, 1]
    _conv_common(r, op, weights, cin, x)


def _fully_connected(r: Reader, op: TflOp) -> None:
    if int(op.options.get("WeightsFormat", 0)) != 0:
        raise UnsupportedError(f"{op.where}: weights_format {op.options['WeightsFormat']} (shuffled weights) "
                               "is not supported")
    x = _operand(r, op, 0)  # a constant input (a FILL'ed zero state at step 0) folds at compile time
    weights = r.weights(op, 1, "weights")
    w = r.graph.tensors[weights].shape
    if len(w) != 2:
        raise ModelError(f"{op.where}: weights must be 2-D [out, in], got {list(w)}")
    size = int(np.prod(r.shape(x)))
    if size % w[1]:
        raise ModelError(f"{op.where}: input {list(r.shape(x))} cannot be read as rows of {w[1]} features")
    rows = size // w[1]
    if r.shape(x) != (rows, w[1]):
        flat = r.internal(f"{x}_2d", op.inputs[0])
        x = r.emit(op, "Reshape", [x], {"shape": (rows, w[1])}, outputs=[flat], helper="flatten")
    out = r.name(op.outputs[0])
    declared = r.tensor(op.outputs[0]).shape
    dense_out = out if declared in ((), (rows, w[0])) else r.internal(f"{out}_2d", op.outputs[0])
    r.emit(op, "Dense", [x, weights] + r.optional_bias(op, 2, w[0]), {"act": _fused(op)}, outputs=[dense_out])
    if dense_out != out:
        if int(np.prod(declared)) != rows * w[0]:
            raise ModelError(f"{op.where}: output shape {list(declared)} does not hold {rows}x{w[0]} values")
        r.emit(op, "Reshape", [dense_out], {"shape": declared}, outputs=[out], helper="reshape")


def _pool(r: Reader, op: TflOp) -> None:
    x = r.activation(op, op.inputs[0])
    xs = _require_4d(r, op, x)
    kernel = _pair(op, "FilterHeight", "FilterWidth")
    strides = _pair(op, "StrideH", "StrideW")
    pads = _padding(op, xs[1:3], kernel, strides, (1, 1))
    kind = "MaxPool" if op.name == "MAX_POOL_2D" else "AveragePool"
    r.emit(op, kind, [x], {"layout": "NHWC", "kernel": kernel, "strides": strides, "pads": pads, "act": _fused(op)})


def _mean(r: Reader, op: TflOp) -> None:
    """MEAN over H, W or both of a 4-D NHWC tensor: an average pool whose window spans those axes."""
    x = r.activation(op, op.inputs[0])
    xs = r.shape(x)
    axes = sorted({a % len(xs) for a in r.ints(op, 1, "axes")}) if xs else []
    if len(xs) != 4 or not axes or not set(axes) <= {1, 2}:
        raise UnsupportedError(f"{op.where}: only the mean over spatial axes (H, W or both: axes 1, 2) of a 4-D NHWC "
                               f"tensor is supported, got axes {r.ints(op, 1, 'axes')} of shape {list(xs)}")
    out = r.name(op.outputs[0])
    keep = bool(op.options.get("KeepDims", False))
    pooled = out if keep else r.internal(f"{out}_pooled", op.outputs[0])
    kernel = (xs[1] if 1 in axes else 1, xs[2] if 2 in axes else 1)
    attrs = {"layout": "NHWC", "kernel": kernel, "strides": (1, 1), "pads": (0, 0, 0, 0), "act": None}
    r.emit(op, "AveragePool", [x], attrs, outputs=[pooled])
    if not keep:
        shape = tuple(d for i, d in enumerate(xs) if i not in axes)
        r.emit(op, "Reshape", [pooled], {"shape": shape}, outputs=[out], helper="squeeze")


def _reshape(r: Reader, op: TflOp) -> None:
    x = r.activation(op, op.inputs[0])
    size = int(np.prod(r.shape(x)))
    declared = r.tensor(op.outputs[0]).shape
    target = None
    if len(op.inputs) > 1 and op.inputs[1] >= 0 and r.tensor(op.inputs[1]).is_const:
        target = r.ints(op, 1, "shape")
    elif op.options.get("NewShape"):
        target = list(op.options["NewShape"])
    if target is not None and target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = size // max(known, 1)
    if target is None or int(np.prod(target)) != size:
        if declared and int(np.prod(declared)) == size:
            target = list(declared)  # a dynamic shape input: the file's static output shape
        else:
            raise ModelError(f"{op.where}: cannot reshape {list(r.shape(x))} to {target or list(declared)}")
    r.emit(op, "Reshape", [x], {"shape": tuple(int(d) for d in target)})


def _squeeze(r: Reader, op: TflOp) -> None:
    x = r.activation(op, op.inputs[0])
    xs = r.shape(x)
    dims = {d % len(xs) for d in op.options.get("SqueezeDims", [])} or {i for i, d in enumerate(xs) if d == 1}
    if any(xs[d] != 1 for d in dims):
        raise ModelError(f"{op.where}: cannot squeeze dimensions {sorted(dims)} of shape {list(xs)}")
    r.emit(op, "Reshape", [x], {"shape": tuple(d for i, d in enumerate(xs) if i not in dims)})


def _transpose(r: Reader, op: TflOp) -> None:
    """TRANSPOSE by a constant permutation (a time-major recurrent layer's input or output)."""
    x = r.activation(op, op.inputs[0])
    perm = [int(p) for p in r.ints(op, 1, "perm")]
    if sorted(perm) != list(range(len(r.shape(x)))):
        raise ModelError(f"{op.where}: perm {perm} is not a permutation of the {len(r.shape(x))} axes")
    r.emit(op, "Transpose", [x], {"perm": tuple(perm)})


def _softmax(r: Reader, op: TflOp) -> None:
    beta = float(op.options.get("Beta", 1.0))
    if abs(beta - 1.0) > 1e-6:
        raise UnsupportedError(f"{op.where}: beta {beta:g} (field beta) is not supported, only 1.0")
    x = r.activation(op, op.inputs[0])
    r.emit(op, "Softmax", [x], {"axis": len(r.shape(x)) - 1})


def _pad(r: Reader, op: TflOp) -> None:
    """PAD / PADV2 with a constant; a zero pad before a convolution folds into it (kwscc.passes.fold_pad)."""
    x = r.activation(op, op.inputs[0])
    rank = len(r.shape(x))
    pads = r.ints(op, 1, "paddings")
    if len(pads) != 2 * rank:
        raise ModelError(f"{op.where}: paddings must be [{rank}, 2] for a {rank}-D input, got {len(pads)} values")
    if min(pads) < 0:
        raise UnsupportedError(f"{op.where}: negative padding is not supported, got {pads}")
    value = 0.0
    if op.name == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = float(r.const_value(op, 2, "constant_values").reshape(-1)[0])
    pairs = tuple((pads[2 * i], pads[2 * i + 1]) for i in range(rank))
    r.emit(op, "Pad", [x], {"pads": pairs, "value": value})


def _table_activation(kind: str, alpha_field: str = "") -> Callable[[Reader, TflOp], None]:
    """LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU: activations kwscc runs through lookup tables."""
    def handler(r: Reader, op: TflOp) -> None:
        attrs = {"alpha": float(op.options.get(alpha_field, 0.2))} if alpha_field else {}
        r.emit(op, kind, [r.activation(op, op.inputs[0])], attrs)
    return handler


def _split(r: Reader, op: TflOp) -> None:
    """SPLIT (axis, input) into equal parts / SPLIT_V (input, sizes, axis): one Crop per output."""
    data, axis_pos = (1, 0) if op.name == "SPLIT" else (0, 2)
    x = r.activation(op, op.inputs[data])
    xs = r.shape(x)
    axis = r.ints(op, axis_pos, "axis")[0] % len(xs)
    if op.name == "SPLIT":
        sizes = [xs[axis] // len(op.outputs)] * len(op.outputs)
    else:
        sizes = r.ints(op, 1, "size_splits")
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = xs[axis] - (sum(sizes) + 1)
    if sum(sizes) != xs[axis] or len(sizes) != len(op.outputs) or min(sizes) < 0:
        raise ModelError(f"{op.where}: sizes {sizes} do not split axis {axis} of {list(xs)} into {len(op.outputs)}")
    start = 0
    for i, (out, size) in enumerate(zip(op.outputs, sizes)):
        r.emit(op, "Crop", [x], {"axis": axis, "start": start, "end": start + size}, outputs=[r.name(out)],
               helper=f"part{i}")
        start += size


def _prelu(r: Reader, op: TflOp) -> None:
    x = r.activation(op, op.inputs[0])
    r.emit(op, "PRelu", [x, r.weights(op, 1, "alpha")])


def _relu(low: float, high: float) -> Callable[[Reader, TflOp], None]:
    def handler(r: Reader, op: TflOp) -> None:
        x = r.activation(op, op.inputs[0])
        if (low, high) == (0.0, math.inf):
            r.emit(op, "Relu", [x])
        else:
            r.emit(op, "Clip", [x], {"min": low, "max": high})
    return handler


def _operand(r: Reader, op: TflOp, pos: int) -> str:
    """An input that may be an activation or a constant (a constant becomes a float IR constant)."""
    idx = op.inputs[pos] if pos < len(op.inputs) else -1
    if idx >= 0 and (r.tensor(idx).is_const or idx in r.folded):
        return r.weights(op, pos, f"input {pos}")
    return r.activation(op, idx)


def _binary(kind: str) -> Callable[[Reader, TflOp], None]:
    """ADD, SUB, MUL (fused activation included), MAXIMUM, MINIMUM."""
    def handler(r: Reader, op: TflOp) -> None:
        a, b = _operand(r, op, 0), _operand(r, op, 1)
        try:
            np.broadcast_shapes(r.shape(a), r.shape(b))
        except ValueError:
            raise ModelError(f"{op.where}: input shapes {list(r.shape(a))} and {list(r.shape(b))} do not broadcast") from None
        r.emit(op, kind, [a, b], {"act": _fused(op)})
    return handler


def _concatenation(r: Reader, op: TflOp) -> None:
    if _fused(op) is not None:
        raise UnsupportedError(f"{op.where}: a fused activation on CONCATENATION is not supported")
    xs = [_operand(r, op, pos) for pos in range(len(op.inputs))]
    shapes = [r.shape(x) for x in xs]
    rank = len(shapes[0])
    axis = int(op.options.get("Axis", 0))
    if not -rank <= axis < rank or any(len(s) != rank for s in shapes):
        raise ModelError(f"{op.where}: cannot concatenate shapes {[list(s) for s in shapes]} on axis {axis}")
    axis %= rank
    if any(s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
        raise ModelError(f"{op.where}: shapes {[list(s) for s in shapes]} differ outside axis {axis}")
    r.emit(op, "Concat", xs, {"axis": axis})


def _pack(r: Reader, op: TflOp) -> None:
    """PACK (TF's stack) of N tensors of one shape along a new axis: each gets a size-1 axis there,
    then one Concat. Step outputs stacked time-major (axis 0 of [1, H] frames: [T, 1, H]) are
    concatenated batch-first ([1, T, H]) and then reshaped, so the batch stays on axis 0. Integers
    known at compile time (a state's [batch, units] from SHAPE, for a FILL) are stacked right away."""
    known = [r.known_value(idx) if idx >= 0 else None for idx in op.inputs]
    if all(v is not None and v.dtype.kind in "iu" for v in known):
        r.folded[op.outputs[0]] = np.stack(known, axis=int(op.options.get("Axis", 0)))
        return
    xs = [_operand(r, op, pos) for pos in range(len(op.inputs))]
    shapes = {r.shape(x) for x in xs}
    if len(shapes) != 1:
        raise ModelError(f"{op.where}: inputs of different shapes {sorted(list(s) for s in shapes)} cannot be packed")
    shape = shapes.pop()
    axis = int(op.options.get("Axis", 0))
    if not -len(shape) - 1 <= axis <= len(shape):
        raise ModelError(f"{op.where}: axis {axis} is outside a {len(shape) + 1}-D result")
    axis %= len(shape) + 1
    out_shape = shape[:axis] + (len(xs),) + shape[axis:]
    if axis == 0 and shape[:1] == (1,):  # time-major: stack on axis 1 of the batch-first view
        axis = 1
    expanded = shape[:axis] + (1,) + shape[axis:]
    parts = []
    for i, (x, idx) in enumerate(zip(xs, op.inputs)):
        if r.graph.tensors[x].is_const:
            parts.append(r.graph.add_const(f"{x}_packed", r.graph.tensors[x].data.reshape(expanded)).name)
        else:
            parts.append(r.emit(op, "Reshape", [x], {"shape": expanded}, outputs=[r.internal(f"{x}_packed", idx)],
                                helper=f"in{i}"))
    stacked_shape = expanded[:axis] + (len(xs),) + expanded[axis + 1:]
    if stacked_shape == out_shape:
        r.emit(op, "Concat", parts, {"axis": axis})
        return
    stacked = r.emit(op, "Concat", parts, {"axis": axis}, outputs=[r.internal(r.name(op.outputs[0]), op.outputs[0])],
                     helper="stack")
    r.emit(op, "Reshape", [stacked], {"shape": out_shape})


def _shape(r: Reader, op: TflOp) -> None:
    """SHAPE of an activation: its static shape, batch 1 (what TF computes a zero state's size from)."""
    x = r.activation(op, op.inputs[0])
    r.folded[op.outputs[0]] = np.array(r.shape(x), np.int32)


def _fill(r: Reader, op: TflOp) -> None:
    """FILL with a constant shape and value: a constant (zero initial states of unrolled cells)."""
    dims = r.ints(op, 0, "dims")
    idx = op.inputs[1] if len(op.inputs) > 1 else -1
    value = r.known_value(idx) if idx >= 0 else None
    if value is None or value.size != 1:
        raise UnsupportedError(f"{op.where}: only a FILL with a constant scalar value is supported")
    if min(dims, default=1) < 0:
        raise ModelError(f"{op.where}: negative dimension in {dims}")
    r.folded[op.outputs[0]] = np.full(dims, value.reshape(-1)[0], value.dtype)


def _quantize(r: Reader, op: TflOp) -> None:
    """QUANTIZE / DEQUANTIZE: the IR is float, so an activation passes through unchanged (its range
    is recorded from the quantized side); DEQUANTIZE of a constant folds into a float constant."""
    src, out = op.inputs[0], op.outputs[0]
    if src >= 0 and (r.tensor(src).is_const or src in r.folded):
        if op.name != "DEQUANTIZE":
            raise UnsupportedError(f"{op.where}: QUANTIZE of a constant is not supported")
        r.folded[out] = r.const_value(op, 0, "input")
        return
    name = r.activation(op, src)
    r.alias[out] = name
    if activation_range(r.tensor(src)) is None and name not in r.range_from:
        r.range_from[name] = out  # a float input quantized by the model: its range is the int8 one
    elif activation_range(r.tensor(out)) is not None:  # int8 -> int8: a copy in its own range
        r.requantized.setdefault(name, []).append(activation_range(r.tensor(out)))


TFLITE_OPS: dict[str, Callable[[Reader, TflOp], None]] = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise, "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool, "MEAN": _mean, "RESHAPE": _reshape, "SQUEEZE": _squeeze,
    "TRANSPOSE": _transpose,
    "SOFTMAX": _softmax, "PAD": _pad, "PADV2": _pad, "RELU": _relu(0.0, math.inf), "RELU6": _relu(0.0, 6.0),
    "RELU_N1_TO_1": _relu(-1.0, 1.0), "QUANTIZE": _quantize, "DEQUANTIZE": _quantize,
    "ADD": _binary("Add"), "SUB": _binary("Sub"), "MUL": _binary("Mul"), "MAXIMUM": _binary("Max"),
    "MINIMUM": _binary("Min"), "CONCATENATION": _concatenation, "PACK": _pack, "FILL": _fill,
    "SHAPE": _shape,
    "LOGISTIC": _table_activation("Sigmoid"), "TANH": _table_activation("Tanh"),
    "HARD_SWISH": _table_activation("HardSwish"), "LEAKY_RELU": _table_activation("LeakyRelu", "Alpha"),
    "PRELU": _prelu, "SPLIT": _split, "SPLIT_V": _split,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": tflite_recurrent.sequence_lstm, "STRIDED_SLICE": tflite_recurrent.strided_slice,
    "UNPACK": tflite_loops.unpack, "GATHER": tflite_loops.gather, "WHILE": tflite_loops.while_loop,
}


def supported_ops() -> list[str]:
    return sorted(TFLITE_OPS)


def _add_inputs(r: Reader, overrides: dict) -> None:
    for idx in r.m.inputs:
        t = r.tensor(idx)
        if t.is_const:
            continue
        if t.type not in ACTIVATION_TYPES:
            raise UnsupportedError(f"input '{t.name}' has type {t.type}; supported: {', '.join(ACTIVATION_TYPES)}")
        shape = t.shape
        if t.name in overrides:
            shape = tuple(overrides[t.name])
        elif t.signature and any(d < 0 for d in t.signature[1:]):
            raise UnsupportedError(f"input '{t.name}' has a dynamic dimension (shape_signature "
                                   f"{list(t.signature)}): give a fixed shape with --input-shape {t.name}=D1,D2,...")
        if not shape:
            raise UnsupportedError(f"input '{t.name}' is a scalar; kwscc needs a batch axis")
        what = f"--input-shape {t.name}" if t.name in overrides else f"input '{t.name}'"
        r.graph.add_tensor(Tensor(t.name, check_shape(shape, what)))
        r.graph.inputs.append(t.name)


def _check_shapes(r: Reader, op: TflOp) -> None:
    """The file's static output shapes must be what kwscc infers (catches misread attributes)."""
    for idx in op.outputs:
        t = r.tensor(idx)
        ir = r.graph.tensors.get(t.name)
        if ir is None or not t.shape or idx in r.alias:
            continue
        if ir.shape != t.shape:
            raise ModelError(f"{op.where}: output '{t.name}' has shape {list(t.shape)} in the file, but kwscc "
                             f"computes {list(ir.shape)}")


def _recorded_ranges(r: Reader) -> dict[str, tuple[float, float]]:
    """Ranges of every activation from its quantization; none unless all activations have one."""
    by_name = {t.name: t for t in r.m.tensors}
    names = list(r.graph.inputs) + [out for node in r.graph.nodes() for out in node.outputs]
    ranges = {}
    for name in names:
        rng = activation_range(by_name[name]) if name in by_name else None
        if rng is None and name in r.range_from:
            rng = activation_range(r.tensor(r.range_from[name]))
        if rng is not None:
            ranges[name] = rng
    if ranges and len(ranges) < len(names):
        missing = [n for n in names if n not in ranges]
        log.warning("the model quantizes only some activations (not %s): its recorded ranges are not used",
                    ", ".join(missing[:3]))
        return {}
    return tflite_int8.widen_requantized(r.graph, ranges, r.requantized) if ranges else ranges


def read(path: Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    model = load(path)
    check_model(model)
    r = Reader(model, Graph(path.stem))
    overrides = dict(input_shapes or {})
    _add_inputs(r, overrides)
    r.check_shapes = not overrides
    for op in model.ops:
        r.convert(op)
    r.graph.outputs = [r.activation(None, idx) for idx in model.outputs]
    if not r.graph.outputs:
        raise ModelError(f"{path.name}: the subgraph has no outputs")
    for name in r.graph.outputs:
        if name in r.graph.inputs:
            raise UnsupportedError(f"{path.name}: graph output '{name}' is the input itself")
    if r.frames.made_views:  # a time-major reshape whose frames are read batch-first is left unused
        remove_dead_nodes(r.graph)
    r.graph.remove_unused_tensors()
    r.graph.recorded_ranges = _recorded_ranges(r)
    return r.graph
