"""Corpus families for the recurrent support (issue 15): mutated LSTM/GRU nodes, Scan/Loop bodies,
TFLite WHILE loops, UNPACK/GATHER, UNIDIRECTIONAL_SEQUENCE_LSTM, int8 quantization parameters,
unrolling blow-ups and the recurrent command-line options (--streaming, --optimize, --kernels).

Like every family of tests/fuzz/corpus.py, each case is malformed (or asks for what kwscc refuses)
by construction: kwscc must refuse it with one `kwscc: error:` line. The cases start from the
shipped recurrent models (examples/kws/recurrent) and from small Scan/Loop models built here with
seeded weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import flatbuffers
import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as S
from onnx import TensorProto, helper, numpy_helper

from tests.fuzz.corpus import KWS, OUT, _init, _model, _model_bytes, _nodes, _save, _set_attr

RECURRENT = KWS / "recurrent"
RNN_ONNX = [RECURRENT / n for n in ("keras_lstm.onnx", "keras_gru.onnx", "basic_lstm_s_rnnop.onnx",
                                    "gru_s_rnnop.onnx")]
LSTM_ONNX = [p for p in RNN_ONNX if "lstm" in p.name]
GRU_ONNX = [p for p in RNN_ONNX if "gru" in p.name]
SCAN_ONNX = RECURRENT / "lstm_s.onnx"
WHILE_TFLITE = RECURRENT / "gru_s.tflite"
SEQ_LSTM_TFLITE = [RECURRENT / "keras_lstm.tflite", RECURRENT / "keras_lstm_int8.tflite"]
UNPACK_TFLITE = [RECURRENT / n for n in ("gru_s_int8.tflite", "basic_lstm_s_unrolled.tflite",
                                         "crnn_s_unrolled.tflite")]
INT8_TFLITE = [RECURRENT / "keras_lstm_int8.tflite", RECURRENT / "gru_s_int8.tflite"]
STEPS = {"x490": 49, "x250": 25}  # frames of the shipped clips
Build = Callable[[Path], list[str]]


def _pick(rng, items: list):
    return items[int(rng.integers(len(items)))]


def _clips(path: Path) -> str:
    """The calibration clips a shipped recurrent model reads (gru_s and lstm_s: 25 frames, else 49)."""
    return "x250" if path.stem.split("_rnnop")[0] in ("gru_s", "lstm_s", "gru_s_int8") else "x490"


def _compile(path: Path, *extra: str, calib: str | None = None) -> list[str]:
    calib = calib if calib is not None else f"{KWS / 'kws_synth.npz'}:calib_{_clips(path)}"
    return [str(path), *(["--calib", calib] if calib else []), *extra, "-o", OUT]


def _rnn_node(model):
    return next(n for n in model.graph.node if n.op_type in ("LSTM", "GRU"))


def _onnx_case(paths: list[Path], mutate: Callable, rng) -> Build:
    """A case that loads one of `paths`, calls mutate(model, node) on its LSTM/GRU node and compiles it."""
    path = _pick(rng, paths)

    def build(folder: Path) -> list[str]:
        model = _model(path)
        mutate(model, _rnn_node(model))
        return _compile(_save(model, folder, path.name))
    return build


def _replace_init(model, name: str, value: np.ndarray) -> None:
    _init(model, name).CopyFrom(numpy_helper.from_array(value, name))


def _add_const(model, name: str, value: np.ndarray) -> str:
    model.graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def _set_input(node, index: int, name: str) -> None:
    while len(node.input) <= index:
        node.input.append("")
    node.input[index] = name


# ---------------------------------------------------------------------------------------------------
# ONNX LSTM / GRU
# ---------------------------------------------------------------------------------------------------
def _hidden_size(rng) -> Build:
    delta = _pick(rng, [1, -1, 7, -13, 1000])
    absolute = _pick(rng, [None, None, 0, -1, -64, 1 << 31, 1 << 40])

    def mutate(model, node):
        h = next(a.i for a in node.attribute if a.name == "hidden_size")
        _set_attr(node, "hidden_size", absolute if absolute is not None else h + delta)
    return _onnx_case(RNN_ONNX, mutate, rng)


def _direction(rng) -> Build:
    value = _pick(rng, ["reverse", "bidirectional", "", "Forward", "FORWARD", "sideways", "forward\x00", "forwards"])
    return _onnx_case(RNN_ONNX, lambda model, node: _set_attr(node, "direction", value), rng)


def _activations(rng) -> Build:
    kind = int(rng.integers(5))

    def mutate(model, node):
        default = ["Sigmoid", "Tanh", "Tanh"] if node.op_type == "LSTM" else ["Sigmoid", "Tanh"]
        acts = [list(default[:-1]), default + ["Tanh"], default + default, ["Swish"] * len(default),
                default[:-1] + [""]][kind]
        _set_attr(node, "activations", acts)
        if kind == 4:
            _set_attr(node, "activation_alpha", [float("nan")] * len(default))
    return _onnx_case(RNN_ONNX, mutate, rng)


def _clip(rng) -> Build:
    value = _pick(rng, [0.0, -1.0, -1e-3, float("nan"), -float("inf"), float("inf")])
    return _onnx_case(RNN_ONNX, lambda model, node: _set_attr(node, "clip", value), rng)


def _layout(rng) -> Build:
    value = _pick(rng, [2, 3, -1, 7, 1 << 40])

    def mutate(model, node):
        next(o for o in model.opset_import if o.domain in ("", "ai.onnx")).version = 14  # layout: opset 14
        _set_attr(node, "layout", value)
    return _onnx_case(RNN_ONNX, mutate, rng)


def _linear_before_reset(rng) -> Build:
    value = _pick(rng, [2, -1, 5, 1 << 33])
    return _onnx_case(GRU_ONNX, lambda model, node: _set_attr(node, "linear_before_reset", value), rng)


def _input_forget(rng) -> Build:
    value = _pick(rng, [2, -1, 1])  # 1 is valid ONNX but coupled gates are refused by name
    return _onnx_case(LSTM_ONNX, lambda model, node: _set_attr(node, "input_forget", value), rng)


def _weight_shapes(rng) -> Build:
    which = int(rng.integers(3))  # W, R, B
    how = int(rng.integers(5))

    def mutate(model, node):
        init = _init(model, node.input[1 + which])
        w = numpy_helper.to_array(init)
        shape = list(w.shape)
        if how == 0:
            shape[-1] += 1
        elif how == 1:
            shape[1 if len(shape) > 2 else -1] -= 2
        elif how == 2:
            shape = shape[1:]  # rank 2 (or 1): the direction axis dropped
        elif how == 3:
            shape[0] = 2  # two directions for a forward node
        else:
            shape = shape + [1]
        _replace_init(model, init.name, np.full(shape, 0.01, np.float32))
    return _onnx_case(RNN_ONNX, mutate, rng)


def _weight_dtypes(rng) -> Build:
    which = int(rng.integers(3))
    dtype = _pick(rng, [np.float64, np.float16, np.int8, np.int32, np.int64, np.uint8, np.bool_])

    def mutate(model, node):
        init = _init(model, node.input[1 + which])
        _replace_init(model, init.name, numpy_helper.to_array(init).astype(dtype))
    return _onnx_case(RNN_ONNX, mutate, rng)


def _weight_nan(rng) -> Build:
    which = int(rng.integers(4))  # W, R, B, initial_h
    value = _pick(rng, [np.nan, np.inf, -np.inf])
    pick = int(rng.integers(1 << 16))

    def mutate(model, node):
        name = node.input[[1, 2, 3, 5][which]]
        w = numpy_helper.to_array(_init(model, name)).copy()
        w.reshape(-1)[pick % w.size] = value
        new = f"{name}_corpus"  # its own tensor: initial_h and initial_c may share one
        _add_const(model, new, w)
        node.input[[1, 2, 3, 5][which]] = new
    return _onnx_case(RNN_ONNX, mutate, rng)


def _sequence_lens(rng) -> Build:
    kind = int(rng.integers(6))

    def mutate(model, node):
        steps = 49 if _clips_of(model) == "x490" else 25
        value = [np.array([steps], np.int64), np.array([steps], np.float32), np.array([steps, steps], np.int32),
                 np.array([steps - 1], np.int32), np.array([-1], np.int32), np.array(steps, np.int32)][kind]
        _set_input(node, 4, _add_const(model, "corpus_lens", value))
    return _onnx_case(RNN_ONNX, mutate, rng)


def _clips_of(model) -> str:
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return "x250" if dims[-1] == 250 else "x490"


def _sequence_lens_runtime(rng) -> Build:
    """sequence_lens computed from the model input (a Shape of it): not a constant."""
    def mutate(model, node):
        x = model.graph.input[0].name
        model.graph.node.insert(0, helper.make_node("Shape", [x], ["corpus_shape"], name="corpus_shape"))
        model.graph.node.insert(1, helper.make_node("Cast", ["corpus_shape"], ["corpus_lens"], name="corpus_cast",
                                                    to=TensorProto.INT32))
        _set_input(node, 4, "corpus_lens")
    return _onnx_case(RNN_ONNX, mutate, rng)


def _initial_state(rng) -> Build:
    which = _pick(rng, [5, 6])
    kind = int(rng.integers(5))

    def mutate(model, node):
        index = 5 if node.op_type == "GRU" else which
        h = next(a.i for a in node.attribute if a.name == "hidden_size")
        value = [np.zeros((1, 1, h + 1), np.float32), np.zeros((1, 2, h), np.float32), np.zeros((h,), np.float32),
                 np.zeros((1, 1, h), np.float64), np.zeros((2, 1, h), np.float32)][kind]
        _set_input(node, index, _add_const(model, "corpus_state", value))
    return _onnx_case(RNN_ONNX, mutate, rng)


def _initial_state_runtime(rng) -> Build:
    """An initial state computed from the model input: not a constant."""
    def mutate(model, node):
        x = model.graph.input[0].name
        h = next(a.i for a in node.attribute if a.name == "hidden_size")
        features = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][-1]
        _add_const(model, "corpus_proj", np.full((features, h), 0.01, np.float32))
        _add_const(model, "corpus_state_shape", np.array([1, 1, h], np.int64))
        model.graph.node.insert(0, helper.make_node("MatMul", [x, "corpus_proj"], ["corpus_h"], name="corpus_mm"))
        model.graph.node.insert(1, helper.make_node("Reshape", ["corpus_h", "corpus_state_shape"], ["corpus_h0"],
                                                    name="corpus_h0"))
        _set_input(node, 5, "corpus_h0")
    return _onnx_case(RNN_ONNX, mutate, rng)


def _rnn_inputs(rng) -> Build:
    kind = int(rng.integers(5))

    def mutate(model, node):
        if kind == 0:
            node.input[1] = ""  # W missing
        elif kind == 1:
            node.input[2] = ""  # R missing
        elif kind == 2:
            node.input.extend([""] * (9 - len(node.input)) + ["corpus_extra"])
            _add_const(model, "corpus_extra", np.zeros(3, np.float32))
        elif kind == 3:
            node.output.extend(["corpus_out4", "corpus_out5"][: 4 - len(node.output) + 1])
        else:
            node.input[0] = "corpus_undefined"
    return _onnx_case(RNN_ONNX, mutate, rng)


def _peepholes(rng) -> Build:
    shape = _pick(rng, [(1, 2), (1, 191), (3,), (1, 3, 64), (2, 192)])
    value = _pick(rng, [0.1, np.nan])

    def mutate(model, node):
        h = next(a.i for a in node.attribute if a.name == "hidden_size")
        good = (1, 3 * h)
        bad = shape if shape != good else (1, 3 * h + 1)
        if np.isnan(value):
            arr = np.full(good, 0.1, np.float32)
            arr[0, 0] = np.nan
        else:
            arr = np.full(bad, value, np.float32)
        _set_input(node, 7, _add_const(model, "corpus_P", arr))
    return _onnx_case(LSTM_ONNX, mutate, rng)


def _rnn_input_rank(rng) -> Build:
    """The LSTM/GRU reads the reshaped input directly, of the wrong rank or with a batch above 1."""
    kind = int(rng.integers(4))

    def mutate(model, node):
        steps = 49 if _clips_of(model) == "x490" else 25
        target = [[steps, 10], [1, steps, 1, 10], [1, steps, 10], [steps // 7, 7, 10] if steps == 49 else [5, 5, 10]][kind]
        reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
        _replace_init(model, reshape.input[1], np.array(target, np.int64))
        node.input[0] = reshape.output[0]
    return _onnx_case(RNN_ONNX, mutate, rng)


# ---------------------------------------------------------------------------------------------------
# ONNX Scan and Loop: the shipped Scan and small ones built here
# ---------------------------------------------------------------------------------------------------
T_SMALL, F_SMALL, H_SMALL = 4, 3, 5


def _weights(seed: int) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    return {"w": g.normal(0, 0.5, (F_SMALL + H_SMALL, H_SMALL)).astype(np.float32),
            "b": g.normal(0, 0.1, H_SMALL).astype(np.float32),
            "v": g.normal(0, 0.5, (H_SMALL, 3)).astype(np.float32), "c": np.zeros(3, np.float32),
            "h0": np.zeros((1, H_SMALL), np.float32), "one": np.array(1, np.int64)}


def _vi(name: str, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def _small_model(nodes, inits: dict, steps: int = T_SMALL) -> onnx.ModelProto:
    """x [1, steps * F] -> h0 = Gemm(x) (an activation: a constant state reaches Concat as a constant)
    -> the loop `nodes` -> y."""
    g = np.random.default_rng(steps)
    inits = {**inits, "w0": g.normal(0, 0.1, (steps * F_SMALL, H_SMALL)).astype(np.float32),
             "b0": np.zeros(H_SMALL, np.float32)}
    inits.pop("h0", None)
    nodes = [helper.make_node("Gemm", ["x", "w0", "b0"], ["h0"], name="initial_state"), *nodes]
    tensors = [numpy_helper.from_array(v, k) for k, v in inits.items()]
    graph = helper.make_graph(nodes, "corpus_rnn", [_vi("x", shape=[1, steps * F_SMALL])], [_vi("y", shape=[1, 3])],
                              tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def _cell(prefix: str = "") -> list:
    """h_out = tanh(Gemm([frame, h_in], w, b)) (body nodes)."""
    return [helper.make_node("Concat", ["frame", "h_in"], [prefix + "xh"], axis=1),
            helper.make_node("Gemm", [prefix + "xh", "w", "b"], [prefix + "pre"]),
            helper.make_node("Tanh", [prefix + "pre"], ["h_out"])]


def _scan_model(steps: int = T_SMALL, body_nodes=None, body_inputs=None, body_outputs=None, attrs=None,
                seed: int = 0, inner=None) -> onnx.ModelProto:
    body = helper.make_graph(
        body_nodes if body_nodes is not None else _cell(),
        "body",
        body_inputs if body_inputs is not None else [_vi("h_in", shape=[1, H_SMALL]), _vi("frame", shape=[1, F_SMALL])],
        body_outputs if body_outputs is not None else [_vi("h_out", shape=[1, H_SMALL])])
    inits = {**_weights(seed), "time_major": np.array([steps, 1, F_SMALL], np.int64), **(inner or {})}
    nodes = [helper.make_node("Reshape", ["x", "time_major"], ["seq"], name="to_time_major"),
             helper.make_node("Scan", ["h0", "seq"], ["h_last"], name="corpus_scan", body=body, num_scan_inputs=1,
                              **(attrs or {})),
             helper.make_node("Gemm", ["h_last", "v", "c"], ["y"], name="classifier")]
    return _small_model(nodes, inits, steps)


def _loop_model(m: str = "steps", cond: str = "go", body_nodes=None, body_inputs=None, body_outputs=None,
                inits=None, seed: int = 0, steps: int = T_SMALL, pre=None) -> onnx.ModelProto:
    """A Loop over the frames (Gather(seq, i)) with trip count input `m` and condition input `cond`."""
    i64 = TensorProto.INT64
    body = helper.make_graph(
        body_nodes if body_nodes is not None else
        [helper.make_node("Identity", ["go_in"], ["go_out"]),
         helper.make_node("Gather", ["seq", "i"], ["frame"], axis=0), *_cell()],
        "body",
        body_inputs if body_inputs is not None else
        [_vi("i", i64, []), _vi("go_in", TensorProto.BOOL, []), _vi("h_in", shape=[1, H_SMALL])],
        body_outputs if body_outputs is not None else [_vi("go_out", TensorProto.BOOL, []), _vi("h_out", shape=[1, H_SMALL])])
    values = {**_weights(seed), "time_major": np.array([steps, 1, F_SMALL], np.int64),
              "steps": np.array(steps, np.int64), "go": np.array(True), **(inits or {})}
    nodes = [*(pre or []), helper.make_node("Reshape", ["x", "time_major"], ["seq"], name="to_time_major"),
             helper.make_node("Loop", [m, cond, "h0"], ["h_last"], name="corpus_loop", body=body),
             helper.make_node("Gemm", ["h_last", "v", "c"], ["y"], name="classifier")]
    return _small_model(nodes, values, steps)


def _small_case(make: Callable[[], onnx.ModelProto]) -> Build:
    def build(folder: Path) -> list[str]:
        model = make()
        data = folder / "clips.npy"
        steps = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][-1]
        np.save(data, np.random.default_rng(1).standard_normal((8, steps)).astype(np.float32))
        return _compile(_save(model, folder, "rnn.onnx"), calib=str(data))
    return build


def _scan_arity(rng) -> Build:
    kind = int(rng.integers(5))
    seed = int(rng.integers(1 << 16))

    def make():
        if kind == 0:  # a body input too many
            return _scan_model(body_inputs=[_vi("h_in", shape=[1, H_SMALL]), _vi("frame", shape=[1, F_SMALL]),
                                            _vi("extra", shape=[1, F_SMALL])], seed=seed)
        if kind == 1:  # a body input too few (the frame read from nowhere)
            return _scan_model(body_inputs=[_vi("h_in", shape=[1, H_SMALL])], seed=seed)
        if kind == 2:  # no body output for the state
            return _scan_model(body_outputs=[], seed=seed)
        if kind == 3:  # more node outputs than body outputs
            model = _scan_model(seed=seed)
            _nodes(model, "Scan")[0].output.append("corpus_extra")
            return model
        model = _scan_model(seed=seed)  # num_scan_inputs larger than the inputs
        _set_attr(_nodes(model, "Scan")[0], "num_scan_inputs", 3)
        return model
    return _small_case(make)


def _scan_directions(rng) -> Build:
    attr = _pick(rng, [("scan_input_directions", [1]), ("scan_input_directions", [2]),
                       ("scan_input_directions", [-1]), ("scan_input_directions", [0, 0]),
                       ("scan_input_axes", [3]), ("scan_input_axes", [-4]), ("scan_output_directions", [1]),
                       ("scan_output_axes", [7])])
    seed = int(rng.integers(1 << 16))

    def make():
        if attr[0].startswith("scan_output"):  # a scan output that the graph reads
            model = _scan_model(body_nodes=[*_cell(), helper.make_node("Identity", ["h_out"], ["h_seq"])],
                                body_outputs=[_vi("h_out", shape=[1, H_SMALL]), _vi("h_seq", shape=[1, H_SMALL])],
                                attrs={attr[0]: attr[1]}, seed=seed)
            _nodes(model, "Scan")[0].output.append("h_all")
            model.graph.output.append(_vi("h_all", shape=None))
            return model
        return _scan_model(attrs={attr[0]: attr[1]}, seed=seed)
    return _small_case(make)


def _scan_shipped(rng) -> Build:
    """The shipped Scan (lstm_s.onnx) with its attributes or body arity changed."""
    kind = int(rng.integers(6))

    def build(folder: Path) -> list[str]:
        model = _model(SCAN_ONNX)
        scan = _nodes(model, "Scan")[0]
        body = next(a for a in scan.attribute if a.name == "body").g
        if kind == 0:
            _set_attr(scan, "scan_input_directions", [1])
        elif kind == 1:
            _set_attr(scan, "num_scan_inputs", 2)
        elif kind == 2:
            body.input.pop()
        elif kind == 3:
            body.output.pop(0)
        elif kind == 4:
            _set_attr(scan, "scan_input_axes", [5])
        else:
            del body.node[len(body.node) // 2]  # a body node missing: a tensor read from nowhere
        return _compile(_save(model, folder, SCAN_ONNX.name))
    return build


def _scan_steps_huge(rng) -> Build:
    """A Scan whose sequence is long enough to blow up unrolling (T above the documented limit)."""
    steps = _pick(rng, [1001, 5000, 100_000, 1_000_000])
    shipped = bool(rng.integers(2))

    def build(folder: Path) -> list[str]:
        if not shipped:
            return _small_case(lambda: _scan_model(steps=steps))(folder)
        model = _model(SCAN_ONNX)
        reshape = _nodes(model, "Reshape")[0]
        target = numpy_helper.to_array(_init(model, reshape.input[1])).copy()
        features = int(np.prod([d for d in target if d > 0])) // 25
        target[list(target).index(25)] = steps
        _replace_init(model, reshape.input[1], target)
        model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = steps * features
        return _compile(_save(model, folder, SCAN_ONNX.name), calib="")
    return build


def _scan_empty_body(rng) -> Build:
    kind = int(rng.integers(3))

    def make():
        if kind == 0:  # no node, outputs read from nowhere
            return _scan_model(body_nodes=[])
        if kind == 1:  # no node, no output
            return _scan_model(body_nodes=[], body_outputs=[])
        return _scan_model(body_nodes=[], body_inputs=[], body_outputs=[])
    return _small_case(make)


def _body_outer_name(rng) -> Build:
    """A body node reads a name the outer graph defines later (or never)."""
    name = _pick(rng, ["y", "corpus_nowhere", "h_last"])
    loop = bool(rng.integers(2))

    def make():
        nodes = _cell()
        nodes[1].input[2] = name
        if loop:
            return _loop_model(body_nodes=[helper.make_node("Identity", ["go_in"], ["go_out"]),
                                           helper.make_node("Gather", ["seq", "i"], ["frame"], axis=0), *nodes])
        return _scan_model(body_nodes=nodes)
    return _small_case(make)


def _nested_loops(rng) -> Build:
    """A Scan whose body runs a Loop: too many steps in all once unrolled, or an inner trip count that is
    not known at compile time."""
    outer, inner = _pick(rng, [(999, 999), (500, 200), (100, 1000), (4, 10 ** 9)]), None
    runtime = bool(rng.integers(3) == 0)

    def make():
        i64 = TensorProto.INT64
        inner_body = helper.make_graph(
            [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Tanh", ["v_in"], ["v_out"])],
            "inner", [_vi("k", i64, []), _vi("c_in", TensorProto.BOOL, []), _vi("v_in", shape=[1, H_SMALL])],
            [_vi("c_out", TensorProto.BOOL, []), _vi("v_out", shape=[1, H_SMALL])])
        pre = [helper.make_node("Cast", ["frame"], ["m_run"], to=i64)] if runtime else []
        nodes = [*pre, *_cell("c_"), helper.make_node("Loop", ["m_run" if runtime else "m_inner", "", "h_out"],
                                                      ["h_next"], name="inner_loop", body=inner_body)]
        return _scan_model(steps=outer[0], body_nodes=nodes, body_outputs=[_vi("h_next", shape=[1, H_SMALL])],
                           inner={"m_inner": np.array(outer[1], np.int64)})
    return _small_case(make)


def _loop_trip_count(rng) -> Build:
    kind = int(rng.integers(7))

    def make():
        if kind == 0:
            return _loop_model(inits={"steps": np.array(-1, np.int64)})
        if kind == 1:
            return _loop_model(inits={"steps": np.array(0, np.int64)})
        if kind == 2:  # huge: beyond the unrolling limit
            return _loop_model(m="big", inits={"big": np.array(10 ** 12, np.int64)})
        if kind == 3:  # no M and a condition that stays true: an infinite loop
            return _loop_model(m="")
        if kind == 4:  # M computed from the input
            return _loop_model(m="m_run", pre=[helper.make_node("Cast", ["x"], ["m_run"], to=TensorProto.INT64)])
        if kind == 5:  # M of the wrong type
            return _loop_model(inits={"steps": np.array(4.0, np.float32)})
        return _loop_model(inits={"steps": np.array([4, 4], np.int64)})  # not a scalar
    return _small_case(make)


def _loop_condition(rng) -> Build:
    kind = int(rng.integers(4))

    def make():
        if kind == 0:  # the initial condition computed from the input
            return _loop_model(cond="c_run", pre=[helper.make_node("Cast", ["x"], ["c_run"], to=TensorProto.BOOL)])
        if kind == 1:  # the body's condition computed from the state
            nodes = [helper.make_node("Gather", ["seq", "i"], ["frame"], axis=0), *_cell(),
                     helper.make_node("Cast", ["h_out"], ["go_out"], to=TensorProto.BOOL)]
            return _loop_model(body_nodes=nodes)
        if kind == 2:  # a condition of the wrong type
            return _loop_model(inits={"go": np.array(1.0, np.float32)})
        return _loop_model(inits={"go": np.array([True, False])})
    return _small_case(make)


def _loop_arity(rng) -> Build:
    kind = int(rng.integers(4))

    def make():
        i64 = TensorProto.INT64
        if kind == 0:  # body without the iteration input
            return _loop_model(body_inputs=[_vi("go_in", TensorProto.BOOL, []), _vi("h_in", shape=[1, H_SMALL])])
        if kind == 1:  # body without the condition output
            return _loop_model(body_outputs=[_vi("h_out", shape=[1, H_SMALL])])
        if kind == 2:  # an extra body input
            return _loop_model(body_inputs=[_vi("i", i64, []), _vi("go_in", TensorProto.BOOL, []),
                                            _vi("h_in", shape=[1, H_SMALL]), _vi("h2", shape=[1, H_SMALL])])
        return _loop_model(body_nodes=[])
    return _small_case(make)


# ---------------------------------------------------------------------------------------------------
# TFLite (the object API of LiteRT's schema: mutate, then pack again)
# ---------------------------------------------------------------------------------------------------
CODES = {v: k for k, v in vars(S.BuiltinOperator).items() if isinstance(v, int)}


def _tfl(path: Path):
    return S.ModelT.InitFromPackedBuf(_model_bytes(path), 0)


def _tfl_save(m, folder: Path, name: str) -> Path:
    fb = flatbuffers.Builder(1 << 16)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    path = folder / name
    path.write_bytes(bytes(fb.Output()))
    return path


def _tfl_ops(m, name: str, subgraph: int | None = None) -> list:
    found = []
    for s, sg in enumerate(m.subgraphs):
        if subgraph is not None and s != subgraph:
            continue
        for op in sg.operators:
            code = m.operatorCodes[op.opcodeIndex]
            if CODES.get(max(code.builtinCode, code.deprecatedBuiltinCode)) == name:
                found.append((sg, op))
    return found


def _while_loop(m):
    """The main graph's WHILE: (main subgraph, op, condition, body, the condition's compare, its constant limit)."""
    sg0, op = _tfl_ops(m, "WHILE", 0)[0]
    cond = m.subgraphs[op.builtinOptions.condSubgraphIndex]
    body = m.subgraphs[op.builtinOptions.bodySubgraphIndex]
    less = cond.operators[0]
    limit = next(i for i in less.inputs if m.buffers[cond.tensors[i].buffer].data is not None)
    return sg0, op, cond, body, less, limit


def _tfl_case(paths: list[Path], mutate: Callable, rng, calib: bool = True) -> Build:
    path = _pick(rng, paths)

    def build(folder: Path) -> list[str]:
        m = _tfl(path)
        mutate(m)
        target = _tfl_save(m, folder, path.name)
        return _compile(target, calib=None if calib else "")
    return build


def _const_value(m, sg, idx: int, dtype=np.int32) -> np.ndarray:
    return np.frombuffer(bytes(m.buffers[sg.tensors[idx].buffer].data), dtype)


def _set_const(m, sg, idx: int, value: np.ndarray) -> None:
    m.buffers[sg.tensors[idx].buffer].data = np.frombuffer(np.ascontiguousarray(value).tobytes(), np.uint8)


def _while_indices(rng) -> Build:
    field, value = _pick(rng, [("condSubgraphIndex", 99), ("condSubgraphIndex", -1), ("condSubgraphIndex", 0),
                               ("bodySubgraphIndex", 1 << 30), ("bodySubgraphIndex", -5), ("bodySubgraphIndex", 0),
                               ("bodySubgraphIndex", 1), ("condSubgraphIndex", 2), ("both", 1)])

    def mutate(m):
        _, op = _tfl_ops(m, "WHILE", 0)[0]
        if field == "both":
            op.builtinOptions.condSubgraphIndex = op.builtinOptions.bodySubgraphIndex = value
        else:
            setattr(op.builtinOptions, field, value)
    return _tfl_case([WHILE_TFLITE], mutate, rng)


def _while_arity(rng) -> Build:
    kind = int(rng.integers(6))

    def mutate(m):
        sg0, op = _tfl_ops(m, "WHILE", 0)[0]
        cond, body = m.subgraphs[op.builtinOptions.condSubgraphIndex], m.subgraphs[op.builtinOptions.bodySubgraphIndex]
        if kind == 0:
            body.inputs = body.inputs[:-1]
        elif kind == 1:
            body.outputs = list(body.outputs) + [body.outputs[0]]
        elif kind == 2:
            cond.inputs = cond.inputs[:1]
        elif kind == 3:
            op.outputs = op.outputs[:-1]
        elif kind == 4:
            cond.outputs = list(cond.outputs) + list(cond.inputs[:1])
        else:
            op.inputs = list(op.inputs) + [op.inputs[-1]]
    return _tfl_case([WHILE_TFLITE], mutate, rng)


def _while_condition(rng) -> Build:
    """The loop's condition reads a value that changes at run time, or never turns false."""
    kind = int(rng.integers(6))

    def mutate(m):
        _, op, cond, body, less, limit = _while_loop(m)
        if kind == 0:  # compare the counter with the hidden state
            less.inputs = [less.inputs[0], cond.inputs[1]]
        elif kind == 1:  # the limit beyond the frames: an infinite loop until GATHER leaves the sequence
            _set_const(m, cond, limit, np.array([10 ** 6], np.int32))
        elif kind == 2:  # the counter never grows: an infinite loop
            add = body.operators[0]
            one = next(i for i in add.inputs if m.buffers[body.tensors[i].buffer].data is not None)
            _set_const(m, body, one, np.array([0], np.int32))
        elif kind == 3:  # the counter starts below the first frame
            _set_const(m, m.subgraphs[0], op.inputs[0], np.array([-3], np.int32))
        elif kind == 4:  # the limit read from the hidden state's shape... a float constant
            cond.tensors[limit].type = S.TensorType.FLOAT32
        else:  # the counter counts down: never reaches the limit
            add = body.operators[0]
            one = next(i for i in add.inputs if m.buffers[body.tensors[i].buffer].data is not None)
            _set_const(m, body, one, np.array([-1], np.int32))
    return _tfl_case([WHILE_TFLITE], mutate, rng)


