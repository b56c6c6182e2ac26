"""What a backend provides to the driver. One subclass per target API, registered in BACKENDS."""
from __future__ import annotations

import importlib

import numpy as np

from kwscc.ir import Graph
from kwscc.memory.planner import MemoryPlan
from kwscc.quant.quantize import QuantModel, quantize

BACKENDS = {
    "cmsis-nn": "kwscc.backends.cmsis_nn:CmsisNNBackend",
    "cmsis-nn-legacy": "kwscc.backends.cmsis_nn_legacy:CmsisNNLegacyBackend",
}


def get_backend(name: str, options=None) -> Backend:
    """An instance of backend `name`, configured with the CompileOptions (or defaults)."""
    from kwscc.errors import UnsupportedError

    if name not in BACKENDS:
        raise UnsupportedError(f"unknown backend '{name}' (available: {', '.join(sorted(BACKENDS))})")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(options)


class Backend:
    """Interface: check -> quantize -> lower -> (memory plan) -> render, plus its own simulator."""

    name = ""
    host_dir_name = ""
    cpus: tuple[str, ...] = ()

    def __init__(self, options=None) -> None:
        self.options = options  # kwscc.driver.CompileOptions, for backend-specific choices

    def check(self, graph: Graph) -> None:
        """Raise UnsupportedError for the first node this backend cannot emit."""
        raise NotImplementedError

    def quantize(self, graph: Graph, ranges, per_channel: bool, rounding: str) -> QuantModel:
        return quantize(graph, ranges, per_channel=per_channel, rounding=rounding)

    def simulate(self, qm: QuantModel, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """int8 value of every activation tensor, exactly as the emitted C computes it."""
        raise NotImplementedError

    def lower(self, qm: QuantModel, prefix: str, cpu: str) -> list:
        raise NotImplementedError

    def scratch(self, calls: list, cpu: str) -> dict[str, int]:
        raise NotImplementedError

    def render(self, qm: QuantModel, calls: list, plan: MemoryPlan, name: str, cpu: str, gen: dict) -> dict[str, str]:
        raise NotImplementedError

    def host_files(self, rounding: str) -> dict[str, str]:
        raise NotImplementedError
