"""Resource report of a compiled model: RAM (arena), flash (weights + code), MACs, per layer.

The numbers come from the same objects the C is rendered from (memory plan, kernel calls), so
they are what the generated code declares; the code size is measured by compiling that C with
arm-none-eabi-gcc -Os for the chosen core (kwscc.report.flash), or marked unmeasured. The JSON
form is documented by docs/report-schema.json (JSON Schema 2020-12) and docs/report.md.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import replace

import numpy as np

from kwscc.driver import Compiled
from kwscc.memory.planner import ALIAS_OPS, INPUT, OUTPUT, MemoryPlan, plan_memory, reader_steps
from kwscc.naming import markdown_cell, printable
from kwscc.report import flash as flash_size

SCHEMA_VERSION = 7
BUILDS = ("c", "dsp", "mve")
BUILD_TITLES = {"c": "pure C", "dsp": "DSP", "mve": "MVE"}


# ---- helpers ----------------------------------------------------------------------------------------

def _cpu_builds(compiled: Compiled) -> dict[str, str]:
    """--cpu -> CMSIS-NN build of the backend (empty if the backend has no such table)."""
    module = importlib.import_module(type(compiled.backend).__module__)
    return dict(getattr(module, "CPU_BUILDS", {}))


def _multiplier_symbol(compiled: Compiled) -> tuple[str, int]:
    """The cmsis-nn backend's one multiplier array (2^30 per channel), shared by the layers without their own."""
    if compiled.backend.name != "cmsis-nn":
        return "", 0
    from kwscc.backends.cmsis_nn.kernels import shared_multiplier_channels

    channels = shared_multiplier_channels(compiled.calls)
    return f"{compiled.name}_pow2_multiplier", 4 * channels


def _fmt(compiled: Compiled, tensor: str) -> str | None:
    fmt = compiled.qm.formats.get(tensor)
    return str(fmt) if fmt is not None else None


def _weight_formats(compiled: Compiled, node: str) -> list[int] | None:
    layer = compiled.qm.layers.get(node)
    if layer is None or layer.weight_frac is None:
        return None
    return [int(f) for f in np.atleast_1d(layer.weight_frac)]


def _lifetime(plan: MemoryPlan, graph, tensor: str, step: dict[str, int]) -> list[int]:
    producer = graph.producer(tensor)
    first = step[producer.name] if producer else 0
    last = max([first, *reader_steps(graph, tensor, step)])
    if tensor in graph.outputs:
        last = len(plan.schedule) - 1
    return [first, last]


def _writer_layers(compiled: Compiled) -> dict[str, int]:
    """Tensor -> index of the layer whose call writes its bytes (through reshape aliases)."""
    graph = compiled.graph
    index = {call.node.name: i for i, call in enumerate(compiled.calls)}
    writers: dict[str, int] = {}
    for node in graph.nodes():
        if node.name in index:
            writers[node.outputs[0]] = index[node.name]
        elif node.op in ALIAS_OPS and node.inputs[0] in writers:
            writers[node.outputs[0]] = writers[node.inputs[0]]
    return writers


