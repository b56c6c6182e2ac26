"""The ONNX backend node tests for the ops kwscc reads, through the kwscc frontend and run_float.

onnx >= 1.16 no longer ships the node test data as .pb files: `load_model_tests(kind="node")` builds the
cases in memory (a ModelProto plus `data_sets` of (inputs, expected outputs)) from onnx.backend.test.case.node.
That is the same data the .pb files held, so it is used directly.

Every case whose nodes are all ONNX ops kwscc maps (kwscc.frontends.onnx_reader.ONNX_OPS) is run in up to
two variants:
  - "as given": the model unchanged, except that a model stamped with an opset above kwscc's maximum is
    re-stamped to that maximum when, for every node, the op's schema at the two opsets has the same inputs,
    outputs and attributes (newer opsets mostly only added element types such as bfloat16 or int4);
  - "const": every graph input but the first becomes an initializer holding the case's data (weights, bias,
    clip bounds, shapes, axes...), which is how a deployable model carries them.
Each variant must either reproduce the expected outputs (rtol 1e-4, atol 1e-5) or raise a kwscc
UnsupportedError / ModelError. Any other exception, or a wrong result, fails the test.
"""
from __future__ import annotations

import collections
import functools
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import defs, numpy_helper

from kwscc.check.limits import LimitError
from kwscc.errors import KwsccError, ModelError, UnsupportedError
from kwscc.frontends import read_model
from kwscc.frontends.onnx_reader import MAX_OPSET, ONNX_OPS
from kwscc.ir.execute import run_float

RTOL, ATOL = 1e-4, 1e-5


def _load_cases():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the case generators overflow casts on purpose
        from onnx.backend.test.loader import load_model_tests

        cases = load_model_tests(kind="node")
    selected = {}
    for case in cases:
        ops = {n.op_type for n in case.model.graph.node}
        if ops and ops <= set(ONNX_OPS) and all(n.domain in ("", "ai.onnx") for n in case.model.graph.node):
            selected[case.name] = case
    return selected


CASES = _load_cases()


def _opset(model) -> int:
    return {o.domain: o.version for o in model.opset_import}.get("", 0)


def _same_schema(op: str, a: int, b: int) -> bool:
    try:
        sa, sb = defs.get_schema(op, a), defs.get_schema(op, b)
    except defs.SchemaError:
        return False
    return (
        sorted(sa.attributes) == sorted(sb.attributes)
        and [i.name for i in sa.inputs] == [i.name for i in sb.inputs]
        and [o.name for o in sa.outputs] == [o.name for o in sb.outputs]
    )


def _restamp(model: onnx.ModelProto) -> None:
    opset = _opset(model)
    if opset > MAX_OPSET and all(_same_schema(n.op_type, opset, MAX_OPSET) for n in model.graph.node):
        for o in model.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = MAX_OPSET


def _as_initializer(value, name: str) -> onnx.TensorProto:
    if isinstance(value, onnx.TensorProto):
        t = onnx.TensorProto()
        t.CopyFrom(value)
        t.name = name
        return t
    return numpy_helper.from_array(np.asarray(value), name)


def variants():
    out = []
    for name, case in CASES.items():
        out.append((name, "as_given"))
        if len(case.model.graph.input) > 1:
            out.append((name, "const"))
    return out


VARIANTS = variants()


@dataclass
class Outcome:
    kind: str  # "ok", "error" (kwscc error), "crash" (other exception), "mismatch"
    detail: str = ""
    exc_type: type | None = None


@functools.lru_cache(maxsize=None)
def outcome(name: str, variant: str, tmp_dir: str) -> Outcome:
    case = CASES[name]
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    _restamp(model)
    input_names = [vi.name for vi in model.graph.input]
    if variant == "const":
        data = dict(zip(input_names, case.data_sets[0][0]))
        for vi in list(model.graph.input)[1:]:
            model.graph.initializer.append(_as_initializer(data[vi.name], vi.name))
            model.graph.input.remove(vi)
    path = f"{tmp_dir}/{name}_{variant}.onnx"
    onnx.save(model, path)
    try:
        graph = read_model(path)
        graph.verify()
        for inputs, expected in case.data_sets:
            feeds = dict(zip(input_names, inputs))
            feeds = {k: feeds[k] for k in graph.inputs}
            values = run_float(graph, feeds)
            assert len(graph.outputs) == len(expected)
            for out_name, exp in zip(graph.outputs, expected):
                got = values[out_name]
                if np.shape(got) != np.shape(exp):
                    return Outcome("mismatch", f"{out_name}: shape {np.shape(got)} != expected {np.shape(exp)}")
                np.testing.assert_allclose(got, exp, rtol=RTOL, atol=ATOL, err_msg=out_name)
    except KwsccError as exc:
        return Outcome("error", str(exc), type(exc))
    except AssertionError as exc:
        return Outcome("mismatch", str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded and reported by the test
        return Outcome("crash", f"{type(exc).__name__}: {exc}", type(exc))
    return Outcome("ok")


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("onnx_node_tests"))


