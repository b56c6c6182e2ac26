"""Bad input to the kwscc CLI: one line on stderr starting "kwscc: error:", exit status 2, no traceback,
and nothing half-written (OUT absent afterwards, or unchanged if it existed before).

Degenerate but valid input (all-zero weights, an all-zero calibration tensor, a dynamic batch) must compile.
Most cases call kwscc.cli.main in-process; a few run the installed `kwscc` script to prove no traceback
reaches a user.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kwscc.cli import main
from tests.installed import kwscc_script

ROOT = Path(__file__).resolve().parents[2]
KWS = ROOT / "examples" / "kws"
NPZ = KWS / "kws_synth.npz"
DS_CNN_S = KWS / "ds_cnn_s.onnx"
FEATURES = 10
CLASSES = 4


# ------------------------------------------------------------------------------------------------
# tiny models and data files
# ------------------------------------------------------------------------------------------------

def save_model(path: Path, nodes, inputs, outputs, initializers=(), opset: int = 13, check: bool = True) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def dense_model(path: Path, weights: np.ndarray | None = None, extra_op: str | None = None,
                input_shape=(1, FEATURES)) -> Path:
    """x[1, 10] -> MatMul(w) [-> extra_op] -> Softmax -> y[1, 4]."""
    if weights is None:
        weights = np.random.default_rng(0).standard_normal((FEATURES, CLASSES)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc")]
    last = "h"
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["h"], ["e"], name="odd_node"))
        last = "e"
    nodes.append(helper.make_node("Softmax", [last], ["y"], name="softmax", axis=-1))
    return save_model(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])],
                      [numpy_helper.from_array(weights, "w")])


def lstm_model(path: Path) -> Path:
    hidden, seq = 3, 2
    rng = np.random.default_rng(1)
    w = rng.standard_normal((1, 4 * hidden, FEATURES)).astype(np.float32)
    r = rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32)
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="recurrent_1", hidden_size=hidden)]
    return save_model(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, 1, FEATURES])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [seq, 1, 1, hidden])],
                      [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R")])


def rnn_model(path: Path, direction: str = "forward", every_step_to_dense: bool = False) -> Path:
    """x [1, 6, 5] -> LSTM(3) batch first (layout 1) -> its final state, or its every step through a MatMul."""
    seq, features, hidden, dirs = 6, 5, 3, 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal((dirs, 4 * hidden, features)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal((dirs, 4 * hidden, hidden)).astype(np.float32), "R")]
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["seq", "last"], name="rnn", hidden_size=hidden, layout=1,
                              direction=direction)]
    out, shape = "last", [1, dirs, hidden]
    if every_step_to_dense:
        inits += [numpy_helper.from_array(np.array([1, seq * hidden], np.int64), "flat"),
                  numpy_helper.from_array(rng.standard_normal((seq * hidden, CLASSES)).astype(np.float32), "w")]
        nodes += [helper.make_node("Reshape", ["seq", "flat"], ["steps"], name="flatten"),
                  helper.make_node("MatMul", ["steps", "w"], ["y"], name="classifier")]
        out, shape = "y", [1, CLASSES]
    return save_model(path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, features])],
                      [helper.make_tensor_value_info(out, TensorProto.FLOAT, shape)], inits, opset=14)


def custom_domain_model(path: Path) -> Path:
    nodes = [helper.make_node("Frobnicate", ["x"], ["y"], name="vendor_node", domain="com.example")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, FEATURES])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, FEATURES])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli_inputs")
    rng = np.random.default_rng(2)
    nan_w = rng.standard_normal((FEATURES, CLASSES)).astype(np.float32)
    nan_w[3, 1] = np.nan
    inf_w = rng.standard_normal((FEATURES, CLASSES)).astype(np.float32)
    inf_w[0, 0] = np.inf
    data = rng.standard_normal((40, FEATURES)).astype(np.float32)
    nan_data = data.copy()
    nan_data[7, 3] = np.nan
    inf_data = data.copy()
    inf_data[0, 0] = -np.inf
    np.savez(d / "data.npz", x=data, zeros=np.zeros_like(data), nan=nan_data, inf=inf_data,
             strings=np.full((40, FEATURES), "0.5"), bools=np.ones((40, FEATURES), bool),
             wrong=np.zeros((40, FEATURES + 3), np.float32), empty=np.zeros((0, FEATURES), np.float32),
             labels=rng.integers(0, CLASSES, 40))
    np.save(d / "x.npy", data)
    ds = (d / "ds_cnn_s_truncated.onnx")
    raw = DS_CNN_S.read_bytes()
    ds.write_bytes(raw[: len(raw) // 3])
    (d / "notes.onnx").write_text("this is a text file, not an ONNX model\n" * 20)
    (d / "empty.onnx").write_bytes(b"")
    (d / "model.txt").write_text("a text file with a different suffix\n")
    return {
        "dir": d,
        "ok": dense_model(d / "ok.onnx"),
        "sin": dense_model(d / "sin.onnx", extra_op="Sin"),
        "lstm": lstm_model(d / "lstm.onnx"),
        "rnn": rnn_model(d / "rnn.onnx"),
        "bidirectional": rnn_model(d / "bidirectional.onnx", direction="bidirectional"),
        "rnn_steps_to_dense": rnn_model(d / "rnn_steps_to_dense.onnx", every_step_to_dense=True),
        "vendor": custom_domain_model(d / "vendor.onnx"),
        "dynamic": dense_model(d / "dynamic.onnx", input_shape=(1, "features")),
        "dynamic_batch": dense_model(d / "dynamic_batch.onnx", input_shape=("batch", FEATURES)),
        "nan_w": dense_model(d / "nan_weights.onnx", weights=nan_w),
        "inf_w": dense_model(d / "inf_weights.onnx", weights=inf_w),
        "zero_w": dense_model(d / "zero_weights.onnx", weights=np.zeros((FEATURES, CLASSES), np.float32)),
        "truncated": ds,
        "text": d / "notes.onnx",
        "empty": d / "empty.onnx",
        "txt": d / "model.txt",
        "npz": d / "data.npz",
        "npy": d / "x.npy",
    }


# ------------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------------

def tree(path: Path) -> dict[str, bytes]:
    if not path.exists():
        return {}
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): (b"<dir>" if p.is_dir() else p.read_bytes()) for p in sorted(path.rglob("*"))}


def prepare_out(tmp_path: Path, state: str) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "out"
    if state == "existing":
        out.mkdir()
        (out / "keep.txt").write_text("a file the user had before\n")
        (out / "ok.c").write_text("/* an older ok.c */\n")
    return out, tree(out)


def assert_one_error_line(rc: int, out: str, err: str, *needles: str) -> str:
    assert rc == 2, f"exit status {rc}, stderr: {err!r}"
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    line = lines[0]
    assert line.startswith("kwscc: error: "), line
    assert "internal error" not in line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert out == "", f"nothing should be printed on stdout on an error, got {out!r}"
    return line


def run_main(argv: list, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# case id -> (argv without -o, words the message must contain)
def compile_cases(f: dict[str, Path]) -> dict[str, tuple[list, tuple[str, ...]]]:
    npz = f["npz"]
    return {
        "truncated_onnx": ([f["truncated"], "--calib", f"{NPZ}:calib_x490"], ("ds_cnn_s_truncated.onnx",)),
        "text_file": ([f["text"], "--calib", f"{npz}:x"], ("notes.onnx",)),
        "empty_file": ([f["empty"], "--calib", f"{npz}:x"], ("empty.onnx",)),
        "unknown_suffix": ([f["txt"], "--calib", f"{npz}:x"], ("model.txt",)),
        "missing_model": ([f["dir"] / "no_such_model.onnx", "--calib", f"{npz}:x"], ("no_such_model.onnx",)),
        "unsupported_sin": ([f["sin"], "--calib", f"{npz}:x"], ("odd_node", "Sin")),
        "unsupported_lstm": ([f["lstm"], "--calib", f"{npz}:x"], ("recurrent_1", "LSTM")),
        "custom_domain_op": ([f["vendor"], "--calib", f"{npz}:x"], ("vendor_node", "Frobnicate")),
        "bidirectional_lstm": ([f["bidirectional"], "--calib", f"{npz}:x"], ("node 'rnn'", "'bidirectional'")),
        "streaming_no_recurrent_layer": ([f["ok"], "--calib", f"{npz}:x", "--streaming", "1"],
                                         ("--streaming", "no recurrent layer")),
        "streaming_frames_do_not_divide": ([f["rnn"], "--calib", f"{npz}:x", "--streaming", "4"],
                                           ("--streaming", "4 frames", "6 frames", "'rnn")),
        "streaming_every_step_to_dense": ([f["rnn_steps_to_dense"], "--calib", f"{npz}:x", "--streaming", "2"],
                                          ("--streaming", "every-step output", "'rnn")),
        "streaming_zero_frames": ([f["rnn"], "--calib", f"{npz}:x", "--streaming", "0"],
                                  ("--streaming", "positive number of frames")),
        "dynamic_feature_dim": ([f["dynamic"], "--calib", f"{npz}:x"], ("--input-shape", "'x'")),
        "calib_wrong_shape_ds_cnn_s": ([DS_CNN_S, "--calib", f"{NPZ}:calib_x250"], ("250", "490")),
        "calib_wrong_shape": ([f["ok"], "--calib", f"{npz}:wrong"], ("13",)),
        "calib_strings": ([f["ok"], "--calib", f"{npz}:strings"], ("dtype",)),
        "calib_bools": ([f["ok"], "--calib", f"{npz}:bools"], ("dtype", "bool")),
        "calib_missing_key": ([DS_CNN_S, "--calib", f"{NPZ}:no_such_key"], ("no_such_key",)),
        "calib_missing_file": ([f["ok"], "--calib", f["dir"] / "missing.npz"], ("missing.npz",)),
        "calib_not_numpy": ([f["ok"], "--calib", f["text"]], ("notes.onnx",)),
        "calib_empty": ([f["ok"], "--calib", f"{npz}:empty"], ("no samples",)),
        "nan_weights": ([f["nan_w"], "--calib", f"{npz}:x"], ("'w'", "NaN")),
        "inf_weights": ([f["inf_w"], "--calib", f"{npz}:x"], ("'w'", "Inf")),
        "nan_calibration": ([f["ok"], "--calib", f"{npz}:nan"], ("NaN",)),
        "inf_calibration": ([f["ok"], "--calib", f"{npz}:inf"], ("Inf",)),
        "missing_calib": ([f["ok"]], ("--calib",)),
        "missing_calib_real_model": ([DS_CNN_S], ("--calib",)),
    }


CASE_IDS = list(compile_cases(defaultdict(lambda: Path("placeholder"))))


@pytest.mark.parametrize("state", ["absent", "existing"])
@pytest.mark.parametrize("case", CASE_IDS)
def test_compile_error(case, state, files, tmp_path, capsys):
    argv, needles = compile_cases(files)[case]
    out, before = prepare_out(tmp_path, state)
    rc, stdout, stderr = run_main([*argv, "-o", out, "--with-host-kernels"], capsys)
    assert_one_error_line(rc, stdout, stderr, *needles)
    assert tree(out) == before, "the output directory was created or changed by a failed compile"
    if state == "absent":
        assert not out.exists()


def test_unsupported_op_message_lists_supported_ops(files, tmp_path, capsys):
    rc, out, err = run_main([files["sin"], "--calib", f"{files['npz']}:x", "-o", tmp_path / "o"], capsys)
    line = assert_one_error_line(rc, out, err, "node 'odd_node'", "'Sin'")
    assert "MatMul" in line and "Conv" in line  # tells the user what would work


# ------------------------------------------------------------------------------------------------
# output path problems
# ------------------------------------------------------------------------------------------------

def test_output_is_an_existing_file(files, tmp_path, capsys):
    out = tmp_path / "out.c"
    out.write_text("precious\n")
    rc, stdout, stderr = run_main([files["ok"], "--calib", f"{files['npz']}:x", "-o", out], capsys)
    assert_one_error_line(rc, stdout, stderr, str(out))
    assert out.read_text() == "precious\n"


def test_output_parent_is_a_file(files, tmp_path, capsys):
    """-o FILE/sub where FILE is a regular file: a user error (exit 2, one line), not an internal error."""
    parent = tmp_path / "afile"
    parent.write_text("precious\n")
    rc, stdout, stderr = run_main([files["ok"], "--calib", f"{files['npz']}:x", "-o", parent / "out"], capsys)
    assert_one_error_line(rc, stdout, stderr)
    assert parent.read_text() == "precious\n"


def test_failed_write_leaves_existing_output_unchanged(files, tmp_path, capsys):
    """A write that fails part way (OUT/cmsis_nn_host is a file) must not leave OUT half-updated."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "ok.c").write_text("/* the user's previous ok.c */\n")
    (out / "cmsis_nn_host").write_text("not a directory\n")
    before = tree(out)
    rc, stdout, stderr = run_main([files["ok"], "--calib", f"{files['npz']}:x", "-o", out, "--with-host-kernels"],
                                  capsys)
    assert_one_error_line(rc, stdout, stderr, "cmsis_nn_host")
    assert tree(out) == before, "OUT was partly overwritten by a compile that failed"


