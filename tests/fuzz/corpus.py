"""A deterministic corpus of malformed inputs built from the shipped models and data (examples/).

Every case is malformed by construction (no mutation here can give a valid model), so kwscc must
refuse each one: exit status 2, exactly one stderr line starting `kwscc: error:`, no internal error,
nothing written, within a time limit. `cases(seed)` yields the same cases for the same seed; each
case's `cause` names the problem it exercises (one family per cause of issue 16). run_case() runs
the CLI in-process on one case and returns what went wrong, if anything.

    python -m tests.fuzz.corpus            # the whole corpus, counts per cause (benchmarks/fuzz_corpus.py)
"""
from __future__ import annotations

import io
import math
import os
import signal
import struct
import sys
import time
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
KWS = ROOT / "examples" / "kws"
MNIST = ROOT / "examples" / "mnist"
ONNX_MODELS = [KWS / "ds_cnn_s.onnx", KWS / "dnn_s.onnx", KWS / "cnn_s.onnx", MNIST / "mnist_cnn.onnx"]
TFLITE_MODELS = [KWS / "ds_cnn_s_int8.tflite", KWS / "dnn_s_int8.tflite", KWS / "cnn_s.tflite", KWS / "dnn_s.tflite"]
CALIB = {"dnn_s": f"{KWS / 'kws_synth.npz'}:calib_x250", "mnist_cnn": f"{MNIST / 'mnist.npz'}:calib_x"}
OUT = "{OUT}"  # replaced by the output folder of the run
TIME_LIMIT = 30.0  # seconds per case


@dataclass(frozen=True)
class Case:
    name: str  # unique: cause + variant number
    cause: str
    build: Callable[[Path], list[str]]  # writes its files into a folder, returns the CLI arguments


class CaseTimeout(BaseException):
    """Raised by the timer inside a case that runs too long (not an Exception: kwscc must not catch it)."""


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _model_bytes(path: Path) -> bytes:
    return path.read_bytes()


def _model(path: Path) -> onnx.ModelProto:
    return onnx.load_from_string(_model_bytes(path))


def _save(model: onnx.ModelProto, folder: Path, name: str = "model.onnx") -> Path:
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def _calib(model_path: Path) -> str:
    """The shipped calibration data that fits a shipped model (by its file name)."""
    stem = model_path.stem.removesuffix("_int8")
    return CALIB.get(stem, f"{KWS / 'kws_synth.npz'}:calib_x490")


def _compile(model_path: Path, *extra: str, calib: bool = True) -> list[str]:
    return [str(model_path), *(["--calib", _calib(model_path)] if calib else []), *extra, "-o", OUT]


def _nodes(model, op: str) -> list:
    return [n for n in model.graph.node if n.op_type == op]


def _set_attr(node, name: str, value) -> None:
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))


def _init(model, name: str):
    return next((i for i in model.graph.initializer if i.name == name), None)


def _models_with(op: str) -> list[Path]:
    return [p for p in ONNX_MODELS if _nodes(_model(p), op)]


