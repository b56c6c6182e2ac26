"""The memory timeline as a self-contained SVG: arena occupancy per step, each buffer a coloured bar.

x is the execution order (one column per step of the plan, labelled with the layer number the C and the
tables use; reshapes are aliases without a number; a layer reading other layers than the one before it,
where branches of the graph meet, lists them: "7 Add <- 4, 6"), y the byte offset in the arena (0 at
the bottom). Every buffer of the plan is one rectangle spanning its lifetime, with a tooltip
(<title>) naming the tensors it holds; scratch buffers are hatched. A black step line is the bytes
alive at each step, a dashed line the lower bound. Below, two lanes show the caller's input and
output buffers, which live outside the arena. Plain SVG 1.1: no script, no external resource.
"""
from __future__ import annotations

from kwscc.naming import printable
from kwscc.report.report import layer_span

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#86bcb6", "#d37295", "#a0cbe8", "#ffbe7d", "#8cd17d", "#f1ce63", "#79706e")
LEFT, RIGHT, TOP, PLOT_H = 84, 300, 78, 420
LANE_H, LANE_GAP = 16, 6
MIN_BAR_H = 6.0  # px: a buffer of a few bytes in a large arena stays visible
CHAR_W = 6.2  # px per character of the 10 px labels (a generous average, so a label never spills out)


def _attr(value) -> str:
    """Text of the model (names) as valid XML: unprintable characters shown as \\xNN, then escaped."""
    text = printable(str(value))  # xml.sax.saxutils.escape's replacements (it imports urllib and ssl: 0.05 s)
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;").replace('"', "&quot;")


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else "…" + name[-(n - 1):]


