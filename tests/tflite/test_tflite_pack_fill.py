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


def keras_gru_unrolled(path, *, steps: int = 4, features: int = 3, hidden: int = 5, time_major: bool = False):
    """Keras's unrolled GRU (reset_after) as TF's converter writes it for a model with a dynamic batch:
    the zero state is FILL([SHAPE(x)[0], units], 0), the step outputs are PACKed into the sequence."""
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    x = b.tensor("x", [1, steps, features])
    shape = b.tensor("x_shape", [3], "INT32")
    b.op("SHAPE", [x], [shape], options("Shape", outType=2))
    batch = b.tensor("batch", [], "INT32")
    b.op("STRIDED_SLICE", [shape, *(b.const(n, np.array([v], np.int32), "INT32") for n, v in
                                    (("begin", 0), ("end", 1), ("stride", 1)))], [batch],
         options("StridedSlice", shrinkAxisMask=1))
    dims = b.tensor("dims", [2], "INT32")
    b.op("PACK", [batch, b.const("units", np.array(hidden, np.int32), "INT32")], [dims],
         options("Pack", valuesCount=2, axis=0))
    h = b.tensor("h0", [1, hidden])
    b.op("FILL", [dims, b.const("zero", np.array(0.0, np.float32))], [h])
    frames = [b.tensor(f"f{t}", [1, features]) for t in range(steps)]
    b.op("UNPACK", [x], frames, options("Unpack", num=steps, axis=1))
    w, bw = b.const("kernel", rng.normal(0, 0.6, (3 * hidden, features))), b.const("bias", rng.normal(0, 0.3, 3 * hidden))
    r, br = (b.const("rkernel", rng.normal(0, 0.6, (3 * hidden, hidden))),
             b.const("rbias", rng.normal(0, 0.3, 3 * hidden)))
    one = b.const("one", np.array(1.0, np.float32))
    outs = []
    for t, frame in enumerate(frames):
        def t_(name, shape=(1, hidden)):
            return b.tensor(f"{name}{t}", list(shape))
        xw, hw = t_("xw", (1, 3 * hidden)), t_("hw", (1, 3 * hidden))
        b.op("FULLY_CONNECTED", [frame, w, bw], [xw], fc_options())
        b.op("FULLY_CONNECTED", [h, r, br], [hw], fc_options())
        xs, hs = [t_(f"x{g}") for g in "zrn"], [t_(f"h{g}") for g in "zrn"]
        for src, parts in ((xw, xs), (hw, hs)):
            b.op("SPLIT", [b.const(f"axis_{src}", np.array(1, np.int32), "INT32"), src], parts,
                 options("Split", numSplits=3))
        pre = [t_(f"pre{g}") for g in "zr"]
        z, rr, rh, npre, n = t_("z"), t_("r"), t_("rh"), t_("npre"), t_("n")
        for p, a, c, g in ((pre[0], xs[0], hs[0], z), (pre[1], xs[1], hs[1], rr)):
            b.op("ADD", [a, c], [p], options("Add"))
            b.op("LOGISTIC", [p], [g])
        b.op("MUL", [rr, hs[2]], [rh], options("Mul"))
        b.op("ADD", [xs[2], rh], [npre], options("Add"))
        b.op("TANH", [npre], [n])
        keep, omz, upd, new = t_("keep"), t_("omz"), t_("upd"), t_("h")
        b.op("MUL", [z, h], [keep], options("Mul"))
        b.op("SUB", [one, z], [omz], options("Sub"))
        b.op("MUL", [omz, n], [upd], options("Mul"))
        b.op("ADD", [keep, upd], [new], options("Add"))
        outs.append(h := new)
    seq = b.tensor("seq", [steps, 1, hidden] if time_major else [1, steps, hidden])
    b.op("PACK", outs, [seq], options("Pack", valuesCount=steps, axis=0 if time_major else 1))
    flat = b.tensor("flat", [1, steps * hidden])
    b.op("RESHAPE", [seq, b.const("flat_shape", np.array([1, steps * hidden], np.int32), "INT32")], [flat])
    y = b.tensor("y", [1, 5])
    b.op("FULLY_CONNECTED", [flat, b.const("w", rnd(5, steps * hidden)), b.const("b", rnd(5))], [y], fc_options())
    return b.save(path.parent, [x], [y], name=path.name)


@pytest.mark.parametrize("time_major", [False, True])
def test_keras_gru_with_a_filled_state_and_packed_outputs_is_raised(tmp_path, time_major):
    path = keras_gru_unrolled(tmp_path / "gru.tflite", time_major=time_major)
    graph = run_pipeline(read_model(path))
    (gru,) = [n for n in graph.nodes() if n.op == "GRU"]
    assert gru.attrs["output"] == "sequence" and gru.attrs["linear_before_reset"]
    assert not {"Crop", "Concat", "Sigmoid"} & set(graph.ops()), graph.ops()  # the stack reads the sequence
    agree(path, graph)
