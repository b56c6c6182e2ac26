"""Unrolled recurrent cells the raise_recurrent pass does not recognise compile as the model's plain
ops on the cmsis-nn backend: constant operands (scalars, per-channel vectors, a FILL'ed zero state in
a CONCATENATION), MINIMUM / MAXIMUM clamps, PACK of the step outputs. The C must equal the simulator
bit for bit and agree with LiteRT's float run. A shipped unrolled LSTM compiled with
--no-raise-recurrent (every cell as plain ops) does the same."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.validate.validate import validate
from tests.e2e import kws_shared as kws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tflite"))
from tfl_builder import ModelBuilder, fc_options, options  # noqa: E402

T, F, H, CLASSES = 6, 5, 8, 4
SAMPLES = 64
MIN_TOP1 = 0.9
MIN_SQNR_DB = 20.0


class Cell:
    """A TFLite subgraph under construction with one activation counter for names."""

    def __init__(self, seed: int = 3):
        self.b, self.rng, self.n = ModelBuilder(), np.random.default_rng(seed), 0

    def t(self, shape) -> int:
        self.n += 1
        return self.b.tensor(f"t{self.n}", shape)

    def op(self, code: str, inputs, shape, opts=None) -> int:
        out = self.t(shape)
        self.b.op(code, inputs, [out], opts)
        return out

    def const(self, value) -> int:
        self.n += 1
        return self.b.const(f"c{self.n}", np.asarray(value, np.float32))

    def hard_sigmoid(self, x: int) -> int:
        """Keras's hard sigmoid as its converter writes it: min(max(0.2 x + 0.5, 0), 1)."""
        y = self.op("ADD", [self.op("MUL", [x, self.const(0.2)], [1, H]), self.const(0.5)], [1, H])
        return self.op("MINIMUM", [self.op("MAXIMUM", [y, self.const(0.0)], [1, H]), self.const(1.0)], [1, H])


def coupled_hard_sigmoid_lstm(path: Path) -> Path:
    """A coupled-gate LSTM (i = 1 - f) with hard-sigmoid gates, a per-channel forget bias, a cell clip
    written as MINIMUM / MAXIMUM, a FILL'ed zero initial state and a per-channel MAXIMUM on its outputs:
    no cell kwscc's LSTM expresses."""
    c = Cell()
    x = c.b.tensor("x", [1, T, F])
    frames = [c.t([1, F]) for _ in range(T)]
    c.b.op("UNPACK", [x], frames, options("Unpack", num=T, axis=1))
    zeros = c.t([1, H])
    c.b.op("FILL", [c.b.const("dims", np.array([1, H], np.int32), "INT32"), c.const(0.0)], [zeros])
    w = c.const(c.rng.normal(0, 0.5, (3 * H, F + H)))
    bias = c.const(c.rng.normal(0, 0.2, 3 * H))
    forget_bias = c.const(c.rng.uniform(0.5, 1.5, H))
    floor = c.const(c.rng.uniform(-0.3, 0.0, H))  # a per-channel MAXIMUM on each step's output
    h, cell, outputs = zeros, zeros, []
    for frame in frames:
        z = c.op("FULLY_CONNECTED", [c.op("CONCATENATION", [frame, h], [1, F + H], options("Concatenation", axis=1)),
                                     w, bias], [1, 3 * H], fc_options())
        parts = [c.t([1, H]) for _ in range(3)]
        c.b.op("SPLIT", [c.b.const(f"axis{c.n}", np.array(1, np.int32), "INT32"), z], parts, options("Split", numSplits=3))
        f = c.hard_sigmoid(c.op("ADD", [parts[0], forget_bias], [1, H]))
        i = c.op("SUB", [c.const(1.0), f], [1, H])
        g = c.op("TANH", [parts[1]], [1, H])
        cell = c.op("ADD", [c.op("MUL", [f, cell], [1, H]), c.op("MUL", [i, g], [1, H])], [1, H])
        cell = c.op("MINIMUM", [c.op("MAXIMUM", [cell, c.const(-3.0)], [1, H]), c.const(3.0)], [1, H])
        h = c.op("MUL", [c.hard_sigmoid(parts[2]), c.op("TANH", [cell], [1, H])], [1, H])
        outputs.append(c.op("MAXIMUM", [h, floor], [1, H]))
    seq = c.op("PACK", outputs, [1, T, H], options("Pack", valuesCount=T, axis=1))
    flat = c.op("RESHAPE", [seq, c.b.const("flat", np.array([1, T * H], np.int32), "INT32")], [1, T * H])
    logits = c.op("FULLY_CONNECTED", [flat, c.const(c.rng.normal(0, 0.4, (CLASSES, T * H))),
                                      c.const(c.rng.normal(0, 0.1, CLASSES))], [1, CLASSES], fc_options())
    y = c.op("SOFTMAX", [logits], [1, CLASSES], options("Softmax", beta=1.0))
    return c.b.save(path.parent, [x], [y], name=path.name)


