"""Small recurrent models built in code for the tests of kwscc's recurrent ops: ONNX LSTM / GRU, and a
float TFLite UNIDIRECTIONAL_SEQUENCE_LSTM (peepholes, projection, clips as asked)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.tflite.tfl_builder import ModelBuilder, options

T, F, H = 6, 3, 5


def onnx_rnn(tmp_path: Path, op: str, *, attrs=None, peepholes=False, initial=False, batch=1, seq=T,
             outputs=("Y_h",), last_slice=False, features=F, hidden=H, seed=7) -> Path:
    """x [batch, T, F] -> time-major -> op; outputs Y_h, or Y's last step through Squeeze/Slice/Squeeze."""
    F, H = features, hidden  # this model's sizes (the module's by default)
    rng = np.random.default_rng(seed)
    gates = 4 if op == "LSTM" else 3
    inits = [numpy_helper.from_array(rng.normal(0, 0.6, (1, gates * H, F)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.normal(0, 0.6, (1, gates * H, H)).astype(np.float32), "R"),
             numpy_helper.from_array(rng.normal(0, 0.3, (1, 2 * gates * H)).astype(np.float32), "B")]
    inputs = ["xt", "W", "R", "B", ""]
    if initial:
        inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (1, batch, H)).astype(np.float32), "h0"))
        inputs.append("h0")
        if op == "LSTM":
            inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (1, batch, H)).astype(np.float32), "c0"))
            inputs.append("c0")
    if peepholes:
        inputs += [""] * (7 - len(inputs))
        inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (1, 3 * H)).astype(np.float32), "P"))
        inputs.append("P")
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2])]
    nodes += [helper.make_node(op, inputs, ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else []), name="rnn",
                              hidden_size=H, **(attrs or {}))]
    out = "Y_h"
    if last_slice:
        consts = {"ax1": [1], "start": [-1], "end": [2**31 - 1], "ax0": [0]}
        inits += [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in consts.items()]
        nodes += [helper.make_node("Squeeze", ["Y", "ax1"], ["Ys"]),
                  helper.make_node("Slice", ["Ys", "start", "end", "ax0"], ["Ylast"]),
                  helper.make_node("Squeeze", ["Ylast", "ax0"], ["last"])]
        out = "last"
    for o in outputs:
        if o != "Y_h":
            out = o
    graph = helper.make_graph(nodes, "rnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, seq, F])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                                             [batch, H] if last_slice else [1, batch, H])],
                              inits)
    path = tmp_path / f"{op.lower()}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)
    return path


# the fused op's inputs (tensorflow/lite/kernels/lstm_shared.h): x, W_ifco, R_ifco, peepholes i f o,
# biases i f c o, projection weights and bias, output and cell state, four layer-norm weights
INPUT_COUNT = 24


