"""The compile pipeline, one call per stage: read, passes, calibrate, quantize, lower, plan, render."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from kwscc import __version__, progress
from kwscc.backends.base import get_backend
from kwscc.check.limits import check_arena
from kwscc.errors import DataError, KwsccError, UnsupportedError
from kwscc.frontends import read_model
from kwscc.ir import Graph
from kwscc.memory.planner import MemoryPlan, plan_memory
from kwscc.naming import c_comment, c_identifier, file_stem
from kwscc.passes import run_pipeline, without_pass
from kwscc.quant.from_int8 import quantize_int8_model
from kwscc.quant.quantize import QuantModel
from kwscc.quant.refine import REFINABLE_BACKENDS
from kwscc.streaming import check_streamable, streaming_model

log = logging.getLogger(__name__)

CPUS = ("cortex-m4", "cortex-m55", "generic", "cortex-m3", "cortex-m7", "cortex-m33")


@dataclass(slots=True)
class CompileOptions:
    calib: str | None = None
    name: str | None = None
    backend: str = "cmsis-nn"
    rounding: str = "default"
    cpu: str = "cortex-m4"
    weights: str = "per-channel"
    calib_method: str = "mse"
    ranges_file: str | None = None
    bias_correction: bool = True  # data-driven steps of kwscc.quant.refine (cmsis-nn backend)
    unsigned_relu: bool = True
    input_zero_point: bool = True
    split_input: str | None = None  # auto: where it does not raise the arena | on | off | None: as --optimize says
    optimize: str = "balanced"  # balanced | speed | ram | accuracy: split input and kernel choice
    kernels: str = "auto"  # auto: by the cost table | cmsis-nn | kwscc (every layer kwscc's kernels apply to)
    search_formats: bool = False
    legacy_softmax: str = "kwscc"
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    command: str = "kwscc"
    provisional_formats: bool = False  # a float model without data gets placeholder formats (kwscc report)
    streaming: int | None = None  # frames per NAME_run call, recurrent state kept between calls (kwscc.streaming)
    raise_recurrent: bool = True  # unrolled cells become one LSTM/GRU node (kwscc.passes.raise_recurrent)


@dataclass(slots=True)
class Compiled:
    model_path: Path
    source: Graph  # the model as read, before any pass
    qm: QuantModel
    calls: list
    plan: MemoryPlan
    name: str
    options: CompileOptions
    backend: object
    files: dict[str, str]
    provisional: bool = False  # formats are placeholders: no calibration data (sizes and MACs are exact)

    @property
    def graph(self) -> Graph:
        return self.qm.graph


def model_name(model: Path, options: CompileOptions) -> str:
    """The C prefix and file stem: from --name or the model file name, never a header's name."""
    ident = c_identifier(options.name or model.stem)
    name = file_stem(ident)
    if name != ident:
        log.warning("name '%s' would make %s.h shadow a system or CMSIS-NN header: the files and C prefix are "
                    "'%s' (choose another with --name)", ident, ident, name)
    return name


def check_one_input_one_output(graph: Graph) -> None:
    """The generated API has one input and one output buffer: refuse other graphs, naming their tensors."""
    for kind, names in (("input", graph.inputs), ("output", graph.outputs)):
        if len(names) != 1:
            listed = ", ".join(f"'{n}'" for n in names)
            raise UnsupportedError(f"the model has {len(names)} {kind}s ({listed}); kwscc compiles models with "
                                   "one input and one output")


# what each --optimize does with the split input (2x the first layer's MACs for a finer input), unless
# --split-input says: ram drops it, accuracy keeps it even where it raises the arena; speed keeps it where
# balanced does, as dropping it costs agreement (DS_CNN_S: 0.978 instead of 0.982 on the 2000 test clips)
SPLIT_INPUT_FOR = {"balanced": "auto", "speed": "auto", "ram": "off", "accuracy": "on"}


