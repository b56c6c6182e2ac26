"""Small ONNX models built in code for the quantization-quality tests."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from onnx import helper

from tests.models_util import make_model, save


def _mlp(rng) -> tuple:
    w1 = rng.normal(0, 0.3, (20, 16)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (16, 12)).astype(np.float32)
    w3 = rng.normal(0, 0.3, (12, 5)).astype(np.float32)
    b1, b2, b3 = (rng.normal(0, 0.2, n).astype(np.float32) for n in (16, 12, 5))
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"]), helper.make_node("Relu", ["h1"], ["r1"]),
             helper.make_node("Gemm", ["r1", "w2", "b2"], ["h2"]), helper.make_node("Relu", ["h2"], ["r2"]),
             helper.make_node("Gemm", ["r2", "w3", "b3"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["y"], axis=1)]
    inits = {"w1": w1, "w2": w2, "w3": w3, "b1": b1, "b2": b2, "b3": b3}
    return make_model(nodes, {"x": [1, 20]}, ["y"], inits)


def _convnet(rng) -> tuple:
    """conv 3x3 valid + relu -> conv 1x1 + relu -> depthwise 3x3 padded + relu -> conv 3x3 padded
    -> global avg pool -> flatten -> gemm -> softmax (NCHW)."""
    c = 6
    inits = {
        "wa": rng.normal(0, 0.4, (c, 1, 3, 3)), "ba": rng.normal(0, 0.1, c),
        "wb": rng.normal(0, 0.4, (c, c, 1, 1)), "bb": rng.normal(0, 0.1, c),
        "wd": rng.normal(0, 0.4, (c, 1, 3, 3)), "bd": rng.normal(0, 0.1, c),
        "wc": rng.normal(0, 0.3, (c, c, 3, 3)), "bc": rng.normal(0, 0.1, c),
        "wf": rng.normal(0, 0.4, (c, 4)), "bf": rng.normal(0, 0.1, 4),
        "shape": np.array([1, c], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["a"], ["ar"]),
        helper.make_node("Conv", ["ar", "wb", "bb"], ["b"], kernel_shape=[1, 1]),
        helper.make_node("Relu", ["b"], ["br"]),
        helper.make_node("Conv", ["br", "wd", "bd"], ["d"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=c),
        helper.make_node("Relu", ["d"], ["dr"]),
        helper.make_node("Conv", ["dr", "wc", "bc"], ["e"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["e"], ["er"]),
        helper.make_node("GlobalAveragePool", ["er"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    inits = {k: (v.astype(np.float32) if v.dtype != np.int64 else v) for k, v in inits.items()}
    return make_model(nodes, {"x": [1, 1, 10, 8]}, ["y"], inits)


@pytest.fixture(scope="session")
def small_models(tmp_path_factory):
    """{name: (model path, npz path)}: npz has calib (300), test (200) and labels test_y (argmax of float)."""
    import onnxruntime as ort

    base = tmp_path_factory.mktemp("qq_models")
    rng = np.random.default_rng(7)
    out = {}
    for name, build, shape in (("mlp", _mlp, (20,)), ("convnet", _convnet, (1, 10, 8))):
        model = build(rng)
        path = save(model, base, f"{name}.onnx")
        calib = rng.normal(0, 1, (300,) + shape).astype(np.float32)
        test = rng.normal(0, 1, (200,) + shape).astype(np.float32)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        labels = np.array([int(np.argmax(sess.run(None, {"x": t[None]})[0])) for t in test], np.int64)
        split = np.array(["a", "b"] * 100)
        npz = base / f"{name}.npz"
        np.savez(npz, calib=calib, test=test, test_y=labels, test_split=split)
        out[name] = (path, npz)
    return out


@pytest.fixture(scope="session")
def have_cc():
    if shutil.which("cc") is None:
        pytest.skip("no host C compiler 'cc'")