def _attr_case(rng, op: str, attr: str, values: list) -> Callable[[Path], list[str]]:
    """Set attribute `attr` of one `op` node of one shipped model to one of `values`."""
    path = ONNX_MODELS[0] if not _models_with(op) else _models_with(op)[rng.integers(len(_models_with(op)))]
    index = int(rng.integers(1 << 16))
    value = values[int(rng.integers(len(values)))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        nodes = _nodes(model, op)
        _set_attr(nodes[index % len(nodes)], attr, value)
        return _compile(_save(model, folder, path.name))
    return build


def _insert_after_input(model, node_factory) -> None:
    """Insert node_factory(x, y) between the graph input x and its readers."""
    x = model.graph.input[0].name
    y = x + "_corpus"
    for node in model.graph.node:
        node.input[:] = [y if name == x else name for name in node.input]
    model.graph.node.insert(0, node_factory(x, y))


def _after_first(model, op: str, factory) -> None:
    """Insert factory(t, t_new, model) after the first `op` node's output t (its readers read t_new)."""
    producer = _nodes(model, op)[0]
    t = producer.output[0]
    new = t + "_corpus"
    for node in model.graph.node:
        node.input[:] = [new if name == t else name for name in node.input]
    for o in model.graph.output:
        if o.name == t:
            o.name = new
    index = list(model.graph.node).index(producer)
    for k, node in enumerate(factory(t, new, model)):
        model.graph.node.insert(index + 1 + k, node)


def _channels(model, conv) -> int:
    return _init(model, conv.input[1]).dims[0]


# ---------------------------------------------------------------------------------------------------
# ONNX model causes
# ---------------------------------------------------------------------------------------------------
def _weight_dtype(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    dtype = [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.float64, np.float16, "string"][int(rng.integers(8))]
    pick = int(rng.integers(1 << 16))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        weights = [n.input[1] for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
        init = _init(model, weights[pick % len(weights)])
        value = numpy_helper.to_array(init)
        if dtype == "string":
            new = helper.make_tensor(init.name, TensorProto.STRING, value.shape, [b"w"] * value.size)
        else:
            new = numpy_helper.from_array(value.astype(dtype), init.name)
        init.CopyFrom(new)
        return _compile(_save(model, folder, path.name))
    return build


def _kernel_too_big(rng) -> Callable[[Path], list[str]]:
    path = _models_with("Conv")[int(rng.integers(len(_models_with("Conv"))))]
    pick, size = int(rng.integers(1 << 16)), int(rng.integers(60, 120))  # beyond every shipped input

    def build(folder: Path) -> list[str]:
        model = _model(path)
        convs = [c for c in _nodes(model, "Conv") if _init(model, c.input[1]).dims[1] == 1]  # small files
        conv = convs[pick % len(convs)]
        init = _init(model, conv.input[1])
        o, i = init.dims[0], init.dims[1]
        init.CopyFrom(numpy_helper.from_array(np.full((o, i, size, size), 0.01, np.float32), init.name))
        _set_attr(conv, "kernel_shape", [size, size])
        return _compile(_save(model, folder, path.name))
    return build


def _auto_pad(rng) -> Callable[[Path], list[str]]:
    op = ["Conv", "AveragePool", "MaxPool"][int(rng.integers(3))]
    bad = ["SAME", "same_upper", "FULL", "", "VALID\x00"][int(rng.integers(5))]
    both = bool(rng.integers(2))
    path = (_models_with(op) or _models_with("Conv"))[0]
    op = op if _models_with(op) else "Conv"

    def build(folder: Path) -> list[str]:
        model = _model(path)
        node = _nodes(model, op)[0]
        if both or not bad:  # a valid mode together with explicit pads
            _set_attr(node, "auto_pad", "SAME_UPPER")
            _set_attr(node, "pads", [1, 1, 1, 1])
        else:
            _set_attr(node, "auto_pad", bad)
        return _compile(_save(model, folder, path.name))
    return build


def _pool_pads(rng) -> Callable[[Path], list[str]]:
    op = ["AveragePool", "MaxPool"][int(rng.integers(2))]
    path = _models_with(op)[0]
    extra = int(rng.integers(0, 4))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        node = _nodes(model, op)[0]
        kernel = next(list(a.ints) for a in node.attribute if a.name == "kernel_shape")
        _set_attr(node, "pads", [kernel[0] + extra, 0, 0, kernel[1] + extra])
        return _compile(_save(model, folder, path.name))
    return build


def _gemm_k(rng) -> Callable[[Path], list[str]]:
    path = _models_with("Gemm")[int(rng.integers(len(_models_with("Gemm"))))]
    pick, delta = int(rng.integers(1 << 16)), int(rng.integers(1, 40))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        gemms = _nodes(model, "Gemm")
        gemm = gemms[pick % len(gemms)]
        init = _init(model, gemm.input[1])
        w = numpy_helper.to_array(init)
        trans = any(a.name == "transB" and a.i for a in gemm.attribute)
        shape = (w.shape[0], w.shape[1] + delta) if trans else (w.shape[0] + delta, w.shape[1])
        init.CopyFrom(numpy_helper.from_array(np.full(shape, 0.01, np.float32), init.name))
        return _compile(_save(model, folder, path.name))
    return build


def _flatten_axis(rng) -> Callable[[Path], list[str]]:
    axis = [5, -6, 9, 100, -100][int(rng.integers(5))]
    path = _models_with("Softmax")[int(rng.integers(len(_models_with("Softmax"))))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        _after_first(model, "Softmax", lambda t, new, m: [helper.make_node("Flatten", [t], [new], name="flat",
                                                                           axis=axis)])
        return _compile(_save(model, folder, path.name))
    return build


def _clip_min_max(rng) -> Callable[[Path], list[str]]:
    path = _models_with("Relu")[int(rng.integers(len(_models_with("Relu"))))]
    pick = int(rng.integers(1 << 16))
    lo = float(rng.uniform(0.5, 10))
    hi = lo - float(rng.uniform(0.1, 5))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        relus = _nodes(model, "Relu")
        relu = relus[pick % len(relus)]
        model.graph.initializer.extend([numpy_helper.from_array(np.float32(lo), "corpus_lo"),
                                        numpy_helper.from_array(np.float32(hi), "corpus_hi")])
        relu.op_type = "Clip"
        relu.input[:] = [relu.input[0], "corpus_lo", "corpus_hi"]
        return _compile(_save(model, folder, path.name))
    return build


def _transpose_perm(rng) -> Callable[[Path], list[str]]:
    perm = [[0, 0], [1, 2], [0, 1, 2], [2, 0], [0, -1], [0, 5]][int(rng.integers(6))]
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        _insert_after_input(model, lambda x, y: helper.make_node("Transpose", [x], [y], name="corpus_t", perm=perm))
        return _compile(_save(model, folder, path.name))
    return build


def _duplicate_names(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    a, b = int(rng.integers(1 << 16)), int(rng.integers(1 << 16))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        nodes = model.graph.node
        i, j = a % len(nodes), b % len(nodes)
        j = j if j != i else (i + 1) % len(nodes)
        nodes[i].name = nodes[i].name or "n"
        nodes[j].name = nodes[i].name
        return _compile(_save(model, folder, path.name))
    return build


def _shadowed_input(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    same_shape = bool(rng.integers(2))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        vi = model.graph.input[0]
        dims = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
        shape = dims if same_shape else dims + [2]
        model.graph.initializer.append(numpy_helper.from_array(np.zeros(shape, np.float32), vi.name))
        return _compile(_save(model, folder, path.name))
    return build


def _output_initializer(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    pick, replace = int(rng.integers(1 << 16)), bool(rng.integers(2))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        init = model.graph.initializer[pick % len(model.graph.initializer)]
        vi = helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        if replace:
            model.graph.output[0].CopyFrom(vi)
        else:
            model.graph.output.append(vi)
        return _compile(_save(model, folder, path.name))
    return build


def _raw_data(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    pick, delta = int(rng.integers(1 << 16)), int(rng.integers(1, 64)) * [1, -1][int(rng.integers(2))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        inits = [i for i in model.graph.initializer if i.HasField("raw_data") and len(i.raw_data) > 64]
        init = inits[pick % len(inits)]
        init.raw_data = init.raw_data + b"\x01" * delta if delta > 0 else init.raw_data[:delta]
        return _compile(_save(model, folder, path.name))
    return build


def _segmented(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    pick = int(rng.integers(1 << 16))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        init = model.graph.initializer[pick % len(model.graph.initializer)]
        init.segment.begin, init.segment.end = 0, max(1, math.prod(init.dims) // 2)
        return _compile(_save(model, folder, path.name))
    return build


def _external_outside(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    pick, how = int(rng.integers(1 << 16)), ["dotdot", "absolute", "symlink"][int(rng.integers(3))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        init = model.graph.initializer[pick % len(model.graph.initializer)]
        nbytes = len(init.raw_data) or 4 * math.prod(init.dims)
        secret = folder.parent / f"secret_{folder.name}.bin"
        secret.write_bytes(b"\x00" * nbytes)
        location = {"dotdot": f"../{secret.name}", "absolute": str(secret), "symlink": "weights.bin"}[how]
        if how == "symlink":
            (folder / "weights.bin").symlink_to(secret)
        init.ClearField("raw_data")
        init.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(nbytes))):
            init.external_data.add(key=key, value=value)
        return _compile(_save(model, folder, path.name))
    return build


def _input_dims(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    dim = [1 << 31, 10 ** 12, 0, (1 << 24) + 1, 1 << 40][int(rng.integers(5))]
    axis = int(rng.integers(2))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        model.graph.input[0].type.tensor_type.shape.dim[axis].dim_value = dim
        return _compile(_save(model, folder, path.name), calib=False)
    return build


def _input_shape_flag(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    dims = [(1, 10 ** 10), (100000, 100000), (1, 1 << 31), (0, 490), (1, 2 ** 63 - 1)][int(rng.integers(5))]

    def build(folder: Path) -> list[str]:
        name = _model(path).graph.input[0].name
        return _compile(path, "--input-shape", f"{name}={','.join(map(str, dims))}", calib=False)
    return build


def _conv_pads_huge(rng) -> Callable[[Path], list[str]]:
    return _attr_case(rng, "Conv", "pads", [[1 << 31, 0, 0, 0], [0, 10 ** 9, 0, 10 ** 9], [-1, 0, 0, 0],
                                            [0, -5, 0, 0], [1, 1, -1, 1]])


def _bn_folding(rng) -> Callable[[Path], list[str]]:
    """BatchNormalization whose folding would create NaN/Inf: negative variance or epsilon."""
    path = _models_with("BatchNormalization")[int(rng.integers(len(_models_with("BatchNormalization"))))]
    pick, how = int(rng.integers(1 << 16)), ["variance", "epsilon", "both"][int(rng.integers(3))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        bns = _nodes(model, "BatchNormalization")
        bn = bns[pick % len(bns)]
        if how in ("variance", "both"):
            init = _init(model, bn.input[4])
            var = numpy_helper.to_array(init).copy()
            var[0] = -1.0
            init.CopyFrom(numpy_helper.from_array(var.astype(np.float32), init.name))
        if how in ("epsilon", "both"):
            _set_attr(bn, "epsilon", -10.0)
        return _compile(_save(model, folder, path.name))
    return build


def _folded_overflow(rng) -> Callable[[Path], list[str]]:
    """Div by zero or Mul by 1e38 right after a Conv/Gemm: folding it into the weights overflows."""
    op = ["Conv", "Gemm"][int(rng.integers(2))]
    path = _models_with(op)[int(rng.integers(len(_models_with(op))))]
    how = ["div0", "mul1e38", "mulinf_free"][int(rng.integers(3))]

    def build(folder: Path) -> list[str]:
        model = _model(path)

        def factory(t, new, m):
            node = _nodes(m, op)[0]
            channels = _init(m, node.input[1]).dims[0 if op == "Conv" else 1]
            trans = op == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
            channels = _init(m, node.input[1]).dims[0] if trans or op == "Conv" else channels
            shape = [channels, 1, 1] if op == "Conv" else [channels]
            value = np.zeros(shape, np.float32) if how == "div0" else np.full(shape, 1e38, np.float32)
            m.graph.initializer.append(numpy_helper.from_array(value, "corpus_k"))
            return [helper.make_node("Div" if how == "div0" else "Mul", [t, "corpus_k"], [new], name="corpus_arith")]
        _after_first(model, op, factory)
        return _compile(_save(model, folder, path.name))
    return build


def _gemm_alpha(rng) -> Callable[[Path], list[str]]:
    return _attr_case(rng, "Gemm", "alpha", [float("nan"), float("inf"), -float("inf"), 1e38])


def _nan_weights(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    pick, value = int(rng.integers(1 << 16)), [np.nan, np.inf, -np.inf][int(rng.integers(3))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        inits = [i for i in model.graph.initializer if i.data_type == TensorProto.FLOAT and math.prod(i.dims) > 1]
        init = inits[pick % len(inits)]
        w = numpy_helper.to_array(init).copy()
        w.reshape(-1)[pick % w.size] = value
        init.CopyFrom(numpy_helper.from_array(w, init.name))
        return _compile(_save(model, folder, path.name))
    return build


def _identity_chain(rng) -> Callable[[Path], list[str]]:
    """2,000 Identity nodes after the input of a float model compiled without calibration data:
    read and every pass run over the chain before the refusal (passes must stay linear)."""
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    length = int(rng.integers(1500, 2500))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        x = model.graph.input[0].name
        names = [x] + [f"chain_{i}" for i in range(length)]
        for node in model.graph.node:
            node.input[:] = [names[-1] if name == x else name for name in node.input]
        chain = [helper.make_node("Identity", [names[i]], [names[i + 1]], name=f"id_{i}") for i in range(length)]
        nodes = chain + list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        return _compile(_save(model, folder, path.name), calib=False)
    return build


def _constant_output(rng) -> Callable[[Path], list[str]]:
    """The last node reads an initializer instead of the activations: the output ignores the input."""
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    pick = int(rng.integers(1 << 16))

    def build(folder: Path) -> list[str]:
        model = _model(path)
        floats = [i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT]
        model.graph.node[-1].input[0] = floats[pick % len(floats)]
        return _compile(_save(model, folder, path.name))
    return build


def _squeeze_wide(rng) -> Callable[[Path], list[str]]:
    """A Squeeze of an axis whose size is not 1 (a pointwise conv padded wider upstream)."""
    pad = int(rng.integers(5, 10))  # W 5 + pad >= 10: the pool then leaves W >= 2

    def build(folder: Path) -> list[str]:
        path = KWS / "ds_cnn_s.onnx"
        model = _model(path)
        conv = [n for n in _nodes(model, "Conv") if _init(model, n.input[1]).dims[2:] == [1, 1]][-1]
        _set_attr(conv, "pads", [0, 0, 0, pad])
        return _compile(_save(model, folder, path.name))
    return build


def _mixed_types(rng) -> Callable[[Path], list[str]]:
    """An elementwise operand or a Reshape shape of the wrong integer/float type (ONNX binds one type)."""
    path = [KWS / "cnn_s.onnx", MNIST / "mnist_cnn.onnx"][int(rng.integers(2))]
    dtype = [np.int32, np.int64, np.float64, np.int8][int(rng.integers(4))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        op = "Mul" if _nodes(model, "Mul") else "Reshape"
        node = _nodes(model, op)[0]
        init = _init(model, node.input[1])
        value = numpy_helper.to_array(init)
        new = np.int32 if op == "Reshape" and dtype is np.int64 else dtype
        init.CopyFrom(numpy_helper.from_array(value.astype(new), init.name))
        return _compile(_save(model, folder, path.name))
    return build


def _unsupported_op(rng) -> Callable[[Path], list[str]]:
    path = ONNX_MODELS[int(rng.integers(len(ONNX_MODELS)))]
    pick = int(rng.integers(1 << 16))
    op = ["LSTM", "Sin", "Frobnicate", "Conv3D", "Resize", "Relu6", ""][int(rng.integers(7))]

    def build(folder: Path) -> list[str]:
        model = _model(path)
        model.graph.node[pick % len(model.graph.node)].op_type = op
        return _compile(_save(model, folder, path.name))
    return build


def _corrupt_bytes(rng) -> Callable[[Path], list[str]]:
    """A truncated model file, ONNX or TFLite."""
    path = (ONNX_MODELS + TFLITE_MODELS)[int(rng.integers(len(ONNX_MODELS) + len(TFLITE_MODELS)))]
    frac = float(rng.uniform(0.05, 0.9))

    def build(folder: Path) -> list[str]:
        data = _model_bytes(path)
        target = folder / path.name
        target.write_bytes(data[: int(len(data) * frac)])
        return _compile(target)
    return build


# ---------------------------------------------------------------------------------------------------
# TFLite causes (fields patched in place in the flatbuffer)
# ---------------------------------------------------------------------------------------------------
def _tflite_model(path: Path):
    import tflite

    buf = bytearray(_model_bytes(path))
    return buf, tflite.Model.GetRootAsModel(buf, 0)


def _field_pos(table, slot: int) -> int | None:
    """Absolute position of field `slot` (4, 6, 8, ...) of a flatbuffers table, or None if absent."""
    o = table._tab.Offset(slot)
    return table._tab.Pos + o if o else None


def _tflite_ops(model, name: str):
    import tflite

    codes = {v: k for k, v in vars(tflite.BuiltinOperator).items() if isinstance(v, int)}
    sg = model.Subgraphs(0)
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if codes.get(builtin) == name:
            yield op


def _tflite_softmax_beta(rng) -> Callable[[Path], list[str]]:
    path = TFLITE_MODELS[int(rng.integers(len(TFLITE_MODELS)))]
    beta = [float("nan"), float("inf"), -float("inf"), 0.0, -1.0][int(rng.integers(5))]

    def build(folder: Path) -> list[str]:
        import tflite

        buf, model = _tflite_model(path)
        op = next(_tflite_ops(model, "SOFTMAX"))
        table = op.BuiltinOptions()
        opts = tflite.SoftmaxOptions()
        opts.Init(table.Bytes, table.Pos)
        pos = _field_pos(opts, 4)
        if pos is None:
            raise RuntimeError("softmax options hold no beta field to patch")
        struct.pack_into("<f", buf, pos, beta)
        target = folder / path.name
        target.write_bytes(bytes(buf))
        return _compile(target)
    return build


def _tflite_nan_bias(rng) -> Callable[[Path], list[str]]:
    path = [KWS / "cnn_s.tflite", KWS / "dnn_s.tflite", KWS / "ds_cnn_s.tflite"][int(rng.integers(3))]
    value = [float("nan"), float("inf")][int(rng.integers(2))]
    pick = int(rng.integers(1 << 16))

    def build(folder: Path) -> list[str]:
        buf, model = _tflite_model(path)
        sg = model.Subgraphs(0)
        ops = [op for name in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D") for op in _tflite_ops(model, name)]
        op = ops[pick % len(ops)]
        bias = sg.Tensors(op.Inputs(2) if op.InputsLength() > 2 and op.Inputs(2) >= 0 else op.Inputs(1))
        b = model.Buffers(bias.Buffer())
        start = b._tab.Vector(b._tab.Offset(4))
        struct.pack_into("<f", buf, start, value)
        target = folder / path.name
        target.write_bytes(bytes(buf))
        return _compile(target)
    return build


def _tflite_tensor_type(rng) -> Callable[[Path], list[str]]:
    """An int8 model with one tensor's type changed (to float32, int16, int32, uint8, bool, string, or junk)."""
    path = [KWS / "ds_cnn_s_int8.tflite", KWS / "dnn_s_int8.tflite", KWS / "cnn_s_int8.tflite"][int(rng.integers(3))]
    new_type = [0, 2, 3, 5, 6, 7, 10, 99][int(rng.integers(8))]
    pick = int(rng.integers(1 << 16))

    def build(folder: Path) -> list[str]:
        buf, model = _tflite_model(path)
        sg = model.Subgraphs(0)
        candidates = [i for i in range(sg.TensorsLength()) if _field_pos(sg.Tensors(i), 6) is not None
                      and sg.Tensors(i).Type() != new_type]
        t = sg.Tensors(candidates[pick % len(candidates)])
        buf[_field_pos(t, 6)] = new_type
        target = folder / path.name
        target.write_bytes(bytes(buf))
        return _compile(target, calib=bool(pick % 2))
    return build


# ---------------------------------------------------------------------------------------------------
# data files, the command line, names
# ---------------------------------------------------------------------------------------------------
def _npy_bytes(array: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, array)
    return f.getvalue()


def _header_only(shape, dtype="<f4") -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_2_0(f, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return f.getvalue()


def _data_case(kind: str, rng) -> Callable[[Path], list[str]]:
    samples = int(rng.integers(2, 20))
    shape_variant = int(rng.integers(3))

    def build(folder: Path) -> list[str]:
        x = np.random.default_rng(samples).standard_normal((samples, 490)).astype(np.float32)
        model = str(KWS / "cnn_s.onnx") if shape_variant else str(KWS / "ds_cnn_s.onnx")  # both read 490 values
        path = folder / "data.npz"
        if kind == "object_array":
            path = folder / "data.npy"
            path.write_bytes(_npy_bytes(np.array([{"a": 1}] * samples, dtype=object)))
        elif kind == "bad_crc":
            np.savez(path, x=x)
            raw = bytearray(path.read_bytes())
            raw[200 + samples] ^= 0xFF  # inside the stored member's values
            path.write_bytes(bytes(raw))
        elif kind == "member_not_npy":
            with zipfile.ZipFile(path, "w") as z:
                z.writestr(["x.txt", "x", "x.npy.bak", "../x.npy.txt"][shape_variant], b"not an array")
        elif kind == "huge_header":
            path = folder / "data.npy"
            path.write_bytes(_header_only([(10 ** 15, 490), (1 << 40, 490), (samples, 10 ** 12)][shape_variant]))
        elif kind == "truncated_member":
            full = _npy_bytes(x)
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("x.npy", full[: len(full) - 1 - samples])
        elif kind == "truncated_npy":
            path = folder / "data.npy"
            full = _npy_bytes(x)
            path.write_bytes(full[: len(full) // (shape_variant + 2)])
        elif kind == "nan_data":
            x[samples // 2, samples] = [np.nan, np.inf, -np.inf][shape_variant]
            np.savez(path, x=x)
        elif kind == "npz_bomb":
            size = (1 << 31) if samples == 2 else (1 << 27)
            rows = size // (490 * 4)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w", force_zip64=True) as f:
                f.write(_header_only((rows, 490)))
                chunk = b"\x00" * (1 << 24)
                for _ in range(rows * 490 * 4 // len(chunk)):
                    f.write(chunk)
                f.write(b"\x00" * (rows * 490 * 4 % len(chunk)))
        else:
            raise ValueError(kind)
        return [model, "--calib", str(path), "-o", OUT]
    return build


def _labels_huge(rng) -> Callable[[Path], list[str]]:
    shape = [(10 ** 15,), (1 << 50,), (10 ** 9, 10 ** 6)][int(rng.integers(3))]

    def build(folder: Path) -> list[str]:
        labels = folder / "labels.npy"
        labels.write_bytes(_header_only(shape, "<i8"))
        return ["sweep", str(KWS / "dnn_s.onnx"), "--data", _calib(KWS / "dnn_s.onnx"), "--labels", str(labels), "--bits", "8",
                "--noise", "0", "--draws", "1"]
    return build


def _ranges_nested(rng) -> Callable[[Path], list[str]]:
    depth = int(rng.integers(5_000, 200_000))

    def build(folder: Path) -> list[str]:
        ranges = folder / "ranges.json"
        ranges.write_text("[" * depth + "]" * depth)
        return _compile(KWS / "dnn_s.onnx", "--ranges", str(ranges), calib=False)
    return build


def _output_path(rng) -> Callable[[Path], list[str]]:
    how = ["empty", "blank", "long_component", "long_path"][int(rng.integers(4))]
    n = int(rng.integers(256, 600))

    def build(folder: Path) -> list[str]:
        out = {"empty": "", "blank": "  ", "long_component": str(folder / ("o" * n)),
               "long_path": str(folder / "/".join(["d" * 200] * (n // 10)))}[how]
        return [str(KWS / "dnn_s_int8.tflite"), "-o", out]
    return build


def _input_path_too_long(rng) -> Callable[[Path], list[str]]:
    """A model, data or ranges path the system refuses (a component longer than NAME_MAX)."""
    which, n = ["model", "calib", "ranges"][int(rng.integers(3))], int(rng.integers(256, 400))

    def build(folder: Path) -> list[str]:
        long = str(folder / ("p" * n))
        model = KWS / "dnn_s.onnx"
        if which == "model":
            return [long + ".onnx", "-o", OUT]
        if which == "calib":
            return [str(model), "--calib", long + ".npy", "-o", OUT]
        return _compile(model, "--ranges", long + ".json")
    return build


def _usage(rng) -> Callable[[Path], list[str]]:
    argv = [["--bogus-flag"], ["--backend", "nope"], ["--input-shape", "x=1,zero"], [], ["--cpu"],
            ["validate"], ["report", "--calib-method", "median"]][int(rng.integers(7))]

    def build(folder: Path) -> list[str]:
        model = str(KWS / "dnn_s_int8.tflite")
        if argv and argv[0] in ("validate", "report"):
            return [argv[0], model, *argv[1:]]
        return [model, *argv, "-o", OUT] if argv != [] else []
    return build


FAMILIES: dict[str, Callable[[np.random.Generator], Callable[[Path], list[str]]]] = {
    "weight_dtype": _weight_dtype,
    "conv_stride": lambda rng: _attr_case(rng, "Conv", "strides", [[0, 1], [1, 0], [-1, 1], [1, -2], [500, 1],
                                                                    [1, 1 << 31], [0, 0]]),
    "conv_pads": _conv_pads_huge,
    "conv_dilation": lambda rng: _attr_case(rng, "Conv", "dilations", [[0, 1], [1, 0], [-1, 1], [-3, -3]]),
    "conv_group": lambda rng: _attr_case(rng, "Conv", "group", [0, -1, -4, 3, 7]),
    "conv_kernel_too_big": _kernel_too_big,
    "auto_pad": _auto_pad,
    "pool_pads_exceed_kernel": _pool_pads,
    "gemm_k_mismatch": _gemm_k,
    "softmax_axis": lambda rng: _attr_case(rng, "Softmax", "axis", [2, 5, -3, 100, -100]),
    "flatten_axis": _flatten_axis,
    "clip_min_gt_max": _clip_min_max,
    "transpose_perm": _transpose_perm,
    "duplicate_node_names": _duplicate_names,
    "initializer_shadows_input": _shadowed_input,
    "output_is_initializer": _output_initializer,
    "raw_data_length": _raw_data,
    "segmented_initializer": _segmented,
    "external_data_outside": _external_outside,
    "input_dim_huge": _input_dims,
    "input_shape_flag_huge": _input_shape_flag,
    "bn_negative_variance_or_epsilon": _bn_folding,
    "folded_div0_mul1e38": _folded_overflow,
    "gemm_alpha_nan_inf": _gemm_alpha,
    "nan_weights": _nan_weights,
    "identity_chain": _identity_chain,
    "constant_output": _constant_output,
    "squeeze_wide_axis": _squeeze_wide,
    "mixed_types": _mixed_types,
    "unsupported_op": _unsupported_op,
    "truncated_model": _corrupt_bytes,
    "tflite_softmax_beta": _tflite_softmax_beta,
    "tflite_nan_bias": _tflite_nan_bias,
    "tflite_tensor_type": _tflite_tensor_type,
    "data_object_array": lambda rng: _data_case("object_array", rng),
    "data_bad_crc": lambda rng: _data_case("bad_crc", rng),
    "data_member_not_npy": lambda rng: _data_case("member_not_npy", rng),
    "data_huge_header": lambda rng: _data_case("huge_header", rng),
    "data_truncated_member": lambda rng: _data_case("truncated_member", rng),
    "data_truncated_npy": lambda rng: _data_case("truncated_npy", rng),
    "data_nan": lambda rng: _data_case("nan_data", rng),
    "labels_huge": _labels_huge,
    "ranges_nested_json": _ranges_nested,
    "output_path": _output_path,
    "input_path_too_long": _input_path_too_long,
    "usage_error": _usage,
}
# families whose cases are slow to build or run: fewer variants
VARIANTS = {"identity_chain": 6, "npz_bomb": 2}
DEFAULT_VARIANTS = 30


def all_families() -> dict[str, tuple[Callable, int]]:
    """Every cause -> (its family, its number of cases): these and the recurrent ones
    (tests/fuzz/recurrent_corpus.py, which builds on the helpers above)."""
    from tests.fuzz import recurrent_corpus as rec

    families = {cause: (family, VARIANTS.get(cause, DEFAULT_VARIANTS)) for cause, family in FAMILIES.items()}
    families["npz_bomb"] = (lambda rng: _data_case("npz_bomb", rng), VARIANTS["npz_bomb"])
    families.update({cause: (family, rec.VARIANTS.get(cause, rec.DEFAULT_VARIANTS))
                     for cause, family in rec.FAMILIES.items()})
    return families


def cases(seed: int = 16) -> Iterator[Case]:
    """Every case of the corpus, in a fixed order; the same seed gives the same cases."""
    for cause, (family, count) in all_families().items():
        rng = np.random.default_rng([seed, sum(cause.encode())])
        for i in range(count):
            yield Case(f"{cause}-{i:03d}", cause, family(rng))


# ---------------------------------------------------------------------------------------------------
# running one case
# ---------------------------------------------------------------------------------------------------
def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _on_alarm(signum, frame):
    raise CaseTimeout()


def run_case(case: Case, work: Path, time_limit: float = TIME_LIMIT) -> tuple[list[str], float, str]:
    """Run one case in-process in a fresh folder under `work`; (problems found, seconds, stderr)."""
    from kwscc.cli import main

    folder = work / case.name
    folder.mkdir(parents=True)
    out = folder / "OUT"
    argv = [str(out) if a == OUT else a for a in case.build(folder)]
    before_case, before_work, before_cwd = _listing(folder), set(os.listdir(work)), set(os.listdir("."))
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    start = time.perf_counter()
    problems = []
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            rc = main(argv)
    except CaseTimeout:
        rc, problems = None, [f"hang: more than {time_limit:.0f} s"]
    except SystemExit as exc:
        rc = exc.code
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    err = stderr.getvalue()
    lines = err.strip("\n").splitlines()
    if rc is not None:
        if rc != 2:
            problems.append(f"exit status {rc}")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        if "internal error" in err:
            problems.append("internal error")
        elif lines and not lines[0].startswith("kwscc: error:"):
            problems.append("stderr does not start with 'kwscc: error:'")
    if out.exists():
        problems.append("OUT written")
    new = {p for p in _listing(folder) - before_case if p != "OUT" and not p.startswith("OUT" + os.sep)}
    if new or set(os.listdir(work)) - before_work - {case.name} \
            or set(os.listdir(".")) != before_cwd:
        problems.append("wrote outside OUT")
    return [f"{p} ({' '.join(err.split())[:300]!r})" for p in problems], seconds, err


def main(argv: list[str] | None = None) -> int:
    """Run the whole corpus (or every n-th case: --every N) and print the counts per cause."""
    import argparse
    import tempfile
    from collections import Counter

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--every", type=int, default=1, help="run every n-th case only")
    p.add_argument("--only", help="run only the cases of this cause")
    p.add_argument("--show", action="store_true", help="print each case's error line")
    args = p.parse_args(argv)
    totals, bad, slowest = Counter(), Counter(), (0.0, "")
    failures = []
    with tempfile.TemporaryDirectory(prefix="kwscc-corpus-") as tmp:
        for i, case in enumerate(cases(args.seed)):
            if i % args.every or (args.only and case.cause != args.only):
                continue
            problems, seconds, err = run_case(case, Path(tmp))
            if args.show:
                print(f"{case.name} {seconds:.1f}s: {err.strip()[:240]}")
            totals[case.cause] += 1
            slowest = max(slowest, (seconds, case.name))
            if problems:
                bad[case.cause] += 1
                failures.append(f"{case.name}: {'; '.join(problems)}")
    for line in failures:
        print(line)
    print(f"\n{'cause':34s} cases  failed")
    for cause in totals:
        print(f"{cause:34s} {totals[cause]:5d}  {bad[cause]:6d}")
    print(f"{'total':34s} {sum(totals.values()):5d}  {sum(bad.values()):6d}   slowest case {slowest[1]} "
          f"{slowest[0]:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