def compile_model(model: str | Path, options: CompileOptions) -> Compiled:
    model = Path(model)
    if options.split_input is None:
        options = replace(options, split_input=SPLIT_INPUT_FOR[options.optimize])
    backend = get_backend(options.backend, options)
    with progress.step(f"reading {model.name}"):
        source = read_model(model, options.input_shapes)
    check_one_input_one_output(source)
    with progress.step("optimising the graph"):
        graph = run_pipeline(source, None if options.raise_recurrent else without_pass("raise_recurrent"))
        backend.check(graph)
        if options.streaming is not None:
            check_streamable(graph, options.streaming, options.raise_recurrent)
    calibration = None
    if options.calib or options.ranges_file:  # calibration methods, --ranges JSON, data-driven steps
        from kwscc.quant.refine import calibrate_stage

        calibration = calibrate_stage(graph, options, model)
        with progress.step("quantizing"):
            qm = calibration.quantize(backend, options)
    elif graph.recorded_ranges and backend.name in REFINABLE_BACKENDS:  # formats from its own (scale, zp)
        # --optimize speed trades the file's exact weights (a multiplier per channel) for shift-only requantization
        qm = quantize_int8_model(graph, per_channel=options.weights == "per-channel", rounding=options.rounding,
                                 unsigned=options.unsigned_relu, keep_weights=options.optimize != "speed",
                                 split_input=options.split_input != "off")
    elif graph.recorded_ranges:  # a quantized model carries its own ranges
        qm = backend.quantize(graph, graph.recorded_ranges, per_channel=options.weights == "per-channel",
                              rounding=options.rounding)
    elif options.provisional_formats:
        from kwscc.quant.refine import provisional_calibration

        calibration = provisional_calibration(graph, model)
        qm = calibration.quantize(backend, options)
    else:
        raise DataError(f"{model.name} is a float model: give calibration data with --calib DATA")
    if options.streaming is not None:  # the whole clip's formats, so frame by frame equals the whole clip
        qm = streaming_model(qm, options.streaming)
        graph = qm.graph
    name = model_name(model, options)
    calls = backend.lower(qm, name, options.cpu)
    overlaps = backend.overlaps(calls)
    plan = plan_memory(graph, backend.scratch(calls, options.cpu), overlaps=overlaps)
    if qm.split is not None and options.split_input == "auto":
        # RAM first: keep the split input only if its first layer's filter fits under the arena's peak
        unsplit = plan_memory(graph, backend.scratch(calls, options.cpu, split=False), overlaps=overlaps)
        if unsplit.arena_size < plan.arena_size:
            log.info("split input dropped: it would raise the arena from %d to %d bytes (--split-input on keeps it)",
                     unsplit.arena_size, plan.arena_size)
            qm = calibration.quantize(backend, replace(options, split_input="off"))
            calls = backend.lower(qm, name, options.cpu)
            plan = plan_memory(graph, backend.scratch(calls, options.cpu), overlaps=backend.overlaps(calls))
    check_arena(plan.arena_size)
    step = {node: i for i, node in enumerate(plan.schedule)}
    calls = sorted(calls, key=lambda call: step[call.node.name])  # the C runs the layers in the planned order
    gen = {"version": __version__, "model_name": c_comment(model.name), "command": c_comment(options.command),
           "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    with progress.step("rendering C"):
        files = backend.render(qm, calls, plan, name, options.cpu, gen)
    return Compiled(model, source, qm, calls, plan, name, options, backend, files,
                    provisional=calibration is not None and calibration.provisional)


def _check_destinations(files: dict[str, str], out_dir: Path) -> None:
    """Refuse before writing anything if a destination or one of its folders is in the way."""
    for rel in files:
        path = out_dir / rel
        if path.is_dir():
            raise KwsccError(f"cannot write {path}: a directory is in the way")
        for parent in [path.parent, *path.parent.parents]:
            if parent.exists() and not parent.is_dir():
                raise KwsccError(f"cannot write {path}: {parent} is not a directory")


def write_outputs(files: dict[str, str], out_dir: str | Path) -> None:
    """Write files into out_dir all or nothing: staged in a hidden folder inside out_dir, then moved.

    Folders this call creates are removed again when writing fails or is interrupted (SIGINT, SIGTERM).
    """
    if not str(out_dir).strip():
        raise KwsccError("the output directory name is empty")
    try:
        out_dir = Path(out_dir).absolute()
        _check_destinations(files, out_dir)
        first_new = next((p for p in reversed([out_dir, *out_dir.parents]) if not p.exists()), None)
    except OSError as exc:  # a name too long, a loop of symlinks, no permission
        raise KwsccError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    stage = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".kwscc-", dir=out_dir))
        for rel, text in files.items():
            path = stage / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for rel in files:
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, out_dir / rel)
    except BaseException as exc:
        if first_new is not None:
            shutil.rmtree(first_new, ignore_errors=True)
        if isinstance(exc, OSError):
            raise KwsccError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
        raise
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


def output_files(compiled: Compiled, with_host_kernels: bool, report_files: dict[str, str]) -> dict[str, str]:
    files = dict(compiled.files)
    files.update(report_files)
    if with_host_kernels:
        host = compiled.backend.host_files(compiled.qm.rounding)
        files.update({f"{compiled.backend.host_dir_name}/{n}": text for n, text in host.items()})
    return files
