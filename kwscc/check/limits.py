"""Size limits kwscc enforces before allocating anything (docs/limits.md).

kwscc targets microcontrollers: a tensor of more than MAX_TENSOR_ELEMENTS values, or an arena of
more than MAX_ARENA_BYTES, cannot be meant for one, and refusing it early keeps a malformed shape
from turning into a multi-terabyte allocation on the host.
"""
from __future__ import annotations

import math
from typing import Iterable

from kwscc.errors import ModelError

class LimitError(ModelError):
    """A size beyond kwscc's documented limits."""


MAX_DIM = 1 << 24  # any single dimension
MAX_TENSOR_ELEMENTS = 1 << 24  # any tensor, batch included (16 Mi values; 64 MiB as float)
MAX_ARENA_BYTES = 1 << 28  # the int8 activation arena (256 MiB)
MAX_WEIGHT_MAGNITUDE = float(1 << 24)  # any weight or bias of a Conv/Dense, after folding
MAX_NODES = 1 << 15  # operations of a graph, its loops unrolled (a keyword spotter has tens to a few thousand)
MAX_DATA_ELEMENTS = 1 << 30  # one array of a .npy/.npz data file
MAX_DATA_BYTES = 1 << 32  # one array of a .npy/.npz data file, in bytes (4 GiB)


def check_shape(shape: Iterable[int], what: str) -> tuple[int, ...]:
    """`shape` as ints, each dimension >= 1, within MAX_DIM and MAX_TENSOR_ELEMENTS; else ModelError."""
    dims = tuple(int(d) for d in shape)
    for i, d in enumerate(dims):
        if d < 1:
            raise LimitError(f"{what}: dimension {i} is {d}; every dimension must be at least 1")
        if d > MAX_DIM:
            raise LimitError(f"{what}: dimension {i} is {d}, beyond kwscc's limit of {MAX_DIM} (docs/limits.md)")
    count = math.prod(dims)
    if count > MAX_TENSOR_ELEMENTS:
        raise LimitError(f"{what}: shape {list(dims)} has {count} elements, beyond kwscc's limit of "
                         f"{MAX_TENSOR_ELEMENTS} per tensor (docs/limits.md)")
    return dims


def check_arena(size: int) -> None:
    if size > MAX_ARENA_BYTES:
        raise LimitError(f"the activation arena needs {size} bytes, beyond kwscc's limit of {MAX_ARENA_BYTES} "
                         "(docs/limits.md)")


def check_node_count(count: int, what: str) -> None:
    """Refuse a graph that would hold more than MAX_NODES operations (`what` names where it grows)."""
    if count > MAX_NODES:
        raise LimitError(f"{what}: the graph would hold {count} operations, beyond kwscc's limit of {MAX_NODES} "
                         "(loops are unrolled: steps x the operations of their body count; docs/limits.md)")