def _layer(compiled: Compiled, index: int, call, step: dict[str, int], cpu_build: str | None,
           writers: dict[str, int]) -> dict:
    node, graph, plan = call.node, compiled.graph, compiled.plan
    arrays = [a for a in getattr(call, "arrays", []) if not getattr(a, "shared", False)]  # flash holds each once
    out = node.outputs[0]
    where, offset = plan.location(out)
    scratch = plan.scratch(node.name)
    fmt = compiled.qm.formats[out]
    acts = [t for t in node.inputs if not graph.tensors[t].is_const]
    wfrac = _weight_formats(compiled, node.name)
    return {
        "name": node.name,
        "op": node.op,
        "function": getattr(call, "function", node.op),
        "index": index,
        "step": step[node.name],
        "output_shape": [int(d) for d in graph.tensors[out].shape],
        "macs": int(getattr(call, "macs", 0)),
        "weights_bytes": int(sum(a.values.nbytes for a in arrays if a.role in ("weights", "constant"))),
        "bias_bytes": int(sum(a.values.nbytes for a in arrays if a.role == "bias")),
        "quant_params_bytes": int(sum(a.values.nbytes for a in arrays
                                      if a.role not in ("weights", "constant", "bias"))),
        "arrays": [{"symbol": a.suffix, "role": a.role, "ctype": a.ctype, "bytes": int(a.values.nbytes)}
                   for a in arrays],
        "input_bytes": int(sum(compiled.qm.stored_bytes(t) for t in acts)),
        "output_bytes": int(graph.tensors[out].size),
        "input_locations": [plan.location(t)[0] for t in acts],
        "input_layers": [writers.get(t) for t in acts],
        "output_location": where,
        "arena_offset": offset if where == "arena" else None,
        "lifetime": _lifetime(plan, graph, out, step),
        "in_place": node.name in plan.in_place,
        "overlap_bytes": plan.overlapped.get(node.name),
        "scratch_bytes": scratch.size if scratch else 0,
        "scratch_offset": scratch.offset if scratch else None,
        "scratch_bytes_by_build": {b: int(n) for b, n in dict(getattr(call, "scratch", {})).items()},
        "estimated_instructions": getattr(call, "estimated_instructions", None),
        "input_formats": [_fmt(compiled, t) for t in acts],
        "output_format": str(fmt),
        "output_frac_bits": fmt.frac,
        "weight_frac_bits": wfrac,
        "weight_formats": None if wfrac is None else sorted({f"Q{7 - f}.{f}" for f in wfrac},
                                                              key=lambda s: int(s.split(".")[1])),
    }


def _buffers(plan: MemoryPlan, graph) -> list[dict]:
    rows = []
    for b in sorted(plan.buffers, key=lambda b: (b.start, b.offset)):
        rows.append({"name": b.name, "kind": "scratch" if b.is_scratch else "activation", "bytes": b.size,
                     "offset": b.offset, "first_step": b.start, "last_step": b.end,
                     "tensors": list(b.tensors) if not b.is_scratch else []})
    return rows


def _occupancy(plan: MemoryPlan) -> list[int]:
    return [sum(b.size for b in plan.buffers if b.start <= s <= b.end) for s in range(len(plan.schedule))]


def _builds(compiled: Compiled, layers: list[dict]) -> dict[str, dict]:
    """Arena of the same model for each CMSIS-NN build, planned exactly as a compile for it would be. Each
    layer's scratch_bytes_by_build is set from that build's own lowering, since the kernel chosen for a layer
    (and so its scratch) may differ from core to core."""
    cpu_builds = _cpu_builds(compiled)
    by_name = {layer["name"]: layer for layer in layers}
    builds = {}
    for build in BUILDS:
        cpus = [cpu for cpu, b in cpu_builds.items() if b == build]
        if not cpus:
            continue
        if cpu_builds.get(compiled.options.cpu) == build:
            calls, plan = compiled.calls, compiled.plan
        else:
            calls = compiled.backend.lower(compiled.qm, compiled.name, cpus[0])
            plan = plan_memory(compiled.graph, compiled.backend.scratch(calls, cpus[0]),
                               overlaps=compiled.backend.overlaps(calls))
        for call in calls:
            if call.node.name in by_name and build in dict(getattr(call, "scratch", {})):
                by_name[call.node.name]["scratch_bytes_by_build"][build] = int(call.scratch[build])
        builds[build] = {
            "title": BUILD_TITLES[build], "cpus": cpus,
            "arena_bytes": plan.arena_size, "arena_lower_bound_bytes": plan.lower_bound,
            "scratch_bytes": max((b.size for b in plan.buffers if b.is_scratch), default=0),
            "scratch_total_bytes": sum(b.size for b in plan.buffers if b.is_scratch),
        }
    return builds


