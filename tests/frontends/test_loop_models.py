"""Real converter loops (examples/kws/recurrent): ML-KWS GRU_S as a TFLite WHILE loop and LSTM_S as
tf2onnx's Scan import unrolled, compute what LiteRT / onnxruntime compute, keep their weights once,
and the pipeline raises each into one recurrent node."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kwscc.frontends import read_model, reference_runner
from kwscc.ir.execute import run_float
from kwscc.passes import run_pipeline

RECURRENT = Path(__file__).resolve().parents[2] / "examples" / "kws" / "recurrent"
CLIPS = np.load(RECURRENT.parent / "kws_synth.npz")["test_x250"][:3].astype(np.float32)


@pytest.mark.parametrize("name,steps,cell", [("gru_s.tflite", 25, "GRU"), ("lstm_s.onnx", 25, "LSTM")])
def test_loop_model_unrolls_and_matches_its_runtime(name, steps, cell):
    path = RECURRENT / name
    graph = read_model(path)
    assert graph.ops().count("Crop") >= steps and "Scan" not in graph.ops()
    weights = sum(t.data.nbytes for t in graph.tensors.values() if t.is_const)
    assert weights < 1.05 * path.stat().st_size, "the body's weights must not be copied per step"
    ref = reference_runner(path, [])({graph.inputs[0]: CLIPS})[graph.outputs[0]]
    own = run_float(graph, {graph.inputs[0]: CLIPS})[graph.outputs[0]]
    np.testing.assert_allclose(own.reshape(ref.shape), ref, atol=1e-5)
    raised = run_pipeline(graph)
    assert raised.ops().count(cell) == 1
    again = run_float(raised, {raised.inputs[0]: CLIPS})[raised.outputs[0]]
    np.testing.assert_allclose(again.reshape(ref.shape), ref, atol=1e-5)