@pytest.mark.parametrize("name, variant", VARIANTS, ids=[f"{n}[{v}]" for n, v in VARIANTS])
def test_node_case(name, variant, tmp_dir):
    result = outcome(name, variant, tmp_dir)
    assert result.kind != "crash", f"not a kwscc error: {result.detail}"
    assert result.kind != "mismatch", f"wrong result: {result.detail}"
    if result.kind == "error":
        assert result.exc_type in (UnsupportedError, ModelError, LimitError), result.exc_type
        assert result.detail, "an error without a message"


# Cases kwscc must compute (const = the parameters as initializers), by op.
MUST_PASS = {
    "Conv": ["test_basic_conv_with_padding[const]", "test_basic_conv_without_padding[const]",
             "test_conv_with_strides_padding[const]", "test_conv_with_strides_no_padding[const]",
             "test_conv_with_strides_and_asymmetric_padding[const]", "test_conv_with_autopad_same[const]"],
    "Gemm": ["test_gemm_default_no_bias[const]", "test_gemm_default_scalar_bias[const]",
             "test_gemm_default_single_elem_vector_bias[const]", "test_gemm_default_vector_bias[const]",
             "test_gemm_default_zero_bias[const]", "test_gemm_transposeB[const]", "test_gemm_alpha[const]",
             "test_gemm_beta[const]"],
    "MatMul": ["test_matmul_2d[const]"],
    "BatchNormalization": ["test_batchnorm_example[const]", "test_batchnorm_epsilon[const]"],
    "Relu": ["test_relu[as_given]"],
    "Clip": ["test_clip[const]", "test_clip_example[const]", "test_clip_default_min[const]",
             "test_clip_default_max[const]", "test_clip_default_inbounds[as_given]"],
    "MaxPool": ["test_maxpool_2d_default[as_given]", "test_maxpool_2d_pads[as_given]",
                "test_maxpool_2d_strides[as_given]", "test_maxpool_2d_same_upper[as_given]",
                "test_maxpool_2d_same_lower[as_given]", "test_maxpool_2d_precomputed_pads[as_given]"],
    "AveragePool": ["test_averagepool_2d_default[as_given]", "test_averagepool_2d_pads[as_given]",
                    "test_averagepool_2d_strides[as_given]", "test_averagepool_2d_same_upper[as_given]",
                    "test_averagepool_2d_same_lower[as_given]", "test_averagepool_2d_precomputed_same_upper[as_given]"],
    "GlobalAveragePool": ["test_globalaveragepool[as_given]", "test_globalaveragepool_precomputed[as_given]"],
    "Flatten": ["test_flatten_axis0[as_given]", "test_flatten_axis1[as_given]", "test_flatten_default_axis[as_given]",
                "test_flatten_negative_axis1[as_given]"],
    "Reshape": ["test_reshape_reordered_all_dims[const]", "test_reshape_negative_dim[const]",
                "test_reshape_zero_dim[const]", "test_reshape_zero_and_negative_dim[const]"],
    "Squeeze": ["test_squeeze[const]", "test_squeeze_negative_axes[const]"],
    "Unsqueeze": ["test_unsqueeze_axis_0[const]", "test_unsqueeze_two_axes[const]",
                  "test_unsqueeze_unsorted_axes[const]", "test_unsqueeze_negative_axes[const]"],
    "Transpose": ["test_transpose_default[as_given]", "test_transpose_all_permutations_0[as_given]",
                  "test_transpose_all_permutations_5[as_given]"],
    "Softmax": ["test_softmax_example[as_given]", "test_softmax_large_number[as_given]",
                "test_softmax_default_axis[as_given]", "test_softmax_negative_axis[as_given]"],
    "Identity": ["test_identity[as_given]"],
    "Dropout": ["test_dropout_default[as_given]", "test_dropout_default_ratio[const]", "test_dropout_default_old[as_given]"],
    "Add": ["test_add[const]", "test_add_bcast[const]"],
    "Sub": ["test_sub[const]", "test_sub_bcast[const]"],
    "Mul": ["test_mul[const]", "test_mul_bcast[const]"],
    "Div": ["test_div[const]", "test_div_bcast[const]"],
    "Shape": ["test_shape[as_given]", "test_shape_example[as_given]", "test_shape_start_1[as_given]",
              "test_shape_end_1[as_given]", "test_shape_start_1_end_negative_1[as_given]"],
    "Gather": ["test_gather_0[const]"],
    "Concat": ["test_concat_2d_axis_1[const]"],
    "Sigmoid": ["test_sigmoid[as_given]", "test_sigmoid_example[as_given]"],
    "Tanh": ["test_tanh[as_given]", "test_tanh_example[as_given]"],
    "HardSigmoid": ["test_hardsigmoid[as_given]", "test_hardsigmoid_example[as_given]",
                    "test_hardsigmoid_default[as_given]"],
    "HardSwish": ["test_hardswish[as_given]", "test_hardswish_expanded[as_given]"],
    "LeakyRelu": ["test_leakyrelu[as_given]", "test_leakyrelu_example[as_given]", "test_leakyrelu_default[as_given]"],
    "PRelu": ["test_prelu_example[const]", "test_prelu_broadcast[const]"],
    "Split": ["test_split_equal_parts_2d_opset13[as_given]", "test_split_variable_parts_2d_opset13[const]",
              "test_split_equal_parts_default_axis_opset18[as_given]", "test_split_2d_uneven_split_opset18[as_given]"],
    "Pad": ["test_constant_pad[const]", "test_constant_pad_axes[const]", "test_constant_pad_negative_axes[const]"],
}