def _estimated(calls) -> int | None:
    """Sum of the layers' cost-table estimates; None if a layer with MACs has none."""
    estimates = [getattr(c, "estimated_instructions", None) for c in calls if getattr(c, "macs", 0)]
    return None if not estimates or None in estimates else int(sum(estimates))


def _estimated_library(compiled: Compiled) -> int | None:
    """The estimate with every layer on CMSIS-NN's own call (what the kernel choice gained)."""
    if compiled.backend.name != "cmsis-nn":
        return None
    library = compiled.backend.__class__(replace(compiled.options, kernels="cmsis-nn"))
    return _estimated(library.lower(compiled.qm, compiled.name, compiled.options.cpu))


# ---- the report -------------------------------------------------------------------------------------

def build_report(compiled: Compiled, measure_code: bool = True) -> dict:
    plan, graph = compiled.plan, compiled.graph
    step = {name: i for i, name in enumerate(plan.schedule)}
    cpu_build = _cpu_builds(compiled).get(compiled.options.cpu)
    writers = _writer_layers(compiled)
    layers = [_layer(compiled, i, call, step, cpu_build, writers) for i, call in enumerate(compiled.calls)]
    mult_symbol, mult_bytes = _multiplier_symbol(compiled)
    weights = sum(layer["weights_bytes"] for layer in layers)
    biases = sum(layer["bias_bytes"] for layer in layers)
    quant = sum(layer["quant_params_bytes"] for layer in layers) + mult_bytes
    const_data = weights + biases + quant
    symbols = {a["symbol"] for layer in layers for a in layer["arrays"]} | ({mult_symbol} if mult_bytes else set())
    code = flash_size.measure(compiled, symbols) if measure_code else {
        "measured": False, "reason": "not requested", "compiler": flash_size.GCC,
        "flags": flash_size.compile_flags(compiled.options.cpu), "cpu": compiled.options.cpu}
    code_bytes = code.get("code_bytes") if code["measured"] else None
    in_bytes = sum(compiled.qm.stored_bytes(t) for t in graph.inputs)
    out_bytes = sum(graph.tensors[t].size for t in graph.outputs[:1])
    scratch_max = max((b.size for b in plan.buffers if b.is_scratch), default=0)
    state = sum(getattr(call, "state", 0) for call in compiled.calls)  # --streaming: NAME_state
    return {
        "schema_version": SCHEMA_VERSION,
        "model": compiled.model_path.name,
        "name": compiled.name,
        "backend": compiled.backend.name,
        "cpu": compiled.options.cpu,
        "cpu_build": cpu_build,
        "rounding": compiled.qm.rounding,
        "formats_provisional": compiled.provisional,
        # RAM
        "arena_bytes": plan.arena_size,
        "arena_lower_bound_bytes": plan.lower_bound,
        "arena_efficiency": round(plan.efficiency, 4),
        "allocator": plan.allocator,
        "scratch_bytes": scratch_max,
        "input_bytes": int(in_bytes),
        "output_bytes": int(out_bytes),
        "input_in_arena": False,
        "output_in_arena": any(plan.location(t)[0] == "arena" for t in graph.outputs[:1]),
        "state_bytes": state,
        "streaming_frames": compiled.qm.streaming.frames if compiled.qm.streaming else None,
        "ram_bytes": plan.arena_size + state,  # the static RAM the generated C declares: arena and recurrent state
        # flash
        "weights_bytes": weights + biases,
        "weights_only_bytes": weights,
        "bias_bytes": biases,
        "quant_params_bytes": quant,
        "flash_data_bytes": const_data,
        "shared_arrays": [{"symbol": mult_symbol, "role": "multiplier", "ctype": "int32_t", "bytes": mult_bytes}]
        if mult_bytes else [],
        "code_bytes": code_bytes,
        "flash_bytes": const_data + code_bytes if code_bytes is not None else None,
        "code_size": code,
        "macs": int(sum(layer["macs"] for layer in layers)),
        "input_format": str(compiled.qm.input_format),
        "input_split_bits": compiled.qm.split.bits if compiled.qm.split is not None else 0,
        "quantization_steps": list(compiled.qm.steps),
        "output_format": str(compiled.qm.output_format),
        "optimize": compiled.options.optimize,
        "estimated_instructions": _estimated(compiled.calls),
        "estimated_instructions_cmsis_nn": _estimated_library(compiled),
        "plan": {
            "schedule": list(plan.schedule),
            "schedule_ops": [graph.node(name).op for name in plan.schedule],
            "schedule_method": plan.schedule_method,
            "schedule_optimal": plan.schedule_optimal,
            "in_place": list(plan.in_place),
            "overlapping": list(plan.overlapped),
            "candidates": [{"schedule": c.schedule, "allocator": c.allocator, "arena_bytes": c.arena_size,
                            "lower_bound_bytes": c.lower_bound} for c in plan.candidates],
            "occupancy_bytes": _occupancy(plan),
        },
        "builds": _builds(compiled, layers),
        "buffers": _buffers(plan, graph),
        "layers": layers,
    }


