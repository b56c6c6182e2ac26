"""The cmsis-nn backend: lowers a quantized graph to CMSIS-NN s8 calls and renders the C files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kwscc.backends.base import Backend, read_sources, render_model, tensor_pointer
from kwscc.backends.cmsis_nn import constraints, kernel_choice, own_kernels
from kwscc.backends.cmsis_nn.kernels import (
    KWSCC_KERNELS, POW2_MULTIPLIER, KernelCall, attach_constants, lower, raster_overlap, share_identical_arrays,
    shared_multiplier_channels,
)
from kwscc.codegen import c_float_literal
from kwscc.ir.layout import input_walk
from kwscc.memory.planner import MemoryPlan
from kwscc.naming import c_comment
from kwscc.quant.quantize import QuantModel
from kwscc.quant.simulate import simulate

# which CMSIS-NN code path (and so which scratch sizes) each --cpu selects
CPU_BUILDS = {"generic": "c", "cortex-m3": "c", "cortex-m4": "dsp", "cortex-m7": "dsp", "cortex-m33": "dsp",
              "cortex-m55": "mve"}
HOST_DIR = Path(__file__).parent / "host"


class CmsisNNBackend(Backend):
    name = "cmsis-nn"
    host_dir_name = "cmsis_nn_host"
    cpus = tuple(CPU_BUILDS)
    library = "CMSIS-NN"
    library_table = Path(__file__).parent / "cmsis_nn_v7.0.0_sources.json"

    def kernel_build(self, cpu: str) -> str:
        return CPU_BUILDS[cpu]

    def open_library(self, directory):
        from kwscc.validate.cmsis_nn import checkout

        return checkout(directory)

    def check(self, graph) -> None:
        constraints.check(graph)

    def simulate(self, qm: QuantModel, inputs):
        return simulate(qm, inputs)

    def lower(self, qm: QuantModel, prefix: str, cpu: str) -> list[KernelCall]:
        calls = []
        optimize = getattr(self.options, "optimize", "balanced")
        kernels = getattr(self.options, "kernels", "auto")
        for node in qm.graph.nodes():
            layer_prefix = f"{prefix}_l{len(calls):02d}"
            call = lower(qm, node, layer_prefix, CPU_BUILDS[cpu])
            if call is not None:
                attach_constants(qm, call, layer_prefix)
                calls.append(kernel_choice.choose(qm, node, call, layer_prefix, cpu, CPU_BUILDS[cpu], optimize,
                                                  kernels))
        share_identical_arrays(calls)
        return calls

    def scratch(self, calls: list[KernelCall], cpu: str, split: bool = True) -> dict[str, int]:
        build = CPU_BUILDS[cpu]
        return {call.node.name: (call.scratch if split or call.unsplit_scratch is None else call.unsplit_scratch)[build]
                for call in calls}

    def overlaps(self, calls: list[KernelCall]) -> dict[str, int]:
        found = {call.node.name: raster_overlap(call) for call in calls}
        return {name: delta for name, delta in found.items() if delta is not None}

    def render(self, qm: QuantModel, calls: list[KernelCall], plan: MemoryPlan, name: str, cpu: str,
               gen: dict) -> dict[str, str]:
        """{file name: text} of the generated sources."""
        return render_model("cmsis_nn", name, self._view(qm, calls, plan, name, cpu, gen))

    def host_files(self, rounding: str) -> dict[str, str]:
        """kwscc's host CMSIS-NN implementation, configured for the model's rounding."""
        files = read_sources(HOST_DIR)
        if rounding == "single":
            files["kwscc_host_config.h"] = files["kwscc_host_config.h"].replace(
                "#define KWSCC_HOST_CONFIG_H\n", "#define KWSCC_HOST_CONFIG_H\n#define CMSIS_NN_USE_SINGLE_ROUNDING\n")
        return files

    def _view(self, qm, calls, plan, name, cpu, gen) -> dict:
        graph = qm.graph
        state_offsets = recurrent_state_offsets(calls)
        views = [self._call_view(i, call, plan, name, state_offsets) for i, call in enumerate(calls)]
        shared = shared_multiplier_channels(calls)
        in_fmt, out_fmt = qm.input_format, qm.output_format
        return {
            "gen": gen, "name": name, "NAME": name.upper(), "calls": views, "cpu": cpu, "cpu_build": CPU_BUILDS[cpu],
            "input_size": graph.tensors[graph.inputs[0]].size, "output_size": graph.tensors[graph.outputs[0]].size,
            "arena_size": plan.arena_size, "input_frac": in_fmt.frac, "input_zero_point": in_fmt.zero_point,
            "split": qm.split, "split_scale_literal": c_float_literal(2.0 ** qm.split.bits) if qm.split else None,
            "quantized_input_size": qm.stored_bytes(graph.inputs[0]), "output_frac": out_fmt.frac,
            "output_zero_point": out_fmt.zero_point, "single_rounding": qm.rounding == "single",
            "input_scale_literal": c_float_literal(2.0 ** in_fmt.frac),
            "output_scale_literal": c_float_literal(2.0 ** -out_fmt.frac),
            "max_channels": shared,
            "kernels": [k for k in KWSCC_KERNELS if any(k in call.kernels for call in calls)],
            "pow2_multipliers": np.full(shared, POW2_MULTIPLIER, np.int64),
            "input_walk": input_walk(graph),
            "full_range_requantize": own_kernels.full_range(calls),
            "requantize_multiplier": own_kernels.multiplier_mode(qm),
            "streaming": qm.streaming, "state_size": state_size(calls),
            "initial_states": [{"offset": state_offsets[view["node"]] + offset, **view["arrays"][index],
                                "layer": view["index"], "comment": view["comment"]}
                               for view, call in zip(views, calls) for offset, index in call.state_initial],
            "lstm_step": any(call.function == "arm_nn_lstm_step_s8" for call in calls),
        }

    def _call_view(self, index: int, call: KernelCall, plan: MemoryPlan, name: str, state_offsets: dict) -> dict:
        scratch = plan.scratch(call.node.name)
        state = state_offsets.get(call.node.name)
        inputs = call.operands(lambda t: tensor_pointer(plan, t))
        return {
            "index": index, "op": call.node.op, "comment": c_comment(f"'{call.node.name}'"),
            "function": call.function, "template": f"cmsis_nn/{call.template}", "p": call.params,
            "arrays": [{"symbol": a.suffix, "ctype": a.ctype, "data": a.values, "role": a.role, "shared": a.shared}
                       for a in call.arrays],
            "input": inputs[0], "output": tensor_pointer(plan, call.node.outputs[0]), "inputs": inputs,
            "scratch_ptr": f"(arena + {scratch.offset})" if scratch else "NULL",
            "scratch_size": scratch.size if scratch else 0, "name": name,
            "state_ptr": f"(state + {state})" if state is not None else "NULL",  # NAME_run_stream's state
            "node": call.node.name,
        }


def recurrent_state_offsets(calls: list[KernelCall]) -> dict[str, int]:
    """Byte offset in NAME_state of each streaming recurrent layer's state (KernelCall.state, 4-byte multiples)."""
    offsets, offset = {}, 0
    for call in calls:
        if call.state:
            offsets[call.node.name] = offset
            offset += call.state
    return offsets


def state_size(calls: list[KernelCall]) -> int:
    """Bytes of NAME_state: the recurrent state a --streaming program keeps between calls (0 otherwise)."""
    return sum(call.state for call in calls)
