"""Canonical ops: shape inference and a float numpy reference for each, in one registry.

An op module registers an OpDef. `infer` returns the output (shape, dtype) pairs; `run` computes
float outputs from numpy inputs whose leading axis is the batch for activations (constants have
their exact shapes). When every input of a node is constant, inference also computes the values:
this is how shape-computing subgraphs become constants.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from kwscc.ir.graph import Node, Tensor

Shape = tuple[int, ...]
InferFn = Callable[[Node, list[Tensor]], list[tuple[Shape, str]]]
RunFn = Callable[[Node, list[np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True, slots=True)
class OpDef:
    name: str
    infer: InferFn
    run: RunFn


REGISTRY: dict[str, OpDef] = {}


def register(name: str, infer: InferFn, run: RunFn) -> None:
    REGISTRY[name] = OpDef(name, infer, run)


def infer_outputs(node: Node, inputs: list[Tensor]) -> list[Tensor]:
    """Output tensors of `node`, with values when every input is a constant."""
    opdef = REGISTRY[node.op]
    specs = opdef.infer(node, inputs)
    values: list[np.ndarray | None] = [None] * len(specs)
    if node.op == "Shape":  # shapes are static, so Shape is known even on an activation
        values = [np.array(inputs[0].shape[node.attrs.get("start", 0):node.attrs.get("end")], np.int64)]
    elif inputs and all(t.is_const for t in inputs):
        values = list(opdef.run(node, [t.data for t in inputs]))
    out = []
    for name, (shape, dtype), value in zip(node.outputs, specs, values):
        if value is not None:
            value = np.asarray(value)
            shape, dtype = tuple(value.shape), str(value.dtype)
        out.append(Tensor(name, tuple(int(d) for d in shape), dtype, value))
    return out


def same_as_input(node: Node, inputs: list[Tensor]) -> list[tuple[Shape, str]]:
    return [(inputs[0].shape, inputs[0].dtype)]


from kwscc.ops import (  # noqa: E402,F401,I001
    activation, batchnorm, conv, crop, dense, elementwise, pad, pool, recurrent, reshape, shape_ops, softmax,
)