# ---- text forms -------------------------------------------------------------------------------------

def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _where(layer: dict) -> str:
    return str(layer["arena_offset"]) if layer["arena_offset"] is not None else layer["output_location"]


def _formats(layer: dict) -> str:
    text = ",".join(f or "?" for f in layer["input_formats"]) + " -> " + layer["output_format"]
    if layer["weight_formats"]:
        w = layer["weight_formats"]
        text += f"  w {w[0]}" + (f"..{w[-1]}" if len(w) > 1 else "")
    return text


def layer_span(report: dict, first_step: int, last_step: int) -> tuple[int, int]:
    """Steps of the plan (which count the reshapes that emit no code) as layer indices, the one numbering
    users see (the C's `layer i` comments and KWSCC_LAYER_HOOK(i), validate's layers): the first layer
    run at or after first_step, the last run at or before last_step."""
    layers = report["layers"]
    first = next((l["index"] for l in layers if l["step"] >= first_step), len(layers) - 1)
    last = max((l["index"] for l in layers if l["step"] <= last_step), default=0)
    return first, max(first, last)


PROVISIONAL_NOTE = ("formats omitted: no calibration data (--calib DATA gives them); RAM, MACs and the const data "
                    "do not depend on the data, the code size only by a few bytes")


def _tables_note(r: dict) -> str:
    """' (lookup tables N B)' when activations run through tables (kwscc.quant.lut), else ''."""
    tables = sum(a["bytes"] for layer in r["layers"] for a in layer["arrays"] if a["role"] == "table")
    return f" (lookup tables {tables:,})" if tables else ""


