"""TFLite PACK (TF's stack of step outputs) becomes Reshapes + one Concat; FILL with a constant shape
and value becomes a constant. Both compute what LiteRT computes."""
from __future__ import annotations

import numpy as np
import pytest

from kwscc.errors import UnsupportedError
from kwscc.frontends import read_model
from kwscc.ir.execute import run_float
from kwscc.passes import run_pipeline
from tfl_builder import ModelBuilder, fc_options, litert_run, options

RNG = np.random.default_rng(7)


def rnd(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def unpacked(b: ModelBuilder, x: int, steps: int, axis: int) -> list[int]:
    frames = [b.tensor(f"frame{t}", [1, 4]) for t in range(steps)]
    b.op("UNPACK", [x], frames, options("Unpack", num=steps, axis=axis))
    return frames


def dense(b: ModelBuilder, x: int, width: int) -> int:
    y = b.tensor("y", [1, 5])
    b.op("FULLY_CONNECTED", [x, b.const("w", rnd(5, width)), b.const("b", rnd(5))], [y], fc_options())
    return y


def fill(b: ModelBuilder, name: str, shape, value: float) -> int:
    out = b.tensor(name, shape)
    b.op("FILL", [b.const(f"{name}_dims", np.array(shape, np.int32), "INT32"),
                  b.const(f"{name}_value", np.array(value, np.float32))], [out])
    return out


def agree(path, graph, samples: int = 3) -> None:
    x = rnd(samples, *graph.tensors[graph.inputs[0]].shape[1:])
    own = run_float(graph, {graph.inputs[0]: x})[graph.outputs[0]]
    ref = litert_run(path, x)
    np.testing.assert_allclose(own.reshape(ref.shape), ref, rtol=1e-5, atol=1e-6)


def test_pack_batch_first_with_a_filled_constant(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1, 3, 4])
    f = unpacked(b, x, 3, 1)
    half = fill(b, "half", [1, 4], 0.5)
    seq = b.tensor("seq", [1, 3, 4])
    b.op("PACK", [f[2], half, f[0]], [seq], options("Pack", valuesCount=3, axis=1))
    flat = b.tensor("flat", [1, 12])
    b.op("RESHAPE", [seq, b.const("shape", np.array([1, 12], np.int32), "INT32")], [flat])
    path = b.save(tmp_path, [x], [dense(b, flat, 12)])
    graph = read_model(path)
    concat = next(n for n in graph.nodes() if n.op == "Concat")
    assert concat.attrs["axis"] == 1 and graph.tensors[concat.inputs[1]].is_const  # FILL: a constant
    assert np.all(graph.tensors[concat.inputs[1]].data == 0.5)
    agree(path, graph)


def test_pack_time_major_stays_batch_first_inside(tmp_path):
    """PACK on axis 0 of [1, 4] frames is [3, 1, 4] in the file; kwscc concatenates [1, 3, 4] and the
    next UNPACK reads frames of that batch-first tensor."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 3, 4])
    f = unpacked(b, x, 3, 1)
    seq = b.tensor("seq", [3, 1, 4])
    b.op("PACK", f[::-1], [seq], options("Pack", valuesCount=3, axis=0))
    g = [b.tensor(f"again{t}", [1, 4]) for t in range(3)]
    b.op("UNPACK", [seq], g, options("Unpack", num=3, axis=0))
    cat = b.tensor("cat", [1, 8])
    b.op("CONCATENATION", [g[0], g[2]], [cat], options("Concatenation", axis=1))
    path = b.save(tmp_path, [x], [dense(b, cat, 8)])
    graph = run_pipeline(read_model(path))
    assert all(t.shape[0] == 1 for t in graph.tensors.values() if not t.is_const)
    agree(path, graph)


def test_fill_of_an_activation_value_is_refused(tmp_path):
    b = ModelBuilder()
    x = b.tensor("x", [1])
    out = b.tensor("filled", [1, 4])
    b.op("FILL", [b.const("dims", np.array([1, 4], np.int32), "INT32"), x], [out])
    path = b.save(tmp_path, [x], [out])
    with pytest.raises(UnsupportedError, match=r"FILL.*constant scalar value"):
        read_model(path)
