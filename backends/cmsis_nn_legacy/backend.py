"""The cmsis-nn-legacy backend: the CMSIS_5 5.9.0 q7 API (the one ML-KWS-for-MCU was written for).

Same IR, calibration and memory plan as the cmsis-nn backend; per-tensor power-of-two formats with q7
biases (quantize.py), calls chosen among the q7 functions whose result does not depend on the library's
build (constraints.py, kernels.py), kwscc's own small C kernels where CMSIS_5 has no safe function
(average pooling, clamps, max pooling it cannot do safely, the default softmax), and a bit-exact simulator
(simulate.py). The generated C compiles against CMSIS_5 5.9.0 CMSIS/NN, or kwscc's host implementation
(host/, written with --with-host-kernels to OUT/cmsis_nn_legacy_host/).
"""
from __future__ import annotations

import logging
from pathlib import Path

from kwscc.backends.base import Backend, read_sources, render_model, tensor_pointer
from kwscc.backends.cmsis_nn_legacy import constraints
from kwscc.backends.cmsis_nn_legacy.kernels import LegacyCall, lower
from kwscc.backends.cmsis_nn_legacy.quantize import quantize_legacy
from kwscc.backends.cmsis_nn_legacy.simulate import simulate_legacy
from kwscc.codegen import c_float_literal
from kwscc.errors import UnsupportedError
from kwscc.ir.layout import input_walk
from kwscc.memory.planner import MemoryPlan
from kwscc.naming import c_comment
from kwscc.quant.quantize import QuantModel

log = logging.getLogger(__name__)

HOST_DIR = Path(__file__).parent / "host"
# The q7 functions kwscc emits compute the same on every core (pure C or ARM_MATH_DSP): --cpu changes nothing.
CPUS = ("generic", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
KERNEL_ORDER = ("kwscc_clamp_q7", "kwscc_maxpool_q7_HWC", "kwscc_avepool_q7_HWC", "kwscc_softmax_q7")


class CmsisNNLegacyBackend(Backend):
    name = "cmsis-nn-legacy"
    host_dir_name = "cmsis_nn_legacy_host"
    cpus = CPUS
    library = "CMSIS_5 CMSIS/NN"
    library_includes = ("CMSIS/NN/Include", "CMSIS/DSP/Include", "CMSIS/Core/Include")
    library_table = Path(__file__).parent / "cmsis_5_5.9.0_sources.json"

    def kernel_build(self, cpu: str) -> str:
        from kwscc.backends.cmsis_nn.backend import CPU_BUILDS  # the same cores take the same paths

        return CPU_BUILDS[cpu]

    def open_library(self, directory):
        from kwscc.validate.cmsis_5 import checkout

        return checkout(directory)

    @property
    def softmax(self) -> str:
        return getattr(self.options, "legacy_softmax", None) or "kwscc"

    def check(self, graph) -> None:
        constraints.check(graph)

    def quantize(self, graph, ranges, per_channel: bool, rounding: str) -> QuantModel:
        if rounding != "default":
            raise UnsupportedError(f"--rounding {rounding} is a CMSIS-NN s8 build option; the q7 API rounds one "
                                   "way (floor((acc + 2^(s-1)) / 2^s)): use the default")
        if per_channel:
            log.info("cmsis-nn-legacy: the q7 API has one shift per layer, weights get per-tensor formats")
        return quantize_legacy(graph, ranges, softmax=self.softmax)

    def simulate(self, qm: QuantModel, inputs):
        return simulate_legacy(qm, inputs)

    def lower(self, qm: QuantModel, prefix: str, cpu: str) -> list[LegacyCall]:
        calls = []
        for node in qm.graph.nodes():
            call = lower(qm, node, f"{prefix}_l{len(calls):02d}")
            if call is not None:
                calls.append(call)
        return calls

    def scratch(self, calls: list[LegacyCall], cpu: str, split: bool = True) -> dict[str, int]:
        return {call.node.name: call.scratch["dsp"] for call in calls}  # no split input here

    def render(self, qm: QuantModel, calls: list[LegacyCall], plan: MemoryPlan, name: str, cpu: str,
               gen: dict) -> dict[str, str]:
        """{file name: text} of the generated sources."""
        for call in calls:
            _keep_rgb_inside_arena(qm, call, plan)
        return render_model("cmsis_nn_legacy", name, self._view(qm, calls, plan, name, cpu, gen))

    def host_files(self, rounding: str) -> dict[str, str]:
        """kwscc's host implementation of the q7 functions the generated code calls."""
        return read_sources(HOST_DIR)

    def _view(self, qm, calls, plan, name, cpu, gen) -> dict:
        graph = qm.graph
        in_fmt, out_fmt = qm.input_format, qm.output_format
        used = {k for call in calls for k in call.kernels}
        softmax = [c.params["fn"] for c in calls if c.node.op == "Softmax"]
        return {
            "gen": gen, "name": name, "NAME": name.upper(), "cpu": cpu,
            "calls": [self._call_view(i, call, plan, name) for i, call in enumerate(calls)],
            "kernels": [k for k in KERNEL_ORDER if k in used], "storage": "static ",
            "input_size": graph.tensors[graph.inputs[0]].size, "output_size": graph.tensors[graph.outputs[0]].size,
            "arena_size": plan.arena_size, "input_frac": in_fmt.frac, "output_frac": out_fmt.frac,
            "output_zero_point": out_fmt.zero_point, "softmax": softmax[0] if softmax else None,
            "input_scale_literal": c_float_literal(2.0 ** in_fmt.frac),
            "output_scale_literal": c_float_literal(2.0 ** -out_fmt.frac), "input_walk": input_walk(graph),
        }

    def _call_view(self, index: int, call: LegacyCall, plan: MemoryPlan, name: str) -> dict:
        scratch = plan.scratch(call.node.name)
        return {
            "index": index, "op": call.node.op, "comment": c_comment(f"'{call.node.name}'"),
            "function": call.function, "template": f"cmsis_nn_legacy/{call.template}", "p": call.params,
            "arrays": {a.role: a.suffix for a in call.arrays},
            "array_list": [{"symbol": a.suffix, "ctype": a.ctype, "data": a.values, "role": a.role}
                           for a in call.arrays],
            "input": tensor_pointer(plan, call.node.inputs[0]), "output": tensor_pointer(plan, call.node.outputs[0]),
            "scratch_ptr": f"(arena + {scratch.offset})" if scratch else "NULL", "name": name,
        }


def _keep_rgb_inside_arena(qm: QuantModel, call: LegacyCall, plan: MemoryPlan) -> None:
    """_RGB's DSP path reads one byte past its input: if the input ends the arena, call _basic instead."""
    if call.params["fn"] != "arm_convolve_HWC_q7_RGB":
        return
    where, offset = plan.location(call.node.inputs[0])
    if where == "arena" and offset + qm.graph.tensors[call.node.inputs[0]].size < plan.arena_size:
        return
    call.params["fn"] = "arm_convolve_HWC_q7_basic"
    call.function = call.function.replace("arm_convolve_HWC_q7_RGB", "arm_convolve_HWC_q7_basic")