# ------------------------------------------------------------------------------------------------
# degenerate but valid input compiles
# ------------------------------------------------------------------------------------------------

def assert_compiled(out: Path, name: str) -> None:
    for rel in (f"{name}.c", f"{name}.h", f"{name}_report.json"):
        assert (out / rel).is_file(), rel
    report = json.loads((out / f"{name}_report.json").read_text())
    assert report["arena_bytes"] >= 0 and report["layers"]


def test_dynamic_dim_compiles_with_input_shape(files, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, stderr = run_main([files["dynamic"], "--calib", f"{files['npz']}:x", "-o", out,
                                   "--input-shape", f"x=1,{FEATURES}"], capsys)
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    assert_compiled(out, "dynamic")
    assert f"#define DYNAMIC_INPUT_SIZE {FEATURES}" in (out / "dynamic.h").read_text()


def test_dynamic_batch_dim_compiles_without_input_shape(files, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, stderr = run_main([files["dynamic_batch"], "--calib", f"{files['npz']}:x", "-o", out], capsys)
    assert rc == 0, stderr
    assert_compiled(out, "dynamic_batch")


def test_input_shape_for_unknown_or_bad_value(files, tmp_path, capsys):
    """A malformed --input-shape is a usage error: exit 2, one line (no usage block), nothing written."""
    out = tmp_path / "out"
    rc, stdout, stderr = run_main([str(files["dynamic"]), "--calib", f"{files['npz']}:x", "-o", str(out),
                                   "--input-shape", "x=1,zero"], capsys)
    assert_one_error_line(rc, stdout, stderr, "--input-shape")
    assert not out.exists()


@pytest.mark.parametrize("model_key,calib_key", [("zero_w", "x"), ("ok", "zeros"), ("zero_w", "zeros")],
                         ids=["zero_weights", "zero_calibration", "zero_both"])
def test_all_zero_compiles_and_validates(model_key, calib_key, files, tmp_path, capsys):
    out = tmp_path / "out"
    model = files[model_key]
    rc, stdout, stderr = run_main([model, "--calib", f"{files['npz']}:{calib_key}", "-o", out,
                                   "--with-host-kernels"], capsys)
    assert rc == 0, stderr
    assert "error" not in stderr
    assert_compiled(out, model.stem)
    # the generated C for the degenerate model also builds and matches the simulator
    result_json = tmp_path / "v.json"
    rc, stdout, stderr = run_main(["validate", model, "--calib", f"{files['npz']}:{calib_key}",
                                   "--data", f"{files['npz']}:x", "--labels", "labels", "--json", result_json], capsys)
    assert rc == 0, stderr
    result = json.loads(result_json.read_text())
    assert result["c_vs_simulator_mismatches"] == 0
    if model_key == "zero_w":  # every class scores the same: the argmax equals the float model's
        assert result["top1_agreement"] == 1.0


def test_npz_named_after_the_input_needs_no_key(files, tmp_path, capsys):
    """An .npz holding an array named after the model input is used without :KEY."""
    rc, _, stderr = run_main([files["ok"], "--calib", files["npz"], "-o", tmp_path / "out"], capsys)
    assert rc == 0, stderr


# ------------------------------------------------------------------------------------------------
# validate and report reject bad input the same way
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["data_wrong_shape", "data_missing_key", "labels_missing", "labels_wrong_count",
                                  "model_truncated"])
def test_validate_errors(case, files, tmp_path, capsys):
    npz = files["npz"]
    base = ["validate", files["ok"], "--calib", f"{npz}:x"]
    argv, needles = {
        "data_wrong_shape": ([*base, "--data", f"{npz}:wrong"], ("shape",)),
        "data_missing_key": ([*base, "--data", f"{npz}:nope"], ("nope",)),
        "labels_missing": ([*base, "--data", f"{npz}:x", "--labels", "no_labels"], ("no_labels",)),
        "labels_wrong_count": ([*base, "--data", f"{npz}:x", "--labels", f"{NPZ}:test50_y"], ("40",)),
        "model_truncated": (["validate", files["truncated"], "--calib", f"{NPZ}:calib_x490",
                             "--data", f"{NPZ}:test50_x490"], ("ds_cnn_s_truncated.onnx",)),
    }[case]
    json_out = tmp_path / "result.json"
    rc, stdout, stderr = run_main([*argv, "--json", json_out], capsys)
    assert_one_error_line(rc, stdout, stderr, *needles)
    assert not json_out.exists()


def test_report_errors(files, tmp_path, capsys):
    json_out = tmp_path / "report.json"
    rc, stdout, stderr = run_main(["report", DS_CNN_S, "--calib", f"{NPZ}:calib_x250", "--json", json_out], capsys)
    assert_one_error_line(rc, stdout, stderr, "250")
    assert not json_out.exists()
    rc, stdout, stderr = run_main(["report", files["ok"], "--json", json_out], capsys)  # no data: sizes only
    assert rc == 0 and stderr == "", stderr
    assert json.loads(json_out.read_text())["formats_provisional"]


# ------------------------------------------------------------------------------------------------
# the installed script: what a user's terminal shows
# ------------------------------------------------------------------------------------------------

def run_script(args: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run([str(kwscc_script()), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize("case", ["truncated_onnx", "unsupported_lstm", "calib_wrong_shape_ds_cnn_s", "nan_weights",
                                  "calib_bools", "missing_calib"])
def test_script_errors_have_no_traceback(case, files, tmp_path):
    argv, needles = compile_cases(files)[case]
    out = tmp_path / "out"
    proc = run_script([*argv, "-o", out], tmp_path)
    assert_one_error_line(proc.returncode, proc.stdout, proc.stderr, *needles)
    assert not out.exists()


def test_script_output_parent_is_a_file_has_no_traceback(files, tmp_path):
    parent = tmp_path / "afile"
    parent.write_text("x\n")
    proc = run_script([files["ok"], "--calib", f"{files['npz']}:x", "-o", parent / "out"], tmp_path)
    assert "Traceback" not in proc.stderr
    assert_one_error_line(proc.returncode, proc.stdout, proc.stderr)


def test_script_compiles_good_input(files, tmp_path):
    proc = run_script([files["ok"], "--calib", f"{files['npz']}:x", "-o", tmp_path / "out"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert_compiled(tmp_path / "out", "ok")
