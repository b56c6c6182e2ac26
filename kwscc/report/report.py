"""Resource report of a compiled model: RAM (arena), flash (weights), MACs, per layer.

The numbers come from the same objects the C is rendered from (memory plan, kernel calls), so
they are what the generated code declares.
"""
from __future__ import annotations

import json

import numpy as np

from kwscc.driver import Compiled

SCHEMA_VERSION = 1


def _layer(compiled: Compiled, call, step: dict[str, int]) -> dict:
    node, graph, plan = call.node, compiled.graph, compiled.plan
    out = node.outputs[0]
    where, offset = plan.location(out)
    scratch = plan.scratch(node.name)
    fmt = compiled.qm.formats[out]
    return {
        "name": node.name,
        "op": node.op,
        "function": call.function,
        "output_shape": list(graph.tensors[out].shape),
        "macs": int(call.macs),
        "weights_bytes": int(sum(a.values.nbytes for a in call.arrays if a.role == "weights")),
        "bias_bytes": int(sum(a.values.nbytes for a in call.arrays if a.role == "bias")),
        "quant_params_bytes": int(sum(a.values.nbytes for a in call.arrays if a.role == "shift")),
        "input_bytes": int(graph.tensors[node.inputs[0]].size),
        "output_bytes": int(graph.tensors[out].size),
        "arena_offset": offset if where == "arena" else None,
        "output_location": where,
        "scratch_bytes": scratch.size if scratch else 0,
        "scratch_bytes_by_build": dict(call.scratch),
        "step": step[node.name],
        "output_format": str(fmt),
        "output_frac_bits": fmt.frac,
    }


def build_report(compiled: Compiled) -> dict:
    plan = compiled.plan
    step = {name: i for i, name in enumerate(plan.schedule)}
    layers = [_layer(compiled, call, step) for call in compiled.calls]
    multiplier_bytes = 4 * max((c.params.get("channels", 0) for c in compiled.calls), default=0)
    weights = sum(layer["weights_bytes"] for layer in layers)
    biases = sum(layer["bias_bytes"] for layer in layers)
    quant = sum(layer["quant_params_bytes"] for layer in layers) + multiplier_bytes
    return {
        "schema_version": SCHEMA_VERSION,
        "model": compiled.model_path.name,
        "name": compiled.name,
        "backend": compiled.backend.name,
        "cpu": compiled.options.cpu,
        "rounding": compiled.qm.rounding,
        "arena_bytes": plan.arena_size,
        "arena_lower_bound_bytes": plan.lower_bound,
        "arena_efficiency": round(plan.lower_bound / plan.arena_size, 4) if plan.arena_size else 1.0,
        "allocator": plan.allocator,
        "scratch_bytes": max((layer["scratch_bytes"] for layer in layers), default=0),
        "input_in_arena": False,
        "output_in_arena": False,
        "weights_bytes": weights + biases,
        "weights_only_bytes": weights,
        "bias_bytes": biases,
        "quant_params_bytes": quant,
        "flash_data_bytes": weights + biases + quant,
        "macs": int(sum(layer["macs"] for layer in layers)),
        "input_format": str(compiled.qm.input_format),
        "output_format": str(compiled.qm.output_format),
        "layers": layers,
    }


def format_table(report: dict) -> str:
    rows = [("#", "layer", "op", "output", "MACs", "weights B", "out B", "offset", "scratch B", "format")]
    for i, layer in enumerate(report["layers"]):
        offset = layer["arena_offset"] if layer["arena_offset"] is not None else layer["output_location"]
        rows.append((str(i), layer["name"][:36], layer["op"], "x".join(map(str, layer["output_shape"])),
                     f"{layer['macs']:,}", f"{layer['weights_bytes'] + layer['bias_bytes']:,}",
                     f"{layer['output_bytes']:,}", str(offset), str(layer["scratch_bytes"]), layer["output_format"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    r = report
    lines += [
        "",
        f"RAM   arena {r['arena_bytes']:,} B (lower bound {r['arena_lower_bound_bytes']:,} B, efficiency "
        f"{100 * r['arena_efficiency']:.1f}%, {r['allocator']}); input and output live in the caller's buffers",
        f"FLASH weights+biases {r['weights_bytes']:,} B + quantization params {r['quant_params_bytes']:,} B "
        f"= {r['flash_data_bytes']:,} B (code size not measured)",
        f"MACs  {r['macs']:,} per inference   cpu {r['cpu']}   rounding {r['rounding']}",
    ]
    return "\n".join(lines)


def format_markdown(report: dict) -> str:
    head = (f"# kwscc report: {report['model']}\n\n| metric | value |\n|---|---:|\n"
            f"| arena (RAM) | {report['arena_bytes']:,} B |\n"
            f"| arena lower bound | {report['arena_lower_bound_bytes']:,} B |\n"
            f"| weights + biases (flash) | {report['weights_bytes']:,} B |\n"
            f"| quantization params (flash) | {report['quant_params_bytes']:,} B |\n"
            f"| MACs | {report['macs']:,} |\n\n")
    rows = ["| # | layer | op | output | MACs | weights B | arena offset | scratch B | format |", "|" + "---|" * 9]
    for i, layer in enumerate(report["layers"]):
        rows.append(f"| {i} | {layer['name']} | {layer['op']} | {'x'.join(map(str, layer['output_shape']))} | "
                    f"{layer['macs']:,} | {layer['weights_bytes'] + layer['bias_bytes']:,} | "
                    f"{layer['arena_offset'] if layer['arena_offset'] is not None else layer['output_location']} | "
                    f"{layer['scratch_bytes']} | {layer['output_format']} |")
    return head + "\n".join(rows) + "\n"


def report_files(compiled: Compiled) -> dict[str, str]:
    report = build_report(compiled)
    return {
        f"{compiled.name}_report.json": json.dumps(report, indent=2) + "\n",
        f"{compiled.name}_report.md": format_markdown(report),
    }


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)) + "\n"