def _while_trip_huge(rng) -> Build:
    """A WHILE over a sequence long enough to blow up unrolling (T and the limit raised together)."""
    steps = _pick(rng, [1001, 4000, 50_000])

    def mutate(m):
        sg0, op, cond, body, _, limit = _while_loop(m)
        _set_const(m, cond, limit, np.array([steps], np.int32))
        reshape = sg0.operators[0]
        _set_const(m, sg0, reshape.inputs[1], np.array([steps, 1, 10], np.int32))
        sg0.tensors[reshape.outputs[0]].shape = np.array([steps, 1, 10], np.int32)
        sg0.tensors[sg0.inputs[0]].shape = np.array([1, steps * 10], np.int32)
        seq = body.inputs[2]
        body.tensors[seq].shape = np.array([steps, 1, 10], np.int32)
        for t in (op.inputs[2], op.outputs[2]):
            sg0.tensors[t].shape = np.array([steps, 1, 10], np.int32)
    return _tfl_case([WHILE_TFLITE], mutate, rng, calib=False)


def _unpack(rng) -> Build:
    kind = int(rng.integers(6))

    def mutate(m):
        sg, op = _tfl_ops(m, "UNPACK", 0)[0]
        shape = list(sg.tensors[op.inputs[0]].shape)
        if kind == 0:
            op.builtinOptions.num = shape[0] + 1
        elif kind == 1:
            op.builtinOptions.num = 0 if shape[0] != 0 else 1
        elif kind == 2:
            op.builtinOptions.axis = len(shape)
        elif kind == 3:
            op.builtinOptions.axis = -len(shape) - 1
        elif kind == 4:
            op.outputs = op.outputs[:-1]
        else:
            op.builtinOptions.axis = 1  # the batch axis of size 1: shape[0] outputs for one frame
    return _tfl_case(UNPACK_TFLITE, mutate, rng)


