"""The float reference for ONNX models: onnxruntime, with any intermediate tensor as an output."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _ort_session(model_path: Path, wanted: list[str]):
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    produced = {out for node in model.graph.node for out in node.output}
    present = {o.name for o in model.graph.output}
    for name in wanted:
        if name in produced and name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def reference_runner(model_path: Path, wanted: list[str]):
    """A function feeds -> {tensor: batch of values} running onnxruntime one sample at a time
    (exported models often hard-code batch 1 in their reshapes)."""
    session = _ort_session(model_path, wanted)
    names = [o.name for o in session.get_outputs()]

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        count = next(iter(feeds.values())).shape[0]
        rows = [session.run(names, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(count)]
        return {name: np.concatenate([row[j] for row in rows]) for j, name in enumerate(names)}

    return run