def _summary_lines(r: dict) -> list[str]:
    plan = r["plan"]
    order = plan["schedule_method"] + (", optimal" if plan["schedule_optimal"] else "")
    builds = "   ".join(f"{b['title']} ({'/'.join(c.replace('cortex-', '') for c in b['cpus'])}) "
                        f"{b['arena_bytes']:,} B" for b in r["builds"].values())
    code = r["code_size"]
    if code["measured"]:
        flash = (f"FLASH {r['flash_bytes']:,} B = weights {r['weights_only_bytes']:,} + biases {r['bias_bytes']:,}"
                 f" + quantization params {r['quant_params_bytes']:,}{_tables_note(r)} + code {r['code_bytes']:,} "
                 f"({code['compiler']} {code.get('compiler_version', '')} {' '.join(code['flags'][1:2])} "
                 f"{' '.join(f for f in code['flags'] if f.startswith('-mcpu'))}; CMSIS-NN library not included)")
    else:
        flash = (f"FLASH {r['flash_data_bytes']:,} B const data = weights {r['weights_only_bytes']:,} + biases "
                 f"{r['bias_bytes']:,} + quantization params {r['quant_params_bytes']:,}{_tables_note(r)}; code unmeasured "
                 f"({code['reason']})")
    build = f" ({r['cpu_build']} build)" if r["cpu_build"] else ""
    lines = [
        f"RAM   arena {r['arena_bytes']:,} B (activations + scratch; largest scratch {r['scratch_bytes']:,} B), "
        f"lower bound {r['arena_lower_bound_bytes']:,} B, efficiency {100 * r['arena_efficiency']:.1f} %",
        f"      plan: {r['allocator']}, order {order}, {len(plan['in_place'])} in-place"
        + (f", {len(plan['overlapping'])} overlapping" if plan["overlapping"] else "") + f"; input {r['input_bytes']:,} B "
        + ("(split: hi + lo int8 per value) " if r["input_split_bits"] else "")
        + f"and output {r['output_bytes']:,} B in the caller's buffers" + (" (output in the arena)" if r["output_in_arena"] else ""),
        f"      arena per CMSIS-NN build: {builds}" if builds else None,
        f"      state {r['state_bytes']:,} B: the LSTM/GRU state kept between calls (--streaming "
        f"{r['streaming_frames']} frames per call), in {r['name']}_state beside the arena"
        if r["state_bytes"] else None,
        flash,
        f"MACs  {r['macs']:,} per {'call' if r['streaming_frames'] else 'inference'}"
        f"   cpu {r['cpu']}{build}   rounding {r['rounding']}",
        f"QUANT data-driven steps applied: {', '.join(r['quantization_steps'])}" if r["quantization_steps"] else None,
        f"NOTE  {PROVISIONAL_NOTE}" if r["formats_provisional"] else None,
        _speed_line(r),
    ]
    return [line for line in lines if line is not None]


def _speed_line(r: dict) -> str:
    if r["estimated_instructions"] is None:
        return f"SPEED no instruction estimate for {r['cpu']} (no measured cost table); --optimize {r['optimize']}"
    library = r["estimated_instructions_cmsis_nn"]
    versus = f" (every layer on CMSIS-NN's call: {library:,})" if library is not None else ""
    return (f"SPEED estimated {r['estimated_instructions']:,} instructions per inference on {r['cpu']}{versus}, "
            f"from the cost table; --optimize {r['optimize']}")