def _gather(rng) -> Build:
    kind = int(rng.integers(4))

    def mutate(m):
        sg, op = _tfl_ops(m, "GATHER", 2)[0]
        if kind == 0:
            op.builtinOptions.axis = 5
        elif kind == 1:
            op.builtinOptions.axis = -7
        elif kind == 2:
            op.builtinOptions.batchDims = 3
        else:  # the frames read from the hidden state instead of the sequence
            op.inputs = [sg.inputs[1], op.inputs[1]]
    return _tfl_case([WHILE_TFLITE], mutate, rng)


def _seq_lstm_inputs(rng) -> Build:
    kind = int(rng.integers(6))
    pos = int(rng.integers(1, 16))

    def mutate(m):
        sg, op = _tfl_ops(m, "UNIDIRECTIONAL_SEQUENCE_LSTM", 0)[0]
        inputs = list(op.inputs)
        if kind == 0:
            op.inputs = inputs[:[1, 5, 9, 12, 16, 20][pos % 6]]
        elif kind == 1:
            op.inputs = inputs + [inputs[1], inputs[2]]
        elif kind == 2:  # a required weight or bias absent
            inputs[[2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15][pos % 11]] = -1
            op.inputs = inputs
        elif kind == 3:  # an input index beyond the tensors
            inputs[pos] = len(sg.tensors) + pos
            op.inputs = inputs
        elif kind == 4:  # a weight that is an activation
            inputs[[1, 2, 5, 6][pos % 4]] = inputs[0]
            op.inputs = inputs
        else:  # one gate's weights of another size (the recurrent weights read as input weights)
            inputs[1] = inputs[5]
            op.inputs = inputs
    return _tfl_case(SEQ_LSTM_TFLITE, mutate, rng)


