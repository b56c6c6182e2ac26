"""raise_recurrent: unrolled LSTM / GRU cells built step by step in ONNX (Split into frames, Concat,
Gemm, Split, Sigmoid, Tanh, Mul, Add, Sub) become one recurrent node that computes what onnxruntime
computes on the unrolled model; lookalikes stay plain ops."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from kwscc.frontends import read_model
from kwscc.ir.execute import run_float
from kwscc.passes import raise_recurrent, run_pipeline
from tests.models_util import make_model, ort_run, save

T, F, H, CLASSES = 5, 3, 4, 3


class Unrolled:
    """An ONNX graph under construction: x [1, T, F] split into T frames [1, F], weights shared."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], {"frame_shape": np.array([1, F], np.int64)}
        self.nodes.append(helper.make_node("Split", ["x"], [f"xs{t}" for t in range(T)], axis=1, name="frames"))
        for t in range(T):
            self.node("Reshape", [f"xs{t}", "frame_shape"], f"x{t}")

    def node(self, op: str, inputs: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}_{out}", **attrs))
        return out

    def const(self, name: str, value) -> str:
        self.inits[name] = np.asarray(value, np.float32)
        return name

    def weights(self, name: str, *shape, scale=0.6) -> str:
        return self.const(name, self.rng.normal(0, scale, shape))

    def split(self, x: str, parts: int, prefix: str) -> list[str]:
        outs = [f"{prefix}{i}" for i in range(parts)]
        self.nodes.append(helper.make_node("Split", [x], outs, axis=1, name=f"split_{prefix}"))
        return outs

    def model(self, out: str, path):
        width = self.inits["proj"].shape[1] if "proj" in self.inits else H
        self.node("Gemm", [out, self.weights("fc_w", width, CLASSES), self.weights("fc_b", CLASSES)], "y")
        return save(make_model(self.nodes, {"x": [1, T, F]}, {"y": [1, CLASSES]}, self.inits), path.parent, path.name)


