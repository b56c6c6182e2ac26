"""The float reference for ONNX models: onnxruntime, with any intermediate tensor as an output.

Exported models often hard-code batch 1 (in the input shape and in Reshape shapes), so the runner
first tries a copy of the model with a free batch dimension (batch_free_model) and keeps it only if
it computes what the original computes one sample at a time on the first samples; otherwise it runs
the original one sample at a time.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from kwscc.errors import ModelError

log = logging.getLogger(__name__)

BATCH_CHECK_SAMPLES = 2  # samples the batched copy is compared on, one at a time, before it is trusted
MAX_BATCH = 256  # samples per onnxruntime run: bounds the memory of the intermediate tensors


def _with_outputs(model, wanted: list[str]):
    import onnx

    produced = {out for node in model.graph.node for out in node.output}
    present = {o.name for o in model.graph.output}
    for name in wanted:
        if name in produced and name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return model


def _session(model, trial: bool = False):
    """An onnxruntime session keeping every tensor; it logs nothing (failures raise, and onnxruntime's own
    error line would reach the terminal beside kwscc's). A model onnxruntime cannot load runs on onnx's
    reference implementation, except a `trial` one (the batch-free copy, whose failure is expected)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    # idle threads sleep instead of spinning between runs: the same results for a third less CPU time
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime lacks some valid forms (an LSTM/GRU with layout=1)
        if trial:
            raise
        log.info("onnxruntime cannot run the model (%s): onnx's reference implementation is the float reference",
                 str(exc).splitlines()[0][-160:])
        return _ReferenceSession(model)


class _ReferenceSession:
    """onnx.reference.ReferenceEvaluator behind the part of onnxruntime's session interface used here."""

    def __init__(self, model) -> None:
        from onnx.reference import ReferenceEvaluator

        self.names = [o.name for o in model.graph.output]
        self.evaluator = ReferenceEvaluator(model)

    def get_outputs(self):
        return [type("Output", (), {"name": name})() for name in self.names]

    def run(self, names, feeds):
        return self.evaluator.run(names, feeds)


def _refused(model_path: Path, exc: Exception) -> ModelError:
    """onnxruntime's failure on the model itself, as one line."""
    text = " ".join(str(exc).split()).split("Status Message: ")[-1]
    return ModelError(f"{model_path.name}: onnxruntime cannot run the model: {text[:240]}")


def batch_free_model(model):
    """A copy of `model` whose inputs and outputs have a free first dimension and whose Reshape shapes
    (initializers) with a leading 1 take the batch from their input (0, or -1 when no other -1)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for vi in list(graph.input) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    del graph.value_info[:]  # intermediate shapes recorded for batch 1
    inits = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
        shape = numpy_helper.to_array(inits[node.input[1]]).astype(np.int64)
        if shape.ndim != 1 or not shape.size or shape[0] != 1:
            continue
        if -1 not in shape:
            shape[0] = -1
        elif not allowzero:
            shape[0] = 0
        else:
            continue
        name = node.input[1] + "_batch_free"
        if name not in inits:
            inits[name] = numpy_helper.from_array(shape, name)
            graph.initializer.append(inits[name])
        node.input[1] = name
    return model


def reference_runner(model_path: Path, wanted: list[str]):
    """A function feeds -> {tensor: batch of values} running onnxruntime on whole batches where the
    batch-free copy of the model agrees with the original, else one sample at a time."""
    import onnx

    model = _with_outputs(onnx.load(str(model_path)), wanted)
    try:
        single = _session(model)
    except Exception as exc:  # onnxruntime's own types: a model kwscc's checks let through
        raise _refused(model_path, exc) from None
    names = [o.name for o in single.get_outputs()]
    state: dict = {}

    def one_by_one(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        count = next(iter(feeds.values())).shape[0]
        try:
            rows = [single.run(names, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(count)]
        except Exception as exc:
            raise _refused(model_path, exc) from None
        return {name: np.concatenate([row[j] for row in rows]) for j, name in enumerate(names)}

    def batched_or_none(feeds: dict[str, np.ndarray]):
        """The batched copy's values if it matches the original on the first samples, else None."""
        count = next(iter(feeds.values())).shape[0]
        try:
            session = _session(batch_free_model(model), trial=True)
            out = dict(zip(names, session.run(names, feeds)))
        except Exception as exc:  # onnxruntime raises its own types; any failure means: not batchable
            log.info("the model does not run batched (%s): calibrating one sample at a time", str(exc)[:120])
            return None
        check = one_by_one({k: v[:BATCH_CHECK_SAMPLES] for k, v in feeds.items()})
        for name, value in check.items():
            got = out[name]
            if got.shape[:1] != (count,) or got.shape[1:] != value.shape[1:] or not np.allclose(
                    got[:len(value)], value, rtol=1e-4, atol=1e-5 * (1 + float(np.abs(value).max(initial=0)))):
                log.info("the batched model differs from the original at '%s': calibrating one sample at a time",
                         name)
                return None
        state["session"] = session
        return out

    def run_batch(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "session" in state:
            return dict(zip(names, state["session"].run(names, feeds)))
        if "tried" not in state and next(iter(feeds.values())).shape[0] > 1:
            state["tried"] = True
            out = batched_or_none(feeds)
            if out is not None:
                return out
        return one_by_one(feeds)

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        count = next(iter(feeds.values())).shape[0]
        if count <= MAX_BATCH:
            return run_batch(feeds)
        parts = [run_batch({k: v[i:i + MAX_BATCH] for k, v in feeds.items()}) for i in range(0, count, MAX_BATCH)]
        return {name: np.concatenate([p[name] for p in parts]) for name in names}

    return run