def _seq_lstm_types(rng) -> Build:
    new = _pick(rng, [S.TensorType.INT8, S.TensorType.INT32, S.TensorType.FLOAT16, S.TensorType.BOOL,
                      S.TensorType.INT16, S.TensorType.UINT8, S.TensorType.FLOAT64])
    pos = int(rng.integers(0, 16))

    def mutate(m):
        sg, op = _tfl_ops(m, "UNIDIRECTIONAL_SEQUENCE_LSTM", 0)[0]
        present = [i for i in op.inputs if i >= 0]
        t = sg.tensors[present[pos % len(present)]]
        t.type = new if t.type != new else S.TensorType.COMPLEX64
    return _tfl_case(SEQ_LSTM_TFLITE, mutate, rng)


def _seq_lstm_options(rng) -> Build:
    field, value = _pick(rng, [("cellClip", float("nan")), ("cellClip", -1.0), ("cellClip", float("-inf")),
                               ("projClip", float("nan")), ("projClip", -2.0), ("fusedActivationFunction", 1),
                               ("fusedActivationFunction", 99), ("timeMajor", True)])

    def mutate(m):
        _, op = _tfl_ops(m, "UNIDIRECTIONAL_SEQUENCE_LSTM", 0)[0]
        setattr(op.builtinOptions, field, value)
    return _tfl_case(SEQ_LSTM_TFLITE, mutate, rng)


