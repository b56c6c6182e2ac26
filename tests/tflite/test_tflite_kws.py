"""The real KWS models as .tflite (examples/kws): the float ones compile with their calibration split and
validate against LiteRT like their ONNX twins; TensorFlow's full int8 conversions compile without any
data and are compared with the float models (--reference); a hybrid (int8 weights, float activations)
version of DS_CNN_S made here compiles and validates."""
from __future__ import annotations

import functools
import json

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as S

from kwscc.cli import main
from kwscc.data import load_inputs
from kwscc.driver import CompileOptions, compile_model
from kwscc.quant.simulate import simulate_float_inputs
from kwscc.validate.validate import validate
from tests.e2e import kws_shared as kws
from tfl_builder import quantize_per_channel

KWS, NPZ = kws.KWS, kws.NPZ
# top-1 agreement of the C with LiteRT (float model), as for the ONNX versions
MIN_AGREEMENT = {"cnn_s": 0.92, "ds_cnn_s": 0.92, "ds_cnn_m": 0.92, "dnn_s": 0.90}
# TensorFlow's int8 files against their float models on the test split (examples/kws/README.md)
INT8_ANCHOR = {"dnn_s": 0.9605, "cnn_s": 0.9855, "ds_cnn_s": 0.9775, "ds_cnn_m": 0.969}


def tflite(model: str) -> str:
    return str(KWS / f"{model}.tflite")


@functools.lru_cache(maxsize=None)
def compiled_tflite(model: str):
    return compile_model(tflite(model), CompileOptions(calib=kws.calib_spec(model)))


def simulated_top1(compiled, data: str) -> np.ndarray:
    feeds = load_inputs(data, compiled.graph)
    name = compiled.graph.inputs[0]
    count = feeds[name].shape[0]
    outs = [simulate_float_inputs(compiled.qm, {name: feeds[name][i:i + 500]}, compiled.backend.simulate)
            [compiled.graph.outputs[0]] for i in range(0, count, 500)]
    return np.concatenate(outs).reshape(count, -1).argmax(1)


@pytest.mark.parametrize("model", kws.MODELS)
def test_float_tflite_validates_against_litert(model):
    result = validate(compiled_tflite(model), kws.split_spec(model), "test_y")
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["compared_with"] == "the float model (LiteRT)"
    assert result["top1_agreement"] >= MIN_AGREEMENT[model], result["top1_agreement"]
    published = {"dnn_s": 0.713, "cnn_s": 0.764, "ds_cnn_s": 0.758, "ds_cnn_m": 0.7945}
    assert result["float_accuracy"] == pytest.approx(published[model], abs=1e-9)  # LiteRT = the shipped numbers


@pytest.mark.parametrize("model", kws.MODELS)
def test_onnx_and_tflite_give_the_same_top1(model):
    data = kws.split_spec(model)
    same = np.mean(simulated_top1(compiled_tflite(model), data) == simulated_top1(kws.compiled(model), data))
    assert same >= 0.98, same


def test_tflite_layout_is_left_alone():
    graph = compiled_tflite("ds_cnn_m").graph
    assert "Transpose" not in graph.ops()
    assert all(n.attrs["layout"] == "NHWC" for n in graph.nodes() if "layout" in n.attrs)


@pytest.mark.parametrize("model", kws.MODELS)
def test_int8_tflite_compiles_without_data_and_validates(model):
    compiled = compile_model(KWS / f"{model}_int8.tflite", CompileOptions(calib=None))
    assert compiled.qm.input_format.zero_point != 0  # formats from the model's own (scale, zero point)
    result = validate(compiled, kws.split_spec(model), "test_y", reference=tflite(model))
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["reference_model"] == f"{model}.tflite"
    assert result["compared_with"] == "LiteRT int8"  # top1_agreement is against the int8 model, not a float one
    assert result["model_vs_reference_top1_agreement"] == pytest.approx(INT8_ANCHOR[model], abs=1e-9)
    assert result["top1_agreement"] >= 0.90  # kwscc's power-of-two program against LiteRT's int8
    # ... and against the float model: within 2 points of LiteRT running the same int8 file
    assert result["reference_top1_agreement"] >= INT8_ANCHOR[model] - 0.02


def test_int8_cli_compiles_without_calibration_data(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([tflite("ds_cnn_s_int8"), "-o", str(out)]) == 0
    header = (out / "ds_cnn_s_int8.h").read_text()
    # int8 input scale 0.328, zero point 58 (range [-61.0, 22.6]): step 2^-2, the window centred alike
    assert "#define DS_CNN_S_INT8_INPUT_FRAC_BITS 2" in header
    assert "#define DS_CNN_S_INT8_INPUT_ZERO_POINT (76)" in header


def test_cli_validate_with_reference(tmp_path, capsys):
    report = tmp_path / "result.json"
    argv = ["validate", tflite("ds_cnn_s_int8"), "--calib", kws.calib_spec("ds_cnn_s"),
            "--data", kws.split_spec("ds_cnn_s", "test50"), "--reference", tflite("ds_cnn_s"), "--json", str(report)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "reference model             ds_cnn_s.tflite" in out
    result = json.loads(report.read_text())
    assert result["c_vs_simulator_mismatches"] == 0
    assert 0.0 <= result["reference_top1_agreement"] <= 1.0


def make_hybrid(src, dst) -> None:
    """The float model with int8 per-channel weights (float activations and biases): a hybrid model."""
    m = S.ModelT.InitFromPackedBuf(src.read_bytes(), 0)
    sg = m.subgraphs[0]
    weighted = {S.BuiltinOperator.CONV_2D: 0, S.BuiltinOperator.FULLY_CONNECTED: 0,
                S.BuiltinOperator.DEPTHWISE_CONV_2D: 3}
    for op in sg.operators:
        axis = weighted.get(m.operatorCodes[op.opcodeIndex].builtinCode)
        if axis is None:
            continue
        t = sg.tensors[op.inputs[1]]
        w = np.frombuffer(bytes(m.buffers[t.buffer].data), np.float32).reshape(t.shape)
        q, scale = quantize_per_channel(w, axis)
        m.buffers[t.buffer].data = np.frombuffer(q.tobytes(), np.uint8)
        t.type = S.TensorType.INT8
        t.quantization = S.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [float(s) for s in scale], [0] * scale.size
        t.quantization.quantizedDimension = axis
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    dst.write_bytes(bytes(fb.Output()))


def test_hybrid_ds_cnn_s_compiles_and_validates(tmp_path):
    path = tmp_path / "ds_cnn_s_hybrid.tflite"
    make_hybrid(KWS / "ds_cnn_s.tflite", path)
    compiled = compile_model(path, CompileOptions(calib=kws.calib_spec("ds_cnn_s")))
    assert not compiled.source.recorded_ranges
    result = validate(compiled, kws.split_spec("ds_cnn_s"), "test_y", reference=tflite("ds_cnn_s"))
    assert result["c_vs_simulator_mismatches"] == 0
    assert result["top1_agreement"] >= 0.92  # against LiteRT running the hybrid model
    assert result["reference_top1_agreement"] >= 0.92  # against the float model
