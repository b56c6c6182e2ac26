"""TFLite sequences and loops unrolled at import: UNPACK and GATHER of one frame become Crops of the
time axis (a time-major sequence is read through a batch-first view, so batched float runs work),
and compute what LiteRT computes."""
from __future__ import annotations

import numpy as np
import pytest

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
    assert sorted(n.attrs["start"] for n in graph.nodes() if n.op == "Crop") == [1, 2]  # UNPACK frame 1, GATHER frame 2


def test_unpack_of_a_batch_of_two_is_refused(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 12])
    seq = b.tensor("seq", [3, 2, 2])
    b.op("RESHAPE", [x, b.const("shape", np.array([3, 2, 2], np.int32), "INT32")], [seq])
    f = [b.tensor(f"frame{t}", [2, 2]) for t in range(3)]
    b.op("UNPACK", [seq], f, options("Unpack", num=3, axis=0))
    with pytest.raises(UnsupportedError, match=r"op #1 \(UNPACK\).*only batch 1"):
        read_model(b.save(tmp_path, [x], [f[0]]))
