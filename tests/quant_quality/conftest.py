"""Small ONNX models built in code for the quantization-quality tests."""
from __future__ import annotations

import shutil
from pathlib import Path

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


MNIST = Path(__file__).resolve().parents[2] / "examples" / "mnist"
FILTERS = 8


def _features(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """relu(conv 5x5 stride 2) of NCHW images, flattened channels-first (what ONNX Flatten gives)."""
    patches = np.lib.stride_tricks.sliding_window_view(x[:, 0], (5, 5), axis=(1, 2))[:, ::2, ::2]  # N,12,12,5,5
    y = np.einsum("nhwij,cij->nchw", patches, w[:, 0]) + b[None, :, None, None]
    return np.maximum(y, 0).reshape(len(x), -1)


@pytest.fixture(scope="module")
def conv_flatten_dense(tmp_path_factory):
    """An NCHW conv 8@5x5/2 + ReLU -> Flatten (8x12x12) -> Gemm 10 -> Softmax digit classifier: fixed
    random filters, the dense layer fitted by ridge regression on the MNIST training images (~90 %)."""
    data = np.load(MNIST / "mnist.npz")
    x = data["all_x"].transpose(0, 3, 1, 2)  # NHWC -> NCHW (one channel: same bytes)
    train = data["all_split"] == "train"
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.3, (FILTERS, 1, 5, 5)).astype(np.float32)
    b = rng.normal(0, 0.1, FILTERS).astype(np.float32)
    f = _features(x[train], w, b).astype(np.float64)
    onehot = np.eye(10)[data["all_y"][train]]
    mean = f.mean(axis=0)
    wd = np.linalg.solve((f - mean).T @ (f - mean) + 10.0 * np.eye(f.shape[1]), (f - mean).T @ onehot)
    bd = onehot.mean(axis=0) - mean @ wd
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[5, 5], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["flat"]),
             helper.make_node("Gemm", ["flat", "wd", "bd"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["y"], axis=1)]
    inits = {"w": w, "b": b, "wd": wd.astype(np.float32), "bd": bd.astype(np.float32)}
    base = tmp_path_factory.mktemp("provenance")
    path = save(make_model(nodes, {"x": [1, 1, 28, 28]}, ["y"], inits), base, "conv_flatten_dense.onnx")
    npz = base / "digits.npz"
    np.savez(npz, calib=data["calib_x"].transpose(0, 3, 1, 2), test=data["test_x"].transpose(0, 3, 1, 2),
             test_y=data["test_y"])
    return path, npz
