"""TFLite sequences and loops unrolled at import: UNPACK and GATHER of one frame become Crops of the
time axis (a time-major sequence is read through a batch-first view, so batched float runs work),
and compute what LiteRT computes."""
from __future__ import annotations

import numpy as np
import pytest

from kwscc.cli import main
from kwscc.errors import UnsupportedError
from kwscc.frontends import read_model
from kwscc.ir.execute import run_float
from tfl_builder import ModelBuilder, fc_options, litert_run, options

RNG = np.random.default_rng(15)


def rnd(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def matches_litert(path, samples: int = 3):
    graph = read_model(path)
    x = rnd(samples, *graph.tensors[graph.inputs[0]].shape[1:])
    own = run_float(graph, {graph.inputs[0]: x})[graph.outputs[0]]  # a batch of 3: axis 0 must stay the batch
    ref = litert_run(path, x)
    np.testing.assert_allclose(own.reshape(ref.shape), ref, rtol=1e-5, atol=1e-6)
    activations = [t for t in graph.tensors.values() if not t.is_const]
    assert all(t.shape[0] == 1 for t in activations), [t.shape for t in activations]
    return graph


def frames_model(b: ModelBuilder, seq: int, steps: int, features: int) -> list[int]:
    frames = [b.tensor(f"frame{t}", [1, features]) for t in range(steps)]
    b.op("UNPACK", [seq], frames, options("Unpack", num=steps, axis=0))
    return frames


def head(b: ModelBuilder, parts: list[int], width: int) -> int:
    """CONCATENATION of the parts -> FULLY_CONNECTED to 5 outputs."""
    cat = b.tensor("cat", [1, width])
    b.op("CONCATENATION", parts, [cat], options("Concatenation", axis=1))
    y = b.tensor("y", [1, 5])
    b.op("FULLY_CONNECTED", [cat, b.const("w", rnd(5, width)), b.const("b", rnd(5))], [y], fc_options())
    return y


def test_unpack_of_a_time_major_sequence(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 12])
    seq = b.tensor("seq", [3, 1, 4])
    b.op("RESHAPE", [x, b.const("shape", np.array([3, 1, 4], np.int32), "INT32")], [seq])
    f = frames_model(b, seq, 3, 4)
    y = head(b, [f[2], f[0]], 8)
    graph = matches_litert(b.save(tmp_path, [x], [y]))
    crops = [n for n in graph.nodes() if n.op == "Crop"]
    assert [(n.attrs["axis"], n.attrs["start"]) for n in crops] == [(1, 0), (1, 2)]  # frame 1 is unused
    assert graph.tensors[crops[0].inputs[0]].shape == (1, 3, 4)  # one batch-first view for all frames


def test_unpack_on_axis_1_and_gather_of_one_frame(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 3, 4])
    frames = [b.tensor(f"frame{t}", [1, 4]) for t in range(3)]
    b.op("UNPACK", [x], frames, options("Unpack", num=3, axis=1))
    last = b.tensor("last", [1, 4])
    b.op("GATHER", [x, b.const("t", np.array(2, np.int32), "INT32")], [last], options("Gather", axis=1))
    y = head(b, [frames[1], last], 8)
    graph = matches_litert(b.save(tmp_path, [x], [y]))
    assert sorted(n.attrs["start"] for n in graph.nodes() if n.op == "Crop") == [0, 1, 2, 2]  # UNPACK, GATHER


def test_unpack_of_a_batch_of_two_is_refused(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 12])
    seq = b.tensor("seq", [3, 2, 2])
    b.op("RESHAPE", [x, b.const("shape", np.array([3, 2, 2], np.int32), "INT32")], [seq])
    f = [b.tensor(f"frame{t}", [2, 2]) for t in range(3)]
    b.op("UNPACK", [seq], f, options("Unpack", num=3, axis=0))
    with pytest.raises(UnsupportedError, match=r"op #1 \(UNPACK\).*only batch 1"):
        read_model(b.save(tmp_path, [x], [f[0]]))


# ---------------------------------------------------------------------------------------------------
# WHILE: main (RESHAPE to time-major, WHILE, FULLY_CONNECTED) + cond (LESS) + body (one RNN step)
# ---------------------------------------------------------------------------------------------------
STEPS, FEATURES, HIDDEN = 3, 2, 4