@pytest.fixture(scope="module")
def plain_cell(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plain_cell")
    data = folder / "x.npy"
    np.save(data, np.random.default_rng(5).normal(0, 1, (SAMPLES, T, F)).astype(np.float32))
    path = coupled_hard_sigmoid_lstm(folder / "cifg.tflite")
    return compile_model(path, CompileOptions(calib=str(data))), str(data)


def test_unrecognised_cell_compiles_as_plain_ops(plain_cell):
    compiled, data = plain_cell
    ops = set(compiled.graph.ops())
    assert not ops & {"LSTM", "GRU"} and {"Mul", "Sub", "Concat"} <= ops
    assert "Min" not in ops and compiled.graph.ops().count("Max") == T  # scalar clamps: fused or tables
    assert compiled.graph.ops().count("HardSigmoid") == 2 * T  # each gate's MUL, ADD, MAXIMUM, MINIMUM: one table
    constants = [a for call in compiled.calls for a in call.arrays if a.role == "constant"]
    assert any(a.shared for a in constants) and not all(a.shared for a in constants)  # 0.2, 0.5: once each
    weights = [a for call in compiled.calls if call.node.op == "Dense" for a in call.arrays if a.role == "weights"]
    assert len({a.suffix for a in weights}) == 2  # the cell's, defined once for its 6 steps, and the head's
    result = validate(compiled, data)
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= MIN_TOP1, result["top1_agreement"]
    assert result["output_sqnr_db"] >= MIN_SQNR_DB, result["output_sqnr_db"]


SHIPPED_CLIPS = 200
# basic_lstm_s as plain ops carries its cell state in int8 from step to step (the raised LSTM keeps it in
# int16): 0.862 on the 2000 test clips (raised 0.9765, TF's own int8 file 0.886), 0.830 on these 200
MIN_PLAIN_AGREEMENT = 0.78


def test_shipped_unrolled_lstm_without_raising(tmp_path):
    with np.load(kws.NPZ) as data:
        np.save(tmp_path / "calib.npy", data["calib_x490"][:SHIPPED_CLIPS])
        np.save(tmp_path / "test.npy", data["test_x490"][:SHIPPED_CLIPS])
    compiled = compile_model(kws.KWS / "recurrent" / "basic_lstm_s_unrolled.tflite",
                             CompileOptions(calib=str(tmp_path / "calib.npy"), raise_recurrent=False))
    assert not {"LSTM", "GRU"} & set(compiled.graph.ops())
    dense = [call for call in compiled.calls if call.node.op == "Dense"]
    assert len(dense) == 50 and len({call.arrays[0].suffix for call in dense}) == 2  # 49 steps share one
    result = validate(compiled, str(tmp_path / "test.npy"))
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= MIN_PLAIN_AGREEMENT, result["top1_agreement"]