def lstm_layer(u: Unrolled, frames: list[str], *, features=F, folded_step0=False, forget_bias=1.0,
               cell_act="Tanh", shared=True, initial=False, peepholes=False,
               projection=0, keras=False, clip=None, reshape_state=False) -> tuple[list[str], list[str]]:
    """TF BasicLSTMCell: [i, j, f, o] = split(Gemm(concat(x, h))); f gets forget_bias. TF LSTMCell's
    peepholes: i and f also read w * c_prev, o reads w * c; its projection: h = (o * tanh(c)) Wp.
    `keras`: Keras's unrolled cell, [i, f, j, o] = split(Gemm(x) + MatMul(h)), no forget bias.
    `clip`: "clip" (ONNX Clip) or "minmax" (Max then Min, TFLite's form) of c to [-0.8, 0.8] (and of a
    projection to [-0.5, 0.5]); `reshape_state`: h and c reach the next step through Reshapes to [1, 1, n]
    and back."""
    state = projection or H
    u.weights("lstm_w", features + state, 4 * H)
    u.weights("lstm_b", 4 * H, scale=0.3)
    u.const("fb", [forget_bias])
    if peepholes:
        w_i, w_f, w_o = (u.weights(name, H) for name in ("w_i", "w_f", "w_o"))
    h = u.const("h_init", u.rng.normal(0, 0.5, (1, state)) if initial else np.zeros((1, state)))
    c = u.const("c_init", u.rng.normal(0, 0.5, (1, H)) if initial else np.zeros((1, H)))
    hs, cs = [], []
    for t, x in enumerate(frames):
        w = "lstm_w" if shared else u.weights(f"lstm_w{t}", features + state, 4 * H)
        s = f"l{t}_"
        if folded_step0 and t == 0:  # the converter's step 0: zero state folded away
            z = u.node("Gemm", [x, u.const("w_x", u.inits["lstm_w"][:features]), "lstm_b"], s + "z")
        elif keras:
            w_x, w_h = (u.const(name, part) for name, part in zip(("w_x", "w_h"), np.split(u.inits[w], [features])))
            z = u.node("Add", [u.node("Gemm", [x, w_x, "lstm_b"], s + "zx"), u.node("MatMul", [h, w_h], s + "zh")],
                       s + "z")
        else:
            z = u.node("Gemm", [u.node("Concat", [x, h], s + "xh", axis=1), w, "lstm_b"], s + "z")
        i, j, f, o = u.split(z, 4, s + "g")
        if keras:
            j, f = f, j
        if peepholes and not (folded_step0 and t == 0):
            i = u.node("Add", [i, u.node("Mul", [c, w_i], s + "pi")], s + "ipre")
            f = u.node("Add", [f, u.node("Mul", [w_f, c], s + "pf")], s + "fpeep")
        ig = u.node("Mul", [u.node("Sigmoid", [i], s + "i"), u.node("Tanh", [j], s + "j")], s + "ig")
        if folded_step0 and t == 0:
            c = ig
        else:
            fg = u.node("Sigmoid", [f if keras else u.node("Add", [f, "fb"], s + "fpre")], s + "f")
            c = u.node("Add", [u.node("Mul", [c, fg], s + "fc"), ig], s + "c")
        if clip:
            c = clipped(u, c, 0.8, clip, s + "cc")
        if peepholes:
            o = u.node("Add", [u.node("Mul", [c, w_o], s + "po"), o], s + "opre")
        h = u.node("Mul", [u.node(cell_act, [c], s + "tc"), u.node("Sigmoid", [o], s + "o")], s + "h")
        if projection:
            h = u.node("MatMul", [h, u.weights("proj", H, projection) if t == 0 else "proj"], s + "hp")
            if clip:
                h = clipped(u, h, 0.5, clip, s + "hc")
        hs.append(h)
        cs.append(c)
        if reshape_state:
            for n in {state, H}:
                u.inits[f"{n}_3d"], u.inits[f"{n}_2d"] = np.array([1, 1, n], np.int64), np.array([1, n], np.int64)
            h, c = (u.node("Reshape", [u.node("Reshape", [v, f"{n}_3d"], s + f"{v}3d"), f"{n}_2d"], s + f"{v}2d")
                    for v, n in ((h, state), (c, H)))
    return hs, cs


def clipped(u: Unrolled, x: str, bound: float, form: str, out: str) -> str:
    lo, hi = u.const(f"lo{bound}", -bound), u.const(f"hi{bound}", bound)
    if form == "clip":
        return u.node("Clip", [x, lo, hi], out)
    return u.node("Min", [u.node("Max", [x, lo], out + "_lo"), hi], out)