def _lstm_last_step(rng) -> Build:
    """The STRIDED_SLICE that takes the LSTM's last step, with strides, bounds or masks changed."""
    kind = int(rng.integers(7))

    def mutate(m):
        sg, op = _tfl_ops(m, "STRIDED_SLICE", 0)[0]
        options = op.builtinOptions
        if kind in (0, 1, 2):  # strides 0, 2, -1 along the time axis
            _set_const(m, sg, op.inputs[3], np.array([1, [0, 2, -1][kind], 1], np.int32))
        elif kind == 3:  # begins beyond the sequence
            _set_const(m, sg, op.inputs[1], np.array([0, 100, 0], np.int32))
        elif kind == 4:
            options.ellipsisMask = 1
        elif kind == 5:
            options.newAxisMask = 2
        else:  # begin and end of another rank
            _set_const(m, sg, op.inputs[1], np.array([0, -1], np.int32))
    return _tfl_case(SEQ_LSTM_TFLITE, mutate, rng)


def _quantized_tensors(m) -> list:
    return [(sg, t) for sg in m.subgraphs for t in sg.tensors
            if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale)]


def _int8_scales(rng) -> Build:
    value = _pick(rng, [0.0, -0.5, float("nan"), float("inf"), -float("inf"), 0.0])
    pick = int(rng.integers(1 << 16))
    kind = int(rng.integers(4))

    def mutate(m):
        tensors = _quantized_tensors(m)
        if kind == 1:  # a weight or bias (a constant)
            tensors = [(sg, t) for sg, t in tensors if m.buffers[t.buffer].data is not None] or tensors
        elif kind == 2:  # an activation
            tensors = [(sg, t) for sg, t in tensors if m.buffers[t.buffer].data is None] or tensors
        _, t = tensors[pick % len(tensors)]
        scale = list(t.quantization.scale)
        scale[pick % len(scale)] = value
        t.quantization.scale = scale
    return _tfl_case(INT8_TFLITE, mutate, rng, calib=False)


