"""Accuracy of the default quantization on the shipped models (kwscc's simulator, which the C matches
bit for bit: tests/e2e and test_refine check that). The KWS threshold is the issue's anchor, TensorFlow's
own affine int8 quantization of the same model on the same clips, for all four models; the margins of
the measured values over it are in docs/quantization.md."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from tests.e2e import kws_shared as kws

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "examples" / "mnist"

# TFLite int8 anchor: top-1 agreement of *_int8.tflite with its float model on the 2000 test clips
ANCHOR = {"dnn_s": 0.9605, "cnn_s": 0.9845, "ds_cnn_s": 0.9785, "ds_cnn_m": 0.966}


def _agreement(compiled, spec: str, reference: np.ndarray) -> float:
    from kwscc.data import load_inputs

    feeds = load_inputs(spec, compiled.graph)
    out = simulate_float_inputs(compiled.qm, feeds, compiled.backend.simulate)[compiled.graph.outputs[0]]
    return float(np.mean(out.reshape(len(reference), -1).argmax(1) == reference.argmax(1)))


@pytest.mark.parametrize("model", kws.MODELS)
def test_kws_default_agreement_reaches_the_int8_anchor(model):
    compiled = kws.compiled(model)
    reference = kws.kws_arrays()[f"test_out_{model}"]
    agreement = _agreement(compiled, kws.split_spec(model), reference)
    assert agreement >= ANCHOR[model], f"{model}: {agreement:.4f} below the TFLite int8 anchor {ANCHOR[model]}"


def test_mnist_int8_within_0p3_points_of_float():
    compiled = compile_model(MNIST / "mnist_cnn.onnx", CompileOptions(calib=f"{MNIST / 'mnist.npz'}:calib_x"))
    from kwscc.data import load_inputs
    from kwscc.ir.execute import run_float

    data = np.load(MNIST / "mnist.npz")
    labels = data["test_y"]
    feeds = load_inputs(f"{MNIST / 'mnist.npz'}:test_x", compiled.graph)
    q = simulate_float_inputs(compiled.qm, feeds)[compiled.graph.outputs[0]].reshape(len(labels), -1)
    f = run_float(compiled.graph, feeds)[compiled.graph.outputs[0]].reshape(len(labels), -1)
    float_acc, q_acc = np.mean(f.argmax(1) == labels), np.mean(q.argmax(1) == labels)
    assert float_acc == pytest.approx(0.983, abs=1e-9)
    assert abs(q_acc - float_acc) <= 0.003, (float_acc, q_acc)


def test_mnist_sweep_degrades_like_the_seed_study():
    """kwscc sweep's default rule on the MNIST CNN: float accuracy at 16 and 8 bits, then a monotone loss
    shaped like the seed's (97.38 at 3, 89.40 at 2, 66.25 at 1 bit on its model)."""
    from kwscc.data import load_inputs
    from kwscc.frontends import read_model
    from kwscc.passes import run_pipeline
    from kwscc.quant.sweep import quantize_weights_bits, sweep

    graph = run_pipeline(read_model(MNIST / "mnist_cnn.onnx"))
    feeds = load_inputs(f"{MNIST / 'mnist.npz'}:test_x", graph)
    labels = np.load(MNIST / "mnist.npz")["test_y"]
    rows = sweep(graph, feeds, labels, [16, 8, 3, 2, 1], [])
    acc = {r["value"]: r["accuracy"] for r in rows}
    assert acc[16] == acc[""] and acc[8] >= acc[""] - 0.003
    assert acc[""] - 0.03 <= acc[3] < acc[8]
    assert 0.7 <= acc[2] < acc[3]
    assert 0.5 <= acc[1] < acc[2]
    # the seed's own rule is there too: per tensor, (b - 1) - ceil(log2 max|w|)
    w = np.array([[0.9, -0.3, 0.05], [0.2, 0.1, -0.6]])
    np.testing.assert_array_equal(quantize_weights_bits(w, 3, "max"), np.clip(np.floor(w * 4 + 0.5), -4, 3) / 4)
