"""Checks of a parsed TFLite model before kwscc reads it: options and tensor types of each operator.

The TFLite reader already refuses what it cannot map; this catches values it would accept silently
(a NaN in an option compares false against every limit) and tensor types that do not agree along an
operator (an int8 model whose types were edited), which LiteRT would reject later in many lines.
"""
from __future__ import annotations

import math

from kwscc.errors import ModelError

QUANTIZED = ("INT8", "UINT8", "INT16")
# operators whose activation input and output may differ in type
CONVERTING = ("QUANTIZE", "DEQUANTIZE", "CAST", "SHAPE", "FILL")  # output type != first input's: SHAPE gives integers, FILL reads them
# weighted operators: activation type -> (allowed filter types, allowed bias types)
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
WEIGHT_TYPES = {
    "FLOAT32": (("FLOAT32", "FLOAT16", "INT8"), ("FLOAT32",)),  # INT8 filters: a hybrid model
    "INT8": (("INT8",), ("INT32",)),
    "UINT8": (("UINT8",), ("INT32",)),
    "INT16": (("INT8",), ("INT64", "INT32")),
}
# option fields that must be finite numbers
FLOAT_OPTIONS = ("Beta", "CellClip", "ProjClip")
# option fields that must also be >= 0 (a clip of 0 means none)
NON_NEGATIVE_OPTIONS = ("CellClip", "ProjClip")


def check_model(model) -> None:
    """`model` is kwscc.frontends.tflite_reader.TflModel; raise ModelError on the first problem."""
    tensors = model.tensors
    for op in model.ops:
        for field in FLOAT_OPTIONS:
            value = op.options.get(field)
            if value is not None and not math.isfinite(float(value)):
                raise ModelError(f"{op.where}: {_snake(field)} is {value} (field {_snake(field)}); it must be finite")
        for field in NON_NEGATIVE_OPTIONS:
            value = op.options.get(field)
            if value is not None and float(value) < 0:
                raise ModelError(f"{op.where}: {_snake(field)} is {value:g} (field {_snake(field)}); it must be >= 0 "
                                 "(0: no clipping)")
        if op.name in CONVERTING or not op.inputs or op.inputs[0] < 0 or not op.outputs:
            continue
        x, y = tensors[op.inputs[0]], tensors[op.outputs[0]]
        if x.is_const:
            continue
        if x.type != y.type:
            raise ModelError(f"{op.where}: input '{x.name}' is {x.type} but output '{y.name}' is {y.type}: "
                             "the tensor types of this operator disagree")
        for t in (x, y):
            if t.type in QUANTIZED and not t.quantized:
                raise ModelError(f"{op.where}: tensor '{t.name}' is {t.type} without quantization parameters "
                                 "(field quantization)")
        if op.name in WEIGHTED and x.type in WEIGHT_TYPES:
            _check_weight_types(op, x.type, [tensors[i] if i >= 0 else None for i in op.inputs[1:3]])


def _snake(field: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in field).lstrip("_")


def _check_weight_types(op, activation: str, weights) -> None:
    for t, allowed, what in zip(weights, WEIGHT_TYPES[activation], ("filter", "bias")):
        if t is not None and t.type not in allowed:
            raise ModelError(f"{op.where}: {what} '{t.name}' is {t.type}, but with {activation} activations it "
                             f"must be {' or '.join(allowed)}")
