"""Build small .tflite models in code (LiteRT's flatbuffer object API), run them with LiteRT, and
quantize numbers the way TFLite does, for the TFLite frontend tests."""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S

TYPES = {"FLOAT32": (S.TensorType.FLOAT32, np.float32), "INT32": (S.TensorType.INT32, np.int32),
         "INT8": (S.TensorType.INT8, np.int8), "UINT8": (S.TensorType.UINT8, np.uint8),
         "INT64": (S.TensorType.INT64, np.int64), "FLOAT16": (S.TensorType.FLOAT16, np.float16),
         "BOOL": (S.TensorType.BOOL, np.bool_), "INT16": (S.TensorType.INT16, np.int16)}
ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
SAME, VALID = 0, 1


def options(kind: str, **fields):
    """An options object, e.g. options("Conv2D", padding=SAME, strideH=2, fusedActivationFunction=1)."""
    obj = getattr(S, f"{kind}OptionsT")()
    for key, value in fields.items():
        assert hasattr(obj, key), f"{kind}Options has no field {key}"
        setattr(obj, key, value)
    return obj


def conv_options(padding=SAME, stride=(1, 1), dilation=(1, 1), act="NONE"):
    return options("Conv2D", padding=padding, strideH=stride[0], strideW=stride[1],
                   dilationHFactor=dilation[0], dilationWFactor=dilation[1], fusedActivationFunction=ACT[act])


def dw_options(padding=SAME, stride=(1, 1), mult=1, act="NONE", dilation=(1, 1)):
    return options("DepthwiseConv2D", padding=padding, strideH=stride[0], strideW=stride[1], depthMultiplier=mult,
                   dilationHFactor=dilation[0], dilationWFactor=dilation[1], fusedActivationFunction=ACT[act])


def pool_options(kernel, stride=(1, 1), padding=VALID, act="NONE"):
    return options("Pool2D", padding=padding, strideH=stride[0], strideW=stride[1], filterHeight=kernel[0],
                   filterWidth=kernel[1], fusedActivationFunction=ACT[act])


def fc_options(act="NONE", keep_num_dims=False):
    return options("FullyConnected", fusedActivationFunction=ACT[act], keepNumDims=keep_num_dims)


class ModelBuilder:
    """Tensors, buffers and operators of one subgraph (or several, for the error tests)."""

    def __init__(self) -> None:
        self.buffers = [S.BufferT()]  # buffer 0: the empty sentinel
        self.tensors: list = []
        self.ops: list = []
        self.opcodes: list = []
        self.names: list[str] = []
        self.finished: list = []  # subgraphs completed by finish_subgraph (the first is the main one)

    def buffer(self, data: np.ndarray) -> int:
        b = S.BufferT()
        b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        self.buffers.append(b)
        return len(self.buffers) - 1

    def tensor(self, name: str, shape, type: str = "FLOAT32", data=None, scale=None, zero_point=None,
               qdim: int = 0, buffer: int | None = None, signature=None) -> int:
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(shape), TYPES[type][0]
        if signature is not None:
            t.shapeSignature = list(signature)
        if data is not None:
            buffer = self.buffer(np.asarray(data, TYPES[type][1]).reshape(shape))
        t.buffer = buffer or 0
        if scale is not None:
            q = S.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            q.zeroPoint = [int(z) for z in np.atleast_1d(0 if zero_point is None else zero_point)]
            q.quantizedDimension = qdim
            t.quantization = q
        self.tensors.append(t)
        self.names.append(name)
        return len(self.tensors) - 1

    def const(self, name: str, data, type: str = "FLOAT32", **quant) -> int:
        data = np.asarray(data)
        return self.tensor(name, data.shape, type, data=data, **quant)

    def op(self, code: str, inputs, outputs, opts=None, custom: str | None = None, version: int = 1) -> None:
        builtin = getattr(S.BuiltinOperator, code)
        key = (builtin, custom, version)
        if key not in self.opcodes:
            self.opcodes.append(key)
        o = S.OperatorT()
        o.opcodeIndex = self.opcodes.index(key)
        o.inputs, o.outputs = list(inputs), list(outputs)
        if opts is not None:
            o.builtinOptionsType = getattr(S.BuiltinOptions, type(opts).__name__[:-1])
            o.builtinOptions = opts
        self.ops.append(o)

    def subgraph(self, inputs, outputs):
        sg = S.SubGraphT()
        sg.tensors, sg.operators, sg.inputs, sg.outputs, sg.name = self.tensors, self.ops, list(inputs), list(outputs), "main"
        return sg

    def finish_subgraph(self, inputs, outputs, name: str) -> int:
        """Close the subgraph built so far (buffers and opcodes stay shared) and start the next one;
        returns the closed one's index. build() writes the finished subgraphs, then the current one."""
        sg = self.subgraph(inputs, outputs)
        sg.name = name
        self.finished.append(sg)
        self.tensors, self.ops, self.names = [], [], []
        return len(self.finished) - 1

    def build(self, inputs, outputs, metadata: bool = True, signature: bool = True, subgraphs: int = 1) -> bytes:
        m = S.ModelT()
        m.version = 3
        m.description = "kwscc test model"
        codes = []
        for builtin, custom, version in self.opcodes:
            c = S.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = builtin, min(builtin, 127), version
            if custom is not None:
                c.customCode = custom
            codes.append(c)
        m.operatorCodes = codes
        m.subgraphs = self.finished + [self.subgraph(inputs, outputs) for _ in range(subgraphs)]
        m.buffers = list(self.buffers)
        if metadata:  # as the converter writes: a runtime version string in its own buffer
            meta = S.MetadataT()
            meta.name = "min_runtime_version"
            meta.buffer = len(m.buffers)
            m.buffers.append(S.BufferT())
            m.buffers[-1].data = np.frombuffer(b"1.14.0\0\0\0\0\0\0\0\0\0\0", np.uint8)
            m.metadata = [meta]
        if signature:
            sig = S.SignatureDefT()
            sig.signatureKey = "serving_default"
            sig.inputs, sig.outputs = [], []
            for names, indices in ((sig.inputs, inputs), (sig.outputs, outputs)):
                for i in indices:
                    tm = S.TensorMapT()
                    tm.name, tm.tensorIndex = self.names[i], i
                    names.append(tm)
            m.signatureDefs = [sig]
        fb = flatbuffers.Builder(1024)
        fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
        return bytes(fb.Output())

    def save(self, directory: Path, inputs, outputs, name: str = "model.tflite", **kw) -> Path:
        path = Path(directory) / name
        path.write_bytes(self.build(inputs, outputs, **kw))
        return path


def litert_run(path: Path, x: np.ndarray) -> np.ndarray:
    """The model's single output for each sample of x (a float input, or quantized as the model says)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rows = []
    for sample in x:
        sample = np.asarray(sample, np.float32).reshape(inp["shape"])
        if inp["dtype"] != np.float32:
            s, z = inp["quantization"]
            sample = np.clip(np.round(sample / s) + z, -128, 127).astype(inp["dtype"])
        it.set_tensor(inp["index"], sample)
        it.invoke()
        y = it.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] != np.float32:
            s, z = out["quantization"]
            y = (y - z) * s
        rows.append(y)
    return np.concatenate(rows)


def quantize_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights with one scale per slice along `axis` (what TFLite's converter makes)."""
    moved = np.moveaxis(w, axis, 0)
    scale = np.maximum(np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1), 1e-8) / 127.0
    view = [1] * w.ndim
    view[axis] = -1
    q = np.clip(np.round(w / scale.reshape(view)), -127, 127).astype(np.int8)
    return q, scale
