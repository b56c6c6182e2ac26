"""The reference for TFLite models: the LiteRT interpreter (ai-edge-litert) with every intermediate
tensor kept, on its builtin kernels. Float samples go in and float values come out, whatever the
model's types: a quantized input is fed in the model's own (scale, zero point), quantized tensors
are dequantized with theirs. Tensor names are the reader's (kwscc.frontends.tflite_reader).

The builtin kernels (the ones TFLite Micro ports) run op by op, so every tensor can be kept; the
default XNNPACK delegate would fuse ops and hide their tensors (and rounds int8 slightly differently:
ds_cnn_s_int8 agrees with its float model on 97.85 % of the test clips with it, 97.75 % without).
On these models the optimized builtin kernels give the same values as BUILTIN_REF, 7x faster."""
from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np

from kwscc.errors import ModelError
from kwscc.frontends.tflite_reader import ACTIVATION_TYPES, dequantize_values, load, quantize_samples

log = logging.getLogger(__name__)

QUANTIZED_DIMENSION_SLOT = 16  # vtable offset of QuantizationParameters.quantized_dimension (field 6)


def accepted_by_litert(buf: bytes, name: str) -> bytes:
    """The model with every quantized_dimension that lies outside its tensor's rank set to 0.

    TFLite Micro ignores the field where a tensor has one scale; LiteRT refuses the whole model
    ("quantized_dimension must be less than ..."), as real files such as tflite-micro's person_detect
    carry it on 1-D biases. Only this in-memory copy changes, and each fix is logged."""
    import tflite

    fixed = bytearray(buf)
    model = tflite.Model.GetRootAsModel(buf, 0)
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            q = t.Quantization()
            offset = q._tab.Offset(QUANTIZED_DIMENSION_SLOT) if q is not None else 0
            if not offset or 0 <= q.QuantizedDimension() < max(t.ShapeLength(), 1):
                continue
            log.warning("%s: tensor '%s' has quantized_dimension %d on a %d-D tensor, which LiteRT rejects; "
                        "the reference run uses 0 (as TFLite Micro reads it)", name,
                        (t.Name() or b"").decode("utf-8", "replace"), q.QuantizedDimension(), t.ShapeLength())
            struct.pack_into("<i", fixed, q._tab.Pos + offset, 0)
    return bytes(fixed)


def _interpreter(model_path: Path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    content = accepted_by_litert(model_path.read_bytes(), model_path.name)
    try:
        interpreter = Interpreter(model_content=content, experimental_preserve_all_tensors=True,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{model_path.name}: LiteRT cannot run the model: {str(exc).splitlines()[0]}") from None
    return interpreter


def reference_runner(model_path: Path, wanted: list[str]):
    """A function feeds -> {tensor: batch of float values} for every tensor of `wanted` that the model
    has as an activation (and its outputs), running LiteRT one sample at a time."""
    model = load(Path(model_path))
    interpreter = _interpreter(Path(model_path))
    by_name = {t.name: t for t in model.tensors}
    inputs = [model.tensors[i] for i in model.inputs if not model.tensors[i].is_const]
    names = dict.fromkeys(list(wanted) + [model.tensors[i].name for i in model.outputs])
    kept = [by_name[n] for n in names if n in by_name and not by_name[n].is_const
            and by_name[n].type in ACTIVATION_TYPES]

    def feed(t, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape(t.shape)
        return quantize_samples(x, t) if t.type != "FLOAT32" else x

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        count = next(iter(feeds.values())).shape[0]
        rows: dict[str, list[np.ndarray]] = {t.name: [] for t in kept}
        for i in range(count):
            interpreter.reset_all_variables()  # each sample starts from the initial state, as NAME_run does
            for t in inputs:
                interpreter.set_tensor(t.index, feed(t, feeds[t.name][i]))
            interpreter.invoke()
            for t in kept:
                if t.name in feeds:  # an input's value is the sample itself, not its int8 rounding
                    rows[t.name].append(np.asarray(feeds[t.name][i:i + 1], np.float32))
                    continue
                value = dequantize_values(interpreter.get_tensor(t.index), t)
                rows[t.name].append(value if value.ndim and value.shape[0] == 1 else value[None])
        return {name: np.concatenate(values) for name, values in rows.items()}

    return run