# Cases kwscc legitimately rejects, with a piece of the message that must explain why.
MUST_REJECT = {
    "test_add_int8[const]": "not float32",
    "test_batchnorm_example_training_mode[const]": "training_mode=1",
    "test_batchnorm_example[as_given]": "must be a constant",
    "test_basic_conv_with_padding[as_given]": "must be a constant",
    "test_gemm_transposeA[const]": "transA=1",
    "test_matmul_3d[const]": "only rank 2 is supported",
    "test_constant[as_given]": "the model computes a constant",
    "test_maxpool_1d_default[as_given]": "rank 3",
    "test_maxpool_3d_default[as_given]": "rank 5",
    "test_averagepool_2d_pads_count_include_pad[as_given]": "count_include_pad",
    "test_maxpool_2d_ceil[as_given]": "ceil_mode",
    "test_maxpool_2d_dilations[as_given]": "dilated",
    "test_maxpool_with_argmax_2d_precomputed_pads[as_given]": "indices output",
    "test_softmax_axis_0[as_given]": "Softmax",
    "test_reduce_mean_keepdims_example[const]": "spatial axes",
    "test_prelu_example[as_given]": "slope ('slope') must be a constant",
    "test_training_dropout[const]": "training",
    "test_training_dropout_default[const]": "training",
}


def test_must_pass_cases(tmp_dir):
    missing = [c for cases in MUST_PASS.values() for c in cases if (c.split("[")[0], c.split("[")[1][:-1]) not in VARIANTS]
    assert not missing, f"node tests not found in this onnx version: {missing}"
    failed = {}
    for op, cases in MUST_PASS.items():
        for c in cases:
            name, variant = c.split("[")[0], c.split("[")[1][:-1]
            result = outcome(name, variant, tmp_dir)
            if result.kind != "ok":
                failed[c] = f"{result.kind}: {result.detail[:200]}"
    assert not failed, "\n".join(f"{k}: {v}" for k, v in failed.items())


def test_must_reject_cases(tmp_dir):
    wrong = {}
    for c, reason in MUST_REJECT.items():
        name, variant = c.split("[")[0], c.split("[")[1][:-1]
        result = outcome(name, variant, tmp_dir)
        if result.kind != "error" or reason not in result.detail:
            wrong[c] = f"{result.kind}: {result.detail[:200]}"
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in wrong.items())


def test_summary(tmp_dir, capsys):
    counts = collections.Counter()
    per_op = collections.defaultdict(collections.Counter)
    for name, variant in VARIANTS:
        result = outcome(name, variant, tmp_dir)
        counts[result.kind] += 1
        for op in {n.op_type for n in CASES[name].model.graph.node}:
            per_op[op][result.kind] += 1
    with capsys.disabled():
        print(f"\nONNX node tests: {len(CASES)} cases, {len(VARIANTS)} variants: "
              f"{counts['ok']} ran and matched, {counts['error']} raised a clear kwscc error, "
              f"{counts['mismatch']} wrong results, {counts['crash']} other exceptions")
        for op in sorted(per_op):
            c = per_op[op]
            print(f"  {op:20s} ok {c['ok']:3d}  error {c['error']:3d}  mismatch {c['mismatch']:2d}  crash {c['crash']:2d}")
    # every op in the brief is numerically checked by at least one case
    for op in MUST_PASS:
        assert per_op[op]["ok"] >= 1, f"no node test of {op} ran"
    assert counts["ok"] >= 140