def _int8_zero_points(rng) -> Build:
    value = _pick(rng, [128, -129, 255, 1 << 20, -(1 << 40), 40000])
    pick = int(rng.integers(1 << 16))

    def mutate(m):
        tensors = [(sg, t) for sg, t in _quantized_tensors(m) if t.type in (S.TensorType.INT8, S.TensorType.INT16)]
        _, t = tensors[pick % len(tensors)]
        zero = list(t.quantization.zeroPoint) if t.quantization.zeroPoint is not None else [0]
        zero[pick % len(zero)] = value if t.type == S.TensorType.INT8 or abs(value) > 32767 else 1 << 20
        t.quantization.zeroPoint = zero
    return _tfl_case(INT8_TFLITE, mutate, rng, calib=False)


def _int8_scale_count(rng) -> Build:
    """Per-channel parameters that do not fit the tensor: too many or too few scales, or a quantized
    dimension outside a weight matrix (a 1-D bias is read along axis 0 whatever the field says, as
    tflite-micro reads it)."""
    kind = int(rng.integers(3))
    pick = int(rng.integers(1 << 16))

    def mutate(m):
        tensors = [(sg, t) for sg, t in _quantized_tensors(m) if m.buffers[t.buffer].data is not None
                   and t.shape is not None and len(t.shape) >= (2 if kind == 2 else 1) and t.shape[0] > 2]
        _, t = tensors[pick % len(tensors)]
        q = t.quantization
        if kind == 0:
            q.scale = list(q.scale) * 2 + [float(q.scale[0])] * 3
            q.zeroPoint = [0] * len(q.scale)
        elif kind == 1:
            n = int(t.shape[0])
            q.scale, q.zeroPoint = [float(q.scale[0])] * (n - 1), [0] * (n - 1)
        else:
            q.scale, q.zeroPoint = [float(q.scale[0])] * int(t.shape[0]), [0] * int(t.shape[0])
            q.quantizedDimension = len(t.shape) + 2
    return _tfl_case(INT8_TFLITE, mutate, rng, calib=False)