def gru_layer(u: Unrolled, frames: list[str], *, reset_after: bool, folded_step0=False,
              difference=False, reshape_state=False) -> list[str]:
    """TF1 GRUCell (r * h before the candidate's matmul) or Keras reset_after (r * (h R + b) after it);
    h = z * h + (1 - z) * n, or with `difference` n + z * (h - n); `reshape_state`: h reaches the next
    step through Reshapes to [1, 1, H] and back."""
    features = F
    h = u.const(f"gru_h0_{reset_after}", np.zeros((1, H)))
    one = u.const("one", [1.0])
    hs = []
    if reset_after:
        w, b = u.weights("k_w", features, 3 * H), u.weights("k_b", 3 * H, scale=0.3)
        r_w, r_b = u.weights("rk_w", H, 3 * H), u.weights("rk_b", 3 * H, scale=0.3)
    else:
        wg, bg = u.weights("g_w", features + H, 2 * H), u.weights("g_b", 2 * H, scale=0.3)
        wc, bc = u.weights("c_w", features + H, H), u.weights("c_b", H, scale=0.3)
    for t, x in enumerate(frames):
        s = f"g{t}_"
        if reset_after:
            xz, xr, xn = u.split(u.node("Gemm", [x, w, b], s + "xw"), 3, s + "x")
            hz, hr, hn = u.split(u.node("Gemm", [h, r_w, r_b], s + "hw"), 3, s + "h")
            z = u.node("Sigmoid", [u.node("Add", [xz, hz], s + "zpre")], s + "z")
            r = u.node("Sigmoid", [u.node("Add", [xr, hr], s + "rpre")], s + "r")
            n = u.node("Tanh", [u.node("Add", [xn, u.node("Mul", [r, hn], s + "rh")], s + "npre")], s + "n")
        else:
            gates = u.node("Sigmoid", [u.node("Gemm", [u.node("Concat", [x, h], s + "xh", axis=1), wg, bg],
                                              s + "gpre")], s + "gates")
            r, z = u.split(gates, 2, s + "ru")
            cand = u.node("Concat", [x, u.node("Mul", [r, h], s + "rh")], s + "xrh", axis=1)
            n = u.node("Tanh", [u.node("Gemm", [cand, wc, bc], s + "npre")], s + "n")
        update = u.node("Mul", [u.node("Sub", [one, z], s + "1mz"), n], s + "upd")
        if folded_step0 and t == 0:
            h = update
        elif difference:
            h = u.node("Add", [n, u.node("Mul", [z, u.node("Sub", [h, n], s + "hmn")], s + "zd")], s + "hnew")
        else:
            h = u.node("Add", [u.node("Mul", [z, h], s + "keep"), update], s + "hnew")
        hs.append(h)
        if reshape_state:
            u.inits["h_3d"], u.inits["h_2d"] = np.array([1, 1, H], np.int64), np.array([1, H], np.int64)
            h = u.node("Reshape", [u.node("Reshape", [h, "h_3d"], s + "h3d"), "h_2d"], s + "h2d")
    return hs


def compiled_graph(path):
    return run_pipeline(read_model(path))


def assert_matches_onnxruntime(path, graph, seed=1):
    x = np.random.default_rng(seed).normal(0, 1, (1, T, F)).astype(np.float32)
    ref = ort_run(path, {"x": x})[0]
    got = run_float(graph, {"x": x})[graph.outputs[0]]
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)


def recurrent_nodes(graph):
    return [n for n in graph.nodes() if n.op in ("LSTM", "GRU")]


@pytest.mark.parametrize("folded_step0, initial, keras", [(False, False, False), (True, False, False),
                                                          (False, True, False), (True, False, True)])
def test_unrolled_lstm_becomes_one_node(tmp_path, folded_step0, initial, keras):
    u = Unrolled()
    hs, _ = lstm_layer(u, [f"x{t}" for t in range(T)], folded_step0=folded_step0, initial=initial, keras=keras)
    path = u.model(hs[-1], tmp_path / "lstm.onnx")
    graph = compiled_graph(path)
    (lstm,) = recurrent_nodes(graph)
    assert lstm.op == "LSTM" and lstm.attrs["output"] == "last" and lstm.attrs["hidden_size"] == H
    assert not {"Sigmoid", "Tanh", "Mul", "Concat"} & set(graph.ops())
    np.testing.assert_array_equal(graph.tensors[lstm.inputs[5]].data != 0, initial)  # h0
    assert_matches_onnxruntime(path, graph)


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("folded_step0, difference", [(False, False), (True, False), (True, True)])
def test_unrolled_gru_becomes_one_node(tmp_path, reset_after, folded_step0, difference):
    u = Unrolled()
    hs = gru_layer(u, [f"x{t}" for t in range(T)], reset_after=reset_after, folded_step0=folded_step0,
                   difference=difference)
    path = u.model(hs[-1], tmp_path / "gru.onnx")
    graph = compiled_graph(path)
    (gru,) = recurrent_nodes(graph)
    assert gru.attrs == {"hidden_size": H, "linear_before_reset": reset_after, "output": "last"}
    assert "Sigmoid" not in graph.ops()
    assert_matches_onnxruntime(path, graph)