def format_table(report: dict) -> str:
    builds = list(report["builds"])
    rows = [("#", "layer", "op", "output", "MACs", "est. instr", "weights B", "in B", "out B", "offset", "life",
             "scratch B", "scratch " + "/".join(builds), "formats (in -> out, weights)")]
    for layer in report["layers"]:
        by_build = layer["scratch_bytes_by_build"]
        life = "-".join(map(str, layer_span(report, *layer["lifetime"]))) + ("*" if layer["in_place"] else "")
        rows.append((str(layer["index"]), printable(layer["name"])[:32], layer["op"], _shape(layer["output_shape"]),
                     f"{layer['macs']:,}",
                     "-" if layer["estimated_instructions"] is None else f"{layer['estimated_instructions']:,}",
                     f"{layer['weights_bytes'] + layer['bias_bytes']:,}",
                     f"{layer['input_bytes']:,}", f"{layer['output_bytes']:,}", _where(layer), life,
                     str(layer["scratch_bytes"]), "/".join(str(by_build.get(b, "-")) for b in builds),
                     "-" if report["formats_provisional"] else _formats(layer)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + [""] + _summary_lines(report))


def format_markdown(report: dict, svg_name: str | None = None) -> str:
    r = report
    code = r["code_size"]
    code_cell = (f"{r['code_bytes']:,} B ({code['compiler']} {' '.join(code['flags'])})" if code["measured"]
                 else f"unmeasured: {code['reason']}")
    flash_cell = f"{r['flash_bytes']:,} B" if r["flash_bytes"] is not None else "unmeasured (code size unknown)"
    build = f", {r['cpu_build']} build" if r["cpu_build"] else ""
    out = [f"# kwscc report: {markdown_cell(r['model'])} ({r['cpu']}{build})", ""]
    if svg_name:
        out += [f"![arena occupancy per layer]({svg_name})", ""]
    out += [
        "| metric | value |", "|---|---:|",
        f"| arena (RAM: activations + scratch) | {r['arena_bytes']:,} B |",
        f"| arena lower bound | {r['arena_lower_bound_bytes']:,} B |",
        f"| plan efficiency (lower bound / arena) | {100 * r['arena_efficiency']:.1f} % |",
        f"| largest scratch buffer | {r['scratch_bytes']:,} B |",
        *([f"| recurrent state kept between calls (--streaming {r['streaming_frames']}) | {r['state_bytes']:,} B |"]
          if r["state_bytes"] else []),
        f"| input / output (caller's buffers) | {r['input_bytes']:,} B / {r['output_bytes']:,} B |",
        f"| weights (flash) | {r['weights_only_bytes']:,} B |",
        f"| biases (flash) | {r['bias_bytes']:,} B |",
        f"| quantization params: shifts + multipliers + lookup tables (flash) | {r['quant_params_bytes']:,} B"
        f"{_tables_note(r)} |",
        f"| generated code (flash) | {code_cell} |",
        f"| flash total (CMSIS-NN library not included) | {flash_cell} |",
        f"| MACs per inference | {r['macs']:,} |",
        f"| plan | {r['allocator']}, order {r['plan']['schedule_method']}"
        f"{' (optimal)' if r['plan']['schedule_optimal'] else ''}, {len(r['plan']['in_place'])} in-place"
        f"{', %d overlapping' % len(r['plan']['overlapping']) if r['plan']['overlapping'] else ''} |",
        "", "## Arena per CMSIS-NN build", "",
        "| build | cores | arena | lower bound | largest scratch |", "|---|---|---:|---:|---:|",
    ]
    for b in r["builds"].values():
        out.append(f"| {b['title']} | {', '.join(b['cpus'])} | {b['arena_bytes']:,} B | "
                   f"{b['arena_lower_bound_bytes']:,} B | {b['scratch_bytes']:,} B |")
    builds = list(r["builds"])
    out += ["", "## Layers", "",
            "| # | layer | op | output | MACs | weights B | in B | out B | offset | lifetime (layers) | scratch B | "
            f"scratch {'/'.join(builds)} | formats |",
            "|---:|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---|"]
    for layer in r["layers"]:
        by_build = layer["scratch_bytes_by_build"]
        first, last = layer_span(r, *layer["lifetime"])
        formats = "-" if r["formats_provisional"] else _formats(layer)
        out.append(f"| {layer['index']} | {markdown_cell(layer['name'])} | {layer['op']} | {_shape(layer['output_shape'])} | "
                   f"{layer['macs']:,} | {layer['weights_bytes'] + layer['bias_bytes']:,} | {layer['input_bytes']:,} | "
                   f"{layer['output_bytes']:,} | {_where(layer)} | {first}-{last}"
                   f"{' in place' if layer['in_place'] else ''} | {layer['scratch_bytes']} | "
                   f"{'/'.join(str(by_build.get(b, '-')) for b in builds)} | {formats} |")
    if r["formats_provisional"]:
        out += ["", f"Note: {PROVISIONAL_NOTE}."]
    out += ["", "## Plan candidates", "", "| order | allocator | arena | lower bound |", "|---|---|---:|---:|"]
    for c in r["plan"]["candidates"]:
        out.append(f"| {c['schedule']} | {c['allocator']} | {c['arena_bytes']:,} B | {c['lower_bound_bytes']:,} B |")
    return "\n".join(out) + "\n"


def report_files(compiled: Compiled, report: dict | None = None) -> dict[str, str]:
    from kwscc.report.svg import render_svg

    report = report if report is not None else build_report(compiled)
    svg = f"{compiled.name}_report.svg"
    return {
        f"{compiled.name}_report.json": to_json(report),
        f"{compiled.name}_report.md": format_markdown(report, svg),
        svg: render_svg(report),
    }


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)) + "\n"


__all__ = ["SCHEMA_VERSION", "build_report", "format_table", "format_markdown", "report_files", "to_json",
           "INPUT", "OUTPUT", "layer_span"]
