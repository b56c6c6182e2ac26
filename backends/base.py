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


# why a node no backend lowers is still in the graph after the passes
LEFTOVER_MESSAGES = {
    "Transpose": "a Transpose that moves data is not supported (only transposes that cancel out or move size-1 axes)",
    "Relu": "Relu/Clip must directly follow a Conv, Gemm/MatMul or pool whose output nothing else reads",
    "Clip": "Relu/Clip must directly follow a Conv, Gemm/MatMul or pool whose output nothing else reads",
    "BatchNormalization": "BatchNormalization must directly follow a Conv or Gemm (it is folded into its weights)",
    "Identity": "Identity as a model output is not supported",
}
ELEMENTWISE_MESSAGE = ("of non-constant tensors is not supported (only Mul/Add/Sub/Div by per-channel constants "
                       "after a Conv or Gemm, which fold into it)")


def check_constraints(graph: Graph, constraints: dict) -> None:
    """Raise UnsupportedError naming the first node whose op has no entry in `constraints`
    ({op: (constraint functions)}) or that fails one; a constraint's docstring is the message."""
    from kwscc.errors import UnsupportedError

    for node in graph.nodes():
        if node.op not in constraints:
            reason = LEFTOVER_MESSAGES.get(node.op, f"{node.op} {ELEMENTWISE_MESSAGE}")
            raise UnsupportedError(f"{_user_node(graph, node)}: {reason}")
        for constraint in constraints[node.op]:
            if not constraint(graph, node):
                raise UnsupportedError(f"{_user_node(graph, node)}: {constraint.__doc__}")


def _user_node(graph: Graph, node) -> str:
    """The node as the user wrote it: its name and the op type of the model file (a Gemm, not kwscc's
    Dense); a Transpose kwscc added for a layout change names the node it is for."""
    if "layout_for" in node.attrs:
        name, op = node.attrs["layout_for"]
        return f"node '{name}' ({graph.node_sources.get(name, op)}): the NCHW/NHWC Transpose kwscc adds next to it"
    return f"node '{node.name}' ({graph.node_sources.get(node.name, node.op)})"


def tensor_pointer(plan: MemoryPlan, tensor: str) -> str:
    """C expression for a tensor's bytes: the caller's input/output buffer or an arena offset."""
    from kwscc.memory.planner import INPUT, OUTPUT

    where, offset = plan.location(tensor)
    return {INPUT: "input", OUTPUT: "output"}.get(where, f"(arena + {offset})")


def render_model(template_dir: str, name: str, view: dict) -> dict[str, str]:
    """NAME.h and NAME.c from a backend's template folder."""
    from kwscc.codegen import environment

    env = environment()
    return {f"{name}.{ext}": env.get_template(f"{template_dir}/model.{ext}.j2").render(view) for ext in ("h", "c")}


def read_sources(folder) -> dict[str, str]:
    """{file name: text} of the .c and .h files of a host-kernel folder, in name order."""
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.suffix in (".c", ".h")}


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
    library = ""  # the kernel library the generated C calls
    library_includes: tuple[str, ...] = ("Include",)  # its header folders, relative to its root
    library_table = None  # Path of the symbol table kwscc ships for the release it is tested with (kwscc.kernel_sources)

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

    def scratch(self, calls: list, cpu: str, split: bool = True) -> dict[str, int]:
        """Scratch bytes per node name for `cpu`; split=False: as if the input were not split
        (kwscc.quant.split_input), for the driver's --split-input auto."""
        raise NotImplementedError

    def overlaps(self, calls: list) -> dict[str, int]:
        """Nodes whose output may start `delta` bytes before their dying input (kwscc.memory.planner)."""
        return {}

    def render(self, qm: QuantModel, calls: list, plan: MemoryPlan, name: str, cpu: str, gen: dict) -> dict[str, str]:
        raise NotImplementedError

    def host_files(self, rounding: str) -> dict[str, str]:
        raise NotImplementedError

    def kernel_build(self, cpu: str) -> str:
        """The library's code path on `cpu`: c | dsp | mve (kwscc.kernel_sources.BUILD_COMPILERS)."""
        return "c"

    def open_library(self, directory):
        """The user's checkout of the kernel library at `directory` (kwscc.validate.cmsis_nn.CmsisNN or
        kwscc.validate.cmsis_5.Cmsis5): root, candidate sources, compile flags, version."""
        from kwscc.errors import UnsupportedError

        raise UnsupportedError(f"the {self.name} backend cannot use a library checkout")