def lstm_tflite(directory: Path, *, steps: int, features: int, hidden: int, projection: int = 0,
                peepholes: bool = False, cell_clip: float = 0.0, proj_clip: float = 0.0, seed: int = 0,
                time_major: bool = False, last: bool = False, name: str = "lstm.tflite", activation: int = 4,
                batch: int = 1) -> Path:
    """x [batch, T, F] (-> TRANSPOSE to [T, batch, F] if time_major) -> the LSTM -> its output sequence, or
    (last) a STRIDED_SLICE of its last step. activation: the fused_activation_function code (4 = TANH, the
    only one kwscc reads)."""
    rng = np.random.default_rng(seed)
    out_size = projection or hidden
    b = ModelBuilder()
    x = model_input = b.tensor("x", [batch, steps, features])
    if time_major:  # a batch-first model input transposed to the layer's time-major input
        x = b.tensor("x_time_major", [steps, batch, features])
        b.op("TRANSPOSE", [model_input, b.const("perm", np.array([1, 0, 2], np.int32), "INT32")], [x])
    inputs = [x]
    inputs += [b.const(f"w_{g}", rng.normal(0, 0.5, (hidden, features)).astype(np.float32)) for g in "ifco"]
    inputs += [b.const(f"r_{g}", rng.normal(0, 0.5, (hidden, out_size)).astype(np.float32)) for g in "ifco"]
    inputs += ([b.const(f"p_{g}", rng.normal(0, 0.5, hidden).astype(np.float32)) for g in "ifo"] if peepholes
               else [-1] * 3)
    inputs += [b.const(f"b_{g}", rng.normal(0, 0.3, hidden).astype(np.float32)) for g in "ifco"]
    inputs += ([b.const("proj", rng.normal(0, 0.5, (out_size, hidden)).astype(np.float32)), -1] if projection
               else [-1, -1])
    for state, size in (("h_state", out_size), ("c_state", hidden)):
        inputs.append(b.tensor(state, [batch, size]))
        b.tensors[-1].isVariable = True
    inputs += [-1] * (INPUT_COUNT - len(inputs))
    y = b.tensor("y", [steps, batch, out_size] if time_major else [batch, steps, out_size])
    b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [y],
         options("UnidirectionalSequenceLSTM", fusedActivationFunction=activation, cellClip=cell_clip,
                 projClip=proj_clip, timeMajor=time_major))
    if last:  # y[:, -1] (batch-first): begin [0, -1, 0], end [1, T, O], shrinking the time axis
        ints = [b.const(what, np.array(v, np.int32), "INT32") for what, v in
                (("begin", [0, -1, 0]), ("end", [1, steps, out_size]), ("strides", [1, 1, 1]))]
        last_step = b.tensor("last", [1, out_size])
        b.op("STRIDED_SLICE", [y, *ints], [last_step], options("StridedSlice", shrinkAxisMask=2))
        y = last_step
    return b.save(directory, [model_input], [y], name=name)


def lstm_tflite_int8(directory: Path, *, steps: int, features: int, hidden: int, projection: int, seed: int = 0,
                     proj_clip: float = 0.0) -> tuple[Path, dict[str, np.ndarray]]:
    """A full-int8 UNIDIRECTIONAL_SEQUENCE_LSTM as the converter lays it out (int8 weights, int32 biases, int16
    peepholes, int8 projection, quantized state variables), and the float values its constants dequantize to.
    LiteRT's int8 kernel also wants the gates' intermediate scales, so only kwscc reads this file."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.tensor("x", [1, steps, features], "INT8", scale=0.05, zero_point=3)
    values: dict[str, np.ndarray] = {}

    def const(name: str, shape, kind: str, scale: float, bound: float):
        q = rng.integers(-bound, bound + 1, shape).astype({"INT8": np.int8, "INT16": np.int16, "INT32": np.int32}[kind])
        values[name] = q.astype(np.float64) * scale
        return b.const(name, q, kind, scale=scale, zero_point=0)

    inputs = [x]
    inputs += [const(f"w_{g}", (hidden, features), "INT8", 0.01, 127) for g in "ifco"]
    inputs += [const(f"r_{g}", (hidden, projection), "INT8", 0.008, 127) for g in "ifco"]
    inputs += [const(f"p_{g}", (hidden,), "INT16", 2.0**-14, 8000) for g in "ifo"]
    inputs += [const(f"b_{g}", (hidden,), "INT32", 0.0005, 600) for g in "ifco"]
    inputs += [const("proj", (projection, hidden), "INT8", 0.01, 127), -1]
    for state, size, kind, scale in (("h_state", projection, "INT8", 2.0**-7), ("c_state", hidden, "INT16", 2.0**-11)):
        inputs.append(b.tensor(state, [1, size], kind, scale=scale, zero_point=0))
        b.tensors[-1].isVariable = True
    inputs += [-1] * (INPUT_COUNT - len(inputs))
    y = b.tensor("y", [1, steps, projection], "INT8", scale=2.0**-7, zero_point=0)
    b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [y],
         options("UnidirectionalSequenceLSTM", fusedActivationFunction=4, projClip=proj_clip))
    return b.save(directory, [x], [y], name="lstm_int8.tflite"), values