# ---------------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------------
RECURRENT_FILES = [RECURRENT / n for n in ("keras_lstm.onnx", "keras_lstm_int8.tflite", "keras_gru.onnx",
                                           "gru_s_int8.tflite", "keras_lstm.tflite", "gru_s_rnnop.onnx", "gru_s.tflite",
                                           "lstm_s.onnx", "crnn_s_unrolled.tflite", "basic_lstm_s_unrolled.tflite")]


def _needs_calib(path: Path) -> bool:
    return "int8" not in path.name


def _streaming_value(rng) -> Build:
    path = _pick(rng, RECURRENT_FILES)
    value = _pick(rng, ["0", "-1", "-49", "abc", "", "7.5", "1e3", str(10 ** 30), "0x7", " ", "inf", "nan"])

    def build(folder: Path) -> list[str]:
        return _compile(path, f"--streaming={value}", calib=None if _needs_calib(path) else "")
    return build


def _streaming_not_dividing(rng) -> Build:
    path = _pick(rng, RECURRENT_FILES)
    frames = _pick(rng, [2, 3, 4, 6, 48, 50, 98, 1000, 10 ** 9])

    def build(folder: Path) -> list[str]:
        steps = STEPS[_clips(path)]
        value = frames if steps % frames else frames + 1
        return _compile(path, "--streaming", str(value), calib=None if _needs_calib(path) else "")
    return build


def _streaming_not_recurrent(rng) -> Build:
    path = _pick(rng, [KWS / "ds_cnn_s.onnx", KWS / "dnn_s_int8.tflite", KWS / "cnn_s.tflite",
                       KWS / "ds_cnn_s_int8.tflite"])
    frames = _pick(rng, [1, 7, 49])

    def build(folder: Path) -> list[str]:
        calib = f"{KWS / 'kws_synth.npz'}:calib_x{250 if 'dnn' in path.name else 490}" if "int8" not in path.name else ""
        return _compile(path, "--streaming", str(frames), calib=calib)
    return build


def _streaming_unraised(rng) -> Build:
    """--streaming with --no-raise-recurrent on a loop or unrolled file: its steps stay plain ops, so no
    recurrent layer keeps a state between calls."""
    path = _pick(rng, [RECURRENT / n for n in ("gru_s_int8.tflite", "crnn_s_unrolled.tflite",
                                                "basic_lstm_s_unrolled.tflite", "gru_s.tflite", "lstm_s.onnx")])
    frames = _pick(rng, [1, 5])

    def build(folder: Path) -> list[str]:
        return _compile(path, "--no-raise-recurrent", "--streaming", str(frames),
                        calib=None if _needs_calib(path) else "")
    return build