def _fit(text: str, width: float) -> str | None:
    """text cut with an ellipsis to fit `width` px, or None when too little of it would remain."""
    chars = int((width - 8) // CHAR_W)
    if len(text) <= chars:
        return text
    return text[:chars - 1] + "…" if chars >= 6 else None


def _writer(step: int, ops: list[str], layer_of_step: dict[int, int]) -> str:
    """'3 Conv': the layer (numbered as in the C and the tables) that runs at a step, or 'Reshape' for an alias."""
    op = ops[step] if step < len(ops) else "?"
    return f"{layer_of_step[step]} {op}" if step in layer_of_step else op


def _joins(layer: dict | None) -> str:
    """' <- 0, 2' for a layer that reads something other than the previous layer alone (a branch joins)."""
    if layer is None:
        return ""
    sources = layer.get("input_layers", [])
    if len(sources) <= 1 and sources in ([], [None], [layer["index"] - 1]):
        return ""
    return " \u2190 " + ", ".join("in" if s is None else str(s) for s in sources)


def _label(buffer: dict, ops: list[str], layer_of_step: dict[int, int]) -> str:
    """'2 Conv: 8,000 B': the layer that writes the buffer, its op and the size."""
    kind = "scratch of " if buffer["kind"] == "scratch" else ""
    return f"{kind}{_writer(buffer['first_step'], ops, layer_of_step)}: {buffer['bytes']:,} B"


def _box_label(buffer: dict, ops: list[str], layer_of_step: dict[int, int], width: float) -> str | None:
    """The full label if it fits the box, else the size alone (the legend has the rest), else a cut label."""
    full = _label(buffer, ops, layer_of_step)
    size = f"{buffer['bytes']:,} B"
    for text in (full, size):
        if _fit(text, width) == text:
            return text
    return _fit(full, width)


def _ticks(top: int) -> list[int]:
    if top <= 0:
        return [0]
    raw = top / 5
    mag = 10 ** (len(str(int(raw))) - 1)
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [int(i * step) for i in range(int(top // step) + 1)]


def render_svg(report: dict) -> str:
    plan = report["plan"]
    steps = len(plan["schedule"])
    ops = plan.get("schedule_ops", ["?"] * steps)
    layer_of_step = {layer["step"]: layer["index"] for layer in report["layers"]}

    def layers(first_step: int, last_step: int) -> str:
        first, last = layer_span(report, first_step, last_step)
        return f"layer {first}" if first == last else f"layers {first}-{last}"
    arena = max(report["arena_bytes"], 1)
    col = max(36, min(72, 900 // max(steps, 1)))
    plot_w = col * max(steps, 1)
    width = LEFT + plot_w + RIGHT
    label_h = 100
    lanes_y = TOP + PLOT_H + label_h
    height = lanes_y + 2 * (LANE_H + LANE_GAP) + 40

    def x(step: float) -> float:
        return LEFT + step * col

    def y(byte: float) -> float:
        return TOP + PLOT_H - byte * PLOT_H / arena

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
        "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#d9d9d9\"/>"
        "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#7f7f7f\" stroke-width=\"2\"/></pattern></defs>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{_attr(report["model"])}: arena '
        f'{report["arena_bytes"]:,} B, lower bound {report["arena_lower_bound_bytes"]:,} B, efficiency '
        f'{100 * report["arena_efficiency"]:.1f} %</text>',
        f'<text x="{LEFT}" y="44" fill="#444">{_attr(report["cpu"])} ({_attr(report["cpu_build"])} build), '
        f'allocator {_attr(report["allocator"])}, order {_attr(plan["schedule_method"])}'
        f'{" (optimal)" if plan["schedule_optimal"] else ""}; each bar is one buffer over the steps it is alive; '
        f'hover for details</text>',
    ]
    # grid and axes
    for tick in _ticks(arena):
        ty = y(tick)
        out.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + plot_w}" y2="{ty:.1f}" stroke="#eeeeee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#444">{tick:,}</text>')
    out.append(f'<text x="16" y="{TOP + PLOT_H / 2:.0f}" transform="rotate(-90 16 {TOP + PLOT_H / 2:.0f})" '
               f'text-anchor="middle" fill="#444">arena offset (bytes)</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{PLOT_H}" fill="none" stroke="#999"/>')
    # buffers
    colours: dict[str, str] = {}
    activations = [b for b in report["buffers"] if b["kind"] == "activation"]
    for i, b in enumerate(activations):
        colours[b["name"]] = PALETTE[i % len(PALETTE)]
    for b in report["buffers"]:
        x0, x1 = x(b["first_step"]) + 1, x(b["last_step"] + 1) - 1
        y0, y1 = y(b["offset"] + b["bytes"]), y(b["offset"])
        h = max(y1 - y0, MIN_BAR_H)
        y0 = min(y0, y1 - h)
        fill = "url(#hatch)" if b["kind"] == "scratch" else colours[b["name"]]
        tensors = ", ".join(b["tensors"]) or "-"
        tip = (f"{b['name']} ({b['kind']}): {b['bytes']:,} B at offset {b['offset']:,}, "
               f"{layers(b['first_step'], b['last_step'])}; tensors: {tensors}")
        out.append(f'<g class="buffer" data-name="{_attr(b["name"])}"><title>{_attr(tip)}</title>'
                   f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0, 1):.1f}" height="{h:.1f}" fill="{fill}" '
                   f'fill-opacity="0.85" stroke="#333" stroke-width="0.6"/>')
        label = _box_label(b, ops, layer_of_step, x1 - x0) if h >= 13 else None
        if label:
            out.append(f'<text x="{x0 + 4:.1f}" y="{y0 + min(h / 2 + 4, 14):.1f}" fill="#111" font-size="10">'
                       f'{_attr(label)}</text>')
        out.append("</g>")
    # occupancy and bounds
    occ = plan.get("occupancy_bytes", [])
    if occ:
        pts = []
        for s, v in enumerate(occ):
            pts += [f"{x(s):.1f},{y(v):.1f}", f"{x(s + 1):.1f},{y(v):.1f}"]
        out.append(f'<polyline class="occupancy" points="{" ".join(pts)}" fill="none" stroke="#000" '
                   f'stroke-width="1.6"><title>bytes alive at each step</title></polyline>')
    lb = y(report["arena_lower_bound_bytes"])
    out.append(f'<line x1="{LEFT}" y1="{lb:.1f}" x2="{LEFT + plot_w}" y2="{lb:.1f}" stroke="#c00" '
               f'stroke-dasharray="6 4" stroke-width="1.4"/>')
    out.append(f'<text x="{LEFT + plot_w + 6}" y="{lb + 4:.1f}" fill="#c00">lower bound '
               f'{report["arena_lower_bound_bytes"]:,} B</text>')
    if report["arena_bytes"] != report["arena_lower_bound_bytes"]:
        out.append(f'<text x="{LEFT + plot_w + 6}" y="{y(arena) + 4:.1f}" fill="#333">arena '
                   f'{report["arena_bytes"]:,} B</text>')
    # step labels
    layer_at = {layer["step"]: layer for layer in report["layers"]}
    for s in range(steps):
        cx = x(s) + col / 2
        name = layer_at[s]["name"] if s in layer_at else plan["schedule"][s]
        text = _writer(s, ops, layer_of_step) + ("" if s in layer_at else " (alias)") + _joins(layer_at.get(s))
        ly = TOP + PLOT_H + 12
        out.append(f'<text x="{cx:.1f}" y="{ly}" transform="rotate(-50 {cx:.1f} {ly})" text-anchor="end" '
                   f'fill="#222"><title>{_attr(name)}</title>{_attr(text)}</text>')
    # caller's buffers, outside the arena
    lanes = [("input", report["input_bytes"], [l["step"] for l in report["layers"] if "input" in l["input_locations"]]),
             ("output", report["output_bytes"], [l["step"] for l in report["layers"] if l["output_location"] == "output"])]
    for i, (kind, size, used) in enumerate(lanes):
        ly = lanes_y + i * (LANE_H + LANE_GAP)
        out.append(f'<text x="{LEFT - 6}" y="{ly + 12}" text-anchor="end" fill="#444">{kind}</text>')
        if not used:
            continue
        first, last = (min(used), max(used)) if kind == "input" else (min(used), steps - 1)
        box_w = x(last + 1) - x(first) - 2
        text = f"caller's {kind} {size:,} B"
        inside = _fit(text, box_w) == text
        text_x = x(first) + 4 if inside else x(last + 1) + 4  # beside the box when it does not fit inside
        out.append(f'<g class="caller-buffer" data-name="{kind}"><title>caller\'s {kind} buffer: {size:,} B, '
                   f'outside the arena, {layers(first, last)}</title>'
                   f'<rect x="{x(first) + 1:.1f}" y="{ly}" width="{box_w:.1f}" height="{LANE_H}" '
                   f'fill="#bbbbbb" stroke="#333" stroke-width="0.6"/>'
                   f'<text x="{text_x:.1f}" y="{ly + 12}" font-size="10">{_attr(text)}</text></g>')
    # legend
    lx = LEFT + plot_w + 12
    out.append(f'<text x="{lx}" y="{TOP + 30}" font-weight="bold">buffers</text>')
    for i, b in enumerate(report["buffers"]):
        ly = TOP + 44 + i * 15
        if ly > TOP + PLOT_H + label_h - 10:
            out.append(f'<text x="{lx}" y="{ly}" fill="#444">… {len(report["buffers"]) - i} more</text>')
            break
        fill = "url(#hatch)" if b["kind"] == "scratch" else colours[b["name"]]
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{fill}" stroke="#333" stroke-width="0.6"/>'
                   f'<text x="{lx + 14}" y="{ly}"><title>{_attr(b["name"])}</title>'
                   f'{_attr(_fit(_label(b, ops, layer_of_step) + ", " + layers(b["first_step"], b["last_step"]), RIGHT - 26) or "")}'
                   f'</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
