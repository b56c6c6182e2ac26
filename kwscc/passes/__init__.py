"""Graph passes, run in the explicit order of DEFAULT_PIPELINE; the graph is verified after each."""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from kwscc.check.graph import check_graph
from kwscc.ir import Graph
from kwscc.passes import (
    broadcast_constants, clip_bounds, fold_batchnorm, fold_constants, fold_pad, fold_zeros, fuse_activation,
    hard_sigmoid, raise_recurrent, remove_identity, simplify_layout, to_nhwc,
)

log = logging.getLogger(__name__)

Pass = Callable[[Graph], bool]

DEFAULT_PIPELINE: list[tuple[str, Pass]] = [
    ("fold_constants", fold_constants.run),
    ("remove_identity", remove_identity.run),
    ("fold_zeros", fold_zeros.run),  # an unrolled loop's first step from a zero state, as converters fold it
    ("clip_bounds", clip_bounds.run),  # Max/Min with a constant bound -> Clip: cell clips, then fusion
    ("hard_sigmoid", hard_sigmoid.run),  # before fuse_activation folds its Clip into the Add
    ("raise_recurrent", raise_recurrent.run),  # before fusion and layout passes change the cells' ops
    ("fold_batchnorm", fold_batchnorm.run),
    ("fuse_activation", fuse_activation.run),  # before the layout change: Relu then sits right after its producer
    ("to_nhwc", to_nhwc.run),
    ("simplify_layout", simplify_layout.run),
    ("fold_pad", fold_pad.run),  # after the layout change: pads are then NHWC like the Conv's
    ("fold_constants", fold_constants.run),
    ("broadcast_constants", broadcast_constants.run),  # last: what no Conv/Dense absorbed reaches the kernels
]


def without_pass(name: str) -> list[tuple[str, Pass]]:
    """DEFAULT_PIPELINE less one pass (e.g. --no-raise-recurrent)."""
    return [(n, fn) for n, fn in DEFAULT_PIPELINE if n != name]


def run_pipeline(graph: Graph, pipeline: list[tuple[str, Pass]] | None = None) -> Graph:
    """Return a transformed copy of `graph` (the caller's graph is left as it was).

    Values folding creates are checked after each pass (check_graph), so numpy's overflow and
    division warnings are silenced here: a NaN or Inf becomes one clear error instead.
    """
    graph = graph.copy()
    graph.verify()
    for name, fn in DEFAULT_PIPELINE if pipeline is None else pipeline:
        with np.errstate(all="ignore"):
            changed = fn(graph)
        graph.remove_unused_tensors()
        graph.verify()
        check_graph(graph, f"after pass {name}")
        log.debug("pass %s: %s", name, "changed" if changed else "no change")
    return graph