def _input_shape(rng) -> Build:
    """--input-shape giving a recurrent model an input its reshape to [T, ...] cannot take (another
    element count), a long clip among them."""
    path = _pick(rng, RECURRENT_FILES)
    dims = _pick(rng, [(1, 491), (1, 7), (2, 490), (1, 491, 1), (1, 10 ** 6), (1000, 250)])

    def build(folder: Path) -> list[str]:
        steps = STEPS[_clips(path)]
        shape = dims if np.prod(dims) != 10 * steps else (*dims[:-1], dims[-1] + 1)
        name = _input_name(path)
        return _compile(path, "--input-shape", f"{name}={','.join(map(str, shape))}",
                        calib=None if _needs_calib(path) else "")
    return build


def _input_name(path: Path) -> str:
    if path.suffix == ".onnx":
        return _model(path).graph.input[0].name
    m = _tfl(path)
    return m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].name.decode()


def _legacy_backend(rng) -> Build:
    """A recurrent model for the cmsis-nn-legacy backend, which has no recurrent kernel: refused by name."""
    path = _pick(rng, RECURRENT_FILES)
    extra = _pick(rng, [[], ["--streaming", "7"], ["--legacy-softmax", "cmsis"]])

    def build(folder: Path) -> list[str]:
        return _compile(path, "--backend", "cmsis-nn-legacy", *extra, calib=None if _needs_calib(path) else "")
    return build


def _option_values(rng) -> Build:
    path = _pick(rng, RECURRENT_FILES)
    extra = _pick(rng, [["--optimize", "fast"], ["--optimize", ""], ["--optimize", "SPEED"], ["--optimize"],
                        ["--kernels", "cmsis"], ["--kernels", ""], ["--kernels", "kwscc,cmsis-nn"],
                        ["--label-names", "labels.txt"], ["--streaming"], ["--cmsis-nn"],
                        ["--cmsis-nn", "corpus_missing_dir"], ["--cmsis-nn", "not_a_checkout"]])

    def build(folder: Path) -> list[str]:
        args = [folder / a if a in ("corpus_missing_dir", "not_a_checkout") else a for a in extra]
        if "not_a_checkout" in extra:
            (folder / "not_a_checkout").mkdir()
        return _compile(path, *map(str, args), calib=None if _needs_calib(path) else "")
    return build


def _validate_label_names(rng) -> Build:
    """validate --label-names with a missing file, too few or too many names, or an empty file."""
    kind = int(rng.integers(4))
    path = _pick(rng, [RECURRENT / "keras_lstm_int8.tflite", KWS / "dnn_s_int8.tflite"])

    def build(folder: Path) -> list[str]:
        names = folder / "names.txt"
        if kind == 1:
            names.write_text("yes\nno\nup\n")
        elif kind == 2:
            names.write_text("\n".join(f"w{i}" for i in range(30)) + "\n")
        elif kind == 3:
            names.write_text("")
        clips = "x490" if "lstm" in path.name else "x250"
        return ["validate", str(path), "--data", f"{KWS / 'kws_synth.npz'}:test50_{clips}", "--labels", "test50_y",
                "--label-names", str(names if kind else folder / "missing.txt")]
    return build


FAMILIES: dict[str, Callable[[np.random.Generator], Build]] = {
    "rnn_hidden_size": _hidden_size,
    "rnn_direction": _direction,
    "rnn_activations": _activations,
    "rnn_clip": _clip,
    "rnn_layout": _layout,
    "gru_linear_before_reset": _linear_before_reset,
    "lstm_input_forget": _input_forget,
    "rnn_weight_shapes": _weight_shapes,
    "rnn_weight_dtypes": _weight_dtypes,
    "rnn_weight_nan": _weight_nan,
    "rnn_sequence_lens": _sequence_lens,
    "rnn_sequence_lens_runtime": _sequence_lens_runtime,
    "rnn_initial_state_shape": _initial_state,
    "rnn_initial_state_runtime": _initial_state_runtime,
    "rnn_inputs_outputs": _rnn_inputs,
    "lstm_peepholes": _peepholes,
    "rnn_input_rank": _rnn_input_rank,
    "scan_body_arity": _scan_arity,
    "scan_directions_axes": _scan_directions,
    "scan_shipped": _scan_shipped,
    "scan_steps_huge": _scan_steps_huge,
    "scan_empty_body": _scan_empty_body,
    "loop_body_outer_name": _body_outer_name,
    "nested_loops": _nested_loops,
    "loop_trip_count": _loop_trip_count,
    "loop_condition": _loop_condition,
    "loop_body_arity": _loop_arity,
    "while_subgraph_index": _while_indices,
    "while_arity": _while_arity,
    "while_condition": _while_condition,
    "while_trip_huge": _while_trip_huge,
    "unpack_num_axis": _unpack,
    "gather_axis_input": _gather,
    "seq_lstm_inputs": _seq_lstm_inputs,
    "seq_lstm_types": _seq_lstm_types,
    "seq_lstm_options": _seq_lstm_options,
    "lstm_last_step_slice": _lstm_last_step,
    "int8_scales": _int8_scales,
    "int8_zero_points": _int8_zero_points,
    "int8_scale_count": _int8_scale_count,
    "streaming_value": _streaming_value,
    "streaming_not_dividing": _streaming_not_dividing,
    "streaming_not_recurrent": _streaming_not_recurrent,
    "streaming_unraised": _streaming_unraised,
    "recurrent_input_shape": _input_shape,
    "legacy_backend_recurrent": _legacy_backend,
    "option_values": _option_values,
    "validate_label_names": _validate_label_names,
}
# families whose variants repeat quickly (few distinct mutations): fewer cases
VARIANTS = {"scan_empty_body": 6, "rnn_sequence_lens_runtime": 8, "rnn_initial_state_runtime": 8,
            "validate_label_names": 8, "legacy_backend_recurrent": 8, "streaming_unraised": 10, "scan_steps_huge": 12, "while_trip_huge": 8, "nested_loops": 10}
DEFAULT_VARIANTS = 20