@pytest.mark.parametrize("folded_step0, initial", [(True, False), (False, False), (False, True)])
def test_lstm_peepholes_and_projection_are_read(tmp_path, folded_step0, initial):
    """With a constant initial state, step 0's peephole products are folded into constants: the cell
    is read from the other steps."""
    u = Unrolled()
    hs, _ = lstm_layer(u, [f"x{t}" for t in range(T)], folded_step0=folded_step0, initial=initial,
                       peepholes=True, projection=3)
    path = u.model(hs[-1], tmp_path / "peepholes.onnx")
    graph = compiled_graph(path)
    (lstm,) = recurrent_nodes(graph)
    p, wp = (graph.tensors[lstm.inputs[i]].data for i in (4, 7))  # P: i, o, f
    np.testing.assert_array_equal(p, np.concatenate([u.inits["w_i"], u.inits["w_o"], u.inits["w_f"]]))
    np.testing.assert_array_equal(wp, u.inits["proj"].T)
    assert_matches_onnxruntime(path, graph)


def test_stacked_layers_become_a_sequence_and_a_last_node(tmp_path):
    """The first layer's every step feeds the second layer: it runs in mode "sequence"."""
    u = Unrolled()
    first = gru_layer(u, [f"x{t}" for t in range(T)], reset_after=False, folded_step0=True)
    second, _ = lstm_layer(u, first, features=H, folded_step0=True)
    path = u.model(second[-1], tmp_path / "stacked.onnx")
    graph = compiled_graph(path)
    assert [(n.op, n.attrs["output"]) for n in recurrent_nodes(graph)] == [("GRU", "sequence"), ("LSTM", "last")]
    assert_matches_onnxruntime(path, graph)


def test_every_hidden_state_read_gives_sequence_output(tmp_path):
    u = Unrolled()
    hs = gru_layer(u, [f"x{t}" for t in range(T)], reset_after=True)
    total = hs[0]
    for t, h in enumerate(hs[1:]):
        total = u.node("Add", [total, h], f"sum{t}")
    path = u.model(total, tmp_path / "sum.onnx")
    graph = compiled_graph(path)
    (gru,) = recurrent_nodes(graph)
    assert gru.attrs["output"] == "sequence"
    assert_matches_onnxruntime(path, graph)


@pytest.mark.parametrize("lookalike", ["weights_per_step", "relu_cell", "cell_state_read_outside"])
def test_lookalikes_stay_plain_ops(tmp_path, lookalike):
    u = Unrolled()
    hs, cs = lstm_layer(u, [f"x{t}" for t in range(T)], shared=lookalike != "weights_per_step",
                        cell_act="Relu" if lookalike == "relu_cell" else "Tanh")
    out = hs[-1]
    if lookalike == "cell_state_read_outside":
        out = u.node("Add", [out, cs[2]], "h_plus_c")
    path = u.model(out, tmp_path / "lookalike.onnx")
    graph = compiled_graph(path)
    assert not recurrent_nodes(graph)
    assert graph.ops().count("Sigmoid") == 3 * T - 1  # step 0's forget gate only multiplied the zero state
    assert_matches_onnxruntime(path, graph)


def test_gate_like_ops_on_feature_maps_stay(tmp_path):
    """Sigmoid, Tanh and products on 4-D maps (a swish, a gated unit) are no cell and no error."""
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["m"]),
             helper.make_node("Tanh", ["m"], ["t"]), helper.make_node("Mul", ["s", "t"], ["y"]),
             helper.make_node("Add", ["y", "m"], ["z"])]
    path = save(make_model(nodes, {"x": [1, 2, 3, 4]}, {"z": [1, 2, 3, 4]}), tmp_path, "swish.onnx")
    graph = compiled_graph(path)
    assert graph.ops() == ["Sigmoid", "Mul", "Tanh", "Mul", "Add"]