def while_model(tmp_path, condition: str = "counter"):
    """h_t = tanh(W [x_t, h_{t-1}] + b), h_0 = 0, over the frames of a [1, 6] input; y = V h_T."""
    b = ModelBuilder()
    x = b.tensor("x", [1, STEPS * FEATURES])
    seq = b.tensor("seq", [STEPS, 1, FEATURES])
    b.op("RESHAPE", [x, b.const("shape", np.array([STEPS, 1, FEATURES], np.int32), "INT32")], [seq])
    t0 = b.const("t0", np.array(0, np.int32), "INT32")
    h0 = b.const("h0", np.zeros((1, HIDDEN), np.float32))
    outs = [b.tensor("t_out", [], "INT32"), b.tensor("h_out", [1, HIDDEN]), b.tensor("seq_out", [STEPS, 1, FEATURES])]
    b.op("WHILE", [t0, h0, seq], outs, options("While", condSubgraphIndex=1, bodySubgraphIndex=2))
    y = b.tensor("y", [1, 3])
    b.op("FULLY_CONNECTED", [outs[1], b.const("v", rnd(3, HIDDEN)), b.const("c", rnd(3))], [y], fc_options())
    b.finish_subgraph([x], [y], "main")

    args = [b.tensor("cond_t", [], "INT32"), b.tensor("cond_h", [1, HIDDEN]), b.tensor("cond_seq", [STEPS, 1, FEATURES])]
    go = b.tensor("go", [], "BOOL") if condition == "counter" else b.tensor("go", [1, HIDDEN], "BOOL")
    if condition == "counter":
        b.op("LESS", [args[0], b.const("steps", np.array(STEPS, np.int32), "INT32")], [go])
    else:  # runs while the state stays small: a trip count only known at run time
        b.op("LESS", [args[1], b.const("limit", np.full((1, HIDDEN), 0.5, np.float32))], [go])
    b.finish_subgraph(args, [go], "cond")

    t, h, s = b.tensor("t", [], "INT32"), b.tensor("h", [1, HIDDEN]), b.tensor("s", [STEPS, 1, FEATURES])
    t1 = b.tensor("t1", [], "INT32")
    b.op("ADD", [t, b.const("one", np.array(1, np.int32), "INT32")], [t1])
    frame = b.tensor("frame", [1, FEATURES])
    b.op("GATHER", [s, t], [frame], options("Gather", axis=0))
    xh = b.tensor("xh", [1, FEATURES + HIDDEN])
    b.op("CONCATENATION", [frame, h], [xh], options("Concatenation", axis=1))
    pre = b.tensor("pre", [1, HIDDEN])
    b.op("FULLY_CONNECTED", [xh, b.const("w", rnd(HIDDEN, FEATURES + HIDDEN)), b.const("b", rnd(HIDDEN))], [pre],
         fc_options())
    h1 = b.tensor("h1", [1, HIDDEN])
    b.op("TANH", [pre], [h1])
    return b.save(tmp_path, [t, h, s], [t1, h1, s], signature=False)


def test_while_loop_is_unrolled_with_shared_weights(tmp_path):
    graph = matches_litert(while_model(tmp_path))
    dense = [n for n in graph.nodes() if n.op == "Dense"]
    assert len(dense) == STEPS + 1
    assert len({n.inputs[1] for n in dense[:STEPS]}) == 1, "the body's weights must stay one constant"
    weights = [t for t in graph.tensors.values() if t.is_const and t.shape == (HIDDEN, FEATURES + HIDDEN)]
    assert len(weights) == 1
    assert sorted(n.attrs["start"] for n in graph.nodes() if n.op == "Crop") == list(range(STEPS))
    assert not [n for n in graph.nodes() if n.op in ("Add", "Gather")], "the counter arithmetic must fold away"


def test_while_loop_with_a_run_time_trip_count_is_refused(tmp_path, capsys):
    path = while_model(tmp_path, condition="state")
    rc = main([str(path), "-o", str(tmp_path / "out"), "--calib", str(tmp_path / "unused.npy")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and not (tmp_path / "out").exists(), err
    assert err.startswith("kwscc: error: op #1 (WHILE): the loop's trip count is not known at compile time"), err
    assert "op #0 (LESS) of subgraph 1" in err
