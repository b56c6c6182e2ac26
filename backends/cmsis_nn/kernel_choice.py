"""Per-layer kernel choice by cost: among the kernels that compute the same result for a layer (the CMSIS-NN
call and, where its constraints hold, kwscc's own kernel), the one the cost table says runs the fewest
instructions on the core, among those whose scratch does not raise the arena.

The cost table (kernel_costs.json, written by benchmarks/kernel_costs.py from instruction counts measured on
emulated cores) models each kernel on each core as instructions = per_mac * MACs + per_output * outputs +
per_call. Cores without a measured table keep the CMSIS-NN call.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from kwscc.backends.cmsis_nn import own_kernels
from kwscc.backends.cmsis_nn.kernels import KernelCall
from kwscc.ir import Node
from kwscc.quant.quantize import QuantModel

COSTS_FILE = Path(__file__).with_name("kernel_costs.json")
# cores whose instruction counts a measured core stands for (same CMSIS-NN build, same ISA extensions)
TABLE_CORE = {"cortex-m4": "cortex-m4", "cortex-m7": "cortex-m4", "cortex-m33": "cortex-m4",
              "cortex-m55": "cortex-m55"}
OPTIMIZE = ("balanced", "speed", "ram", "accuracy")
KERNELS = ("auto", "cmsis-nn", "kwscc")


@cache
def cost_table() -> dict:
    return json.loads(COSTS_FILE.read_text())


def cmsis_kernel(call: KernelCall, build: str) -> str:
    """The kernel CMSIS-NN v7.0.0's wrapper runs for this call on a build (c, dsp, mve)."""
    p = call.params
    if call.function == "arm_convolve_wrapper_s8":
        f, cin = p["filter_dims"], p["input_dims"]["c"] * (2 if p["split"] else 1)
        if (f["h"], f["w"]) == (1, 1) and not any(p["padding"]) and tuple(p["dilation"]) == (1, 1):
            return "arm_convolve_1x1_s8_fast" if tuple(p["stride"]) == (1, 1) else "arm_convolve_1x1_s8"
        if p["input_dims"]["h"] == 1 and f["h"] == 1 and p["dilation"][1] == 1 and (p["stride"][1] * cin) % 4 == 0:
            return "arm_convolve_1_x_n_s8"
        return "arm_convolve_s8"
    if call.function == "arm_depthwise_conv_wrapper_s8":
        if p["ch_mult"] == 1 and tuple(p["dilation"]) == (1, 1):
            f = p["filter_dims"]
            if build != "mve" and (f["h"], f["w"]) == (3, 3) and max(p["padding"]) <= 1:
                return "arm_depthwise_conv_3x3_s8"
            return "arm_depthwise_conv_s8_opt"
        return "arm_depthwise_conv_s8"
    return call.function


def estimate(call: KernelCall, outputs: int, cpu: str, build: str) -> int | None:
    """Instructions the cost table predicts for one call writing `outputs` values on `cpu`; None without a
    measured table or entry."""
    table = cost_table().get(TABLE_CORE.get(cpu, ""), {})
    kernel = call.function if call.function.startswith("kwscc_") else cmsis_kernel(call, build)
    cost = table.get(kernel)
    if cost is None:
        return None
    return round(cost["per_mac"] * call.macs + cost["per_output"] * outputs + cost["per_call"])


def candidates(qm: QuantModel, node: Node, cmsis: KernelCall, prefix: str, wide: bool = False) -> list[KernelCall]:
    """The CMSIS-NN call first, then kwscc's kernels whose constraints the layer meets (wide: their variants
    with int16 weights too, the last)."""
    own = []
    for variant in (False, True) if wide else (False,):
        if cmsis.function == "arm_depthwise_conv_wrapper_s8":
            own.append(own_kernels.depthwise(qm, node, cmsis, prefix, variant))
        elif node.op in ("Conv", "Dense"):
            own.append(own_kernels.pointwise(qm, node, cmsis, prefix, variant)
                       or own_kernels.conv(qm, node, cmsis, prefix, variant))
    own = [call for call in own if call is not None]
    for call in own:
        call.replaces = cmsis.function
    return [cmsis, *own]


def choose(qm: QuantModel, node: Node, cmsis: KernelCall, prefix: str, cpu: str, build: str,
           optimize: str = "balanced", kernels: str = "auto") -> KernelCall:
    """The call to emit for one layer. kernels: auto (by cost), cmsis-nn (always the library's call) or kwscc
    (kwscc's kernel wherever it applies, the wide one with optimize speed; for measuring the cost table).
    Only speed considers the wide kernels, which double their weights' flash."""
    options = candidates(qm, node, cmsis, prefix, wide=optimize == "speed")
    outputs = qm.graph.tensors[node.outputs[0]].size
    for call in options:
        call.estimated_instructions = estimate(call, outputs, cpu, build)
    if kernels == "cmsis-nn":
        return cmsis
    if kernels == "kwscc":
        return options[-1]
    if cmsis.estimated_instructions is None:
        return cmsis  # unmeasured: keep what the library does
    options = [call for call in options if call.estimated_instructions is not None]
    if optimize == "ram":
        key = lambda call: (call.scratch[build], call.estimated_instructions)  # noqa: E731
    else:
        key = lambda call: call.estimated_instructions  # noqa: E731
        if optimize != "speed":  # a faster kernel may not raise the arena
            options = [call for call in options if call.scratch[build] <= cmsis.scratch[build]]
    return min(options, key=key)  # ties keep the first: the CMSIS-NN call