def test_a_cell_that_fails_the_numeric_check_is_left_alone(tmp_path, monkeypatch):
    u = Unrolled()
    hs, _ = lstm_layer(u, [f"x{t}" for t in range(T)])
    path = u.model(hs[-1], tmp_path / "lstm.onnx")
    monkeypatch.setattr(raise_recurrent, "TOLERANCE", -1.0)  # nothing can agree: every raise is refused
    graph = compiled_graph(path)
    assert not recurrent_nodes(graph) and graph.ops().count("Sigmoid") == 3 * T - 1  # step 0: f * 0 folded
    assert_matches_onnxruntime(path, graph)


@pytest.mark.parametrize("form", ["clip", "minmax"])
def test_cell_and_projection_clips_are_read(tmp_path, form):
    u = Unrolled()
    hs, _ = lstm_layer(u, [f"x{t}" for t in range(T)], folded_step0=True, peepholes=True, projection=3, clip=form)
    path = u.model(hs[-1], tmp_path / "clipped.onnx")
    graph = compiled_graph(path)
    (lstm,) = recurrent_nodes(graph)
    assert (lstm.attrs["cell_clip"], lstm.attrs["proj_clip"]) == (pytest.approx(0.8), pytest.approx(0.5))
    assert not {"Clip", "Max", "Min", "Sigmoid"} & set(graph.ops())
    assert_matches_onnxruntime(path, graph)


def test_an_asymmetric_cell_clip_stays_plain_ops(tmp_path):
    """The canonical cell clip is symmetric: a clip to [-0.8, 0.5] is no LSTM the op can express."""
    u = Unrolled()
    hs, _ = lstm_layer(u, [f"x{t}" for t in range(T)], folded_step0=True, clip="clip")
    u.inits["lo0.8"] = np.asarray(-0.5, np.float32)
    path = u.model(hs[-1], tmp_path / "asymmetric.onnx")
    graph = compiled_graph(path)
    assert not recurrent_nodes(graph)
    assert_matches_onnxruntime(path, graph)


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_reset_after"])
def test_states_reshaped_between_steps(tmp_path, cell):
    u = Unrolled()
    frames = [f"x{t}" for t in range(T)]
    if cell == "lstm":
        hs, _ = lstm_layer(u, frames, reshape_state=True, peepholes=True)
    else:
        hs = gru_layer(u, frames, reset_after=cell == "gru_reset_after", reshape_state=True)
    path = u.model(hs[-1], tmp_path / "reshaped.onnx")
    graph = compiled_graph(path)
    (node,) = recurrent_nodes(graph)
    assert node.attrs["output"] == "last" and "Sigmoid" not in graph.ops()
    assert_matches_onnxruntime(path, graph)


def test_a_stack_of_every_step_reads_the_sequence_output(tmp_path):
    """TF's stack of the step outputs (Unsqueeze + Concat here, PACK in TFLite) into [1, T, H]: the
    raised node's sequence output, reshaped, with no per-step Crop left."""
    u = Unrolled()
    hs = gru_layer(u, [f"x{t}" for t in range(T)], reset_after=True, folded_step0=True)
    u.inits["axes"], u.inits["flat_shape"] = np.array([1], np.int64), np.array([1, T * H], np.int64)
    frames = [u.node("Unsqueeze", [h, "axes"], f"h{t}_3d") for t, h in enumerate(hs)]
    seq = u.node("Concat", frames, "stack", axis=1)
    flat = u.node("Reshape", [seq, "flat_shape"], "flat")
    u.nodes.append(helper.make_node("Gemm", [flat, u.weights("fc_w", T * H, CLASSES), u.weights("fc_b", CLASSES)],
                                    ["y"], name="head"))
    path = save(make_model(u.nodes, {"x": [1, T, F]}, {"y": [1, CLASSES]}, u.inits), tmp_path, "stack.onnx")
    graph = compiled_graph(path)
    (gru,) = recurrent_nodes(graph)
    assert gru.attrs["output"] == "sequence"
    assert not {"Crop", "Concat"} & set(graph.ops()), graph.ops()
    assert_matches_onnxruntime(path, graph)
