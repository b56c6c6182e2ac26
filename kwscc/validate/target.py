"""Validation on emulated Cortex-M cores (kwscc validate --target cortex-m3|m4|m33|m55) and against a user's
CMSIS-NN checkout (--cmsis-nn DIR, host or Cortex-M).

For a Cortex-M target the generated C, the CMSIS-NN kernels (kwscc's own pure-C implementation, or the
user's CMSIS-NN, which then takes its DSP or MVE path) and a harness with kwscc's start-up code, linker
script and semihosting I/O (templates/target/) are built with arm-none-eabi-gcc for the core, and run under
qemu-system-arm on the matching board. One QEMU run reads every sample from a file through semihosting and
writes the int8 outputs back. Around each inference the harness checks guard bytes after the arena and the
output and measures the stack it painted; a fault is reported with the faulting function and layer.

Instructions are counted exactly by a small TCG plugin (templates/target/count_plugin.c.j2, built for the
host) that counts every executed guest instruction and records the count each time kwscc_mark() starts;
the generated code calls it after every layer when built with -DKWSCC_LAYER_HOOK (a measurement build
only). Flash and RAM come from the linker map, split into model code, weights, arena and kernels.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kwscc.codegen import environment
from kwscc.driver import Compiled, output_files, write_outputs
from kwscc.errors import DataError, ToolError
from kwscc.streaming import calls_per_clip
from kwscc.validate.cmsis_nn import CmsisNN, compile_objects, needed_sources, object_name

log = logging.getLogger(__name__)

APT_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
MiB, KiB = 1 << 20, 1 << 10


@dataclass(frozen=True)
class Board:
    target: str
    machine: str  # qemu-system-arm -M
    cpu: str  # qemu-system-arm -cpu
    cflags: tuple[str, ...]
    flash: tuple[int, int]  # origin, bytes
    ram: tuple[int, int]
    build: str  # CMSIS-NN code path the core selects: c | dsp | mve
    fpu: bool
    mve: bool = False
    v8m: bool = False


BOARDS = {
    "cortex-m3": Board("cortex-m3", "mps2-an385", "cortex-m3", ("-mcpu=cortex-m3", "-mfloat-abi=soft"),
                       (0x00000000, 4 * MiB), (0x20000000, 4 * MiB), "c", fpu=False),
    "cortex-m4": Board("cortex-m4", "mps2-an386", "cortex-m4",
                       ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
                       (0x00000000, 4 * MiB), (0x20000000, 4 * MiB), "dsp", fpu=True),
    "cortex-m33": Board("cortex-m33", "mps2-an505", "cortex-m33",
                        ("-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"),
                        (0x10000000, 4 * MiB), (0x38000000, 4 * MiB), "dsp", fpu=True, v8m=True),
    "cortex-m55": Board("cortex-m55", "mps3-an547", "cortex-m55", ("-mcpu=cortex-m55", "-mfloat-abi=hard"),
                        (0x00000000, 512 * KiB), (0x20000000, 512 * KiB), "mve", fpu=True, mve=True, v8m=True),
}
TARGETS = tuple(BOARDS)

OPT = "-O2"
COMMON_CFLAGS = ("-mthumb", "-g", "-ffunction-sections", "-fdata-sections", "-fno-common")
GENERATED_WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
RUNTIME_WARNINGS = ("-std=gnu99", "-Wall", "-Wextra", "-Werror")
STACK_BYTES = 32 * KiB
GUARD_BYTES = 64
FAULT_STATUS = 99
INPUT_FILE, OUTPUT_FILE, COUNTS_FILE = "kwscc_in.f32", "kwscc_out.i8", "kwscc_counts.txt"
HARNESS_ERRORS = {2: "harness I/O error", 3: "the model failed", 4: "the model overflowed its arena",
                  5: "the model overflowed its output", 6: "stack overflow", 7: "the model wrote into its input"}


# ------------------------------------------------------------------------------------------ tools

@dataclass(frozen=True)
class Tools:
    gcc: str
    nm: str
    addr2line: str
    qemu: str
    host_cc: str


def missing_tools() -> list[str]:
    """What is missing to run on an emulated Cortex-M, as Debian package names (empty when all is there)."""
    missing = []
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        missing.append("gcc-arm-none-eabi")
    else:
        nano = subprocess.run([gcc, "-print-file-name=nano.specs"], capture_output=True, text=True).stdout.strip()
        if not Path(nano).is_file():
            missing.append("libnewlib-arm-none-eabi")
    if shutil.which("qemu-system-arm") is None:
        missing.append("qemu-system-arm")
    return missing


def find_tools() -> Tools:
    missing = missing_tools()
    if missing:
        raise ToolError(f"running on an emulated Cortex-M needs the Arm GNU toolchain, newlib and QEMU; missing: "
                        f"{', '.join(missing)} (Debian/Ubuntu: apt-get install {' '.join(APT_PACKAGES)})")
    host_cc = next((shutil.which(cc) for cc in ("cc", "gcc", "clang") if shutil.which(cc)), None)
    if host_cc is None:
        raise ToolError("counting instructions needs a host C compiler (cc, gcc or clang) for kwscc's QEMU plugin")
    return Tools(shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-nm") or "arm-none-eabi-nm",
                 shutil.which("arm-none-eabi-addr2line") or "arm-none-eabi-addr2line",
                 shutil.which("qemu-system-arm"), host_cc)


# ------------------------------------------------------------------------------------------ entry point

def run_on_target(compiled: Compiled, x: np.ndarray, target: str, cmsis_nn_dir: str | None = None,
                  timeout: float | None = None, keep: str | os.PathLike | None = None,
                  sanitize: bool = False) -> tuple[np.ndarray, dict]:
    """int8 outputs [samples, outputs] of the compiled model on float samples x [samples, inputs], run on
    `target` (a Cortex-M core under QEMU, or "host" with cmsis_nn_dir), and what the run measured.
    keep: a directory to build in and leave behind for inspection (default: $KWSCC_TARGET_BUILD_DIR if
    set, else a temporary directory)."""
    if x.shape[0] == 0:
        raise DataError("no samples to run")
    if sanitize and target != "host":
        raise ToolError(f"--sanitize builds with the host compiler's ASan and UBSan: it runs on --target host only, "
                        f"not on {target}")
    keep = keep if keep is not None else os.environ.get("KWSCC_TARGET_BUILD_DIR") or None
    lib = compiled.backend.open_library(cmsis_nn_dir) if cmsis_nn_dir is not None else None
    x = np.ascontiguousarray(np.asarray(x, np.float32).reshape(x.shape[0], -1))
    with tempfile.TemporaryDirectory(prefix="kwscc-target-") as tmp:
        work = Path(keep) if keep is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if target == "host":
            if lib is None:
                raise ToolError("run_on_target(host) needs a CMSIS-NN checkout")
            return _run_host(compiled, x, work, lib, sanitize)
        if target not in BOARDS:
            raise ToolError(f"unknown target '{target}': one of host, {', '.join(TARGETS)}")
        return _run_board(compiled, x, BOARDS[target], work, lib, timeout)


def _run_host(compiled: Compiled, x: np.ndarray, work: Path, lib: CmsisNN,
              sanitize: bool) -> tuple[np.ndarray, dict]:
    from kwscc.validate.cmsis_nn import build_host_program
    from kwscc.validate.host import run_host_program

    prog = build_host_program(compiled, work, lib, sanitize)
    out = run_host_program(prog, x, _output_size(compiled))
    return out, {"kernels": lib.describe(), "cmsis_nn_version": lib.version}


def _output_size(compiled: Compiled) -> int:
    return compiled.graph.tensors[compiled.graph.outputs[0]].size


def check_build_matches(compiled: Compiled, board: Board, lib: CmsisNN | None) -> None:
    """Scratch buffers are sized for the CMSIS-NN build of --cpu: the real library on this core needs them
    sized for the core's own build. kwscc's host kernels are pure C and need at most what any build asks."""
    build = compiled.backend.kernel_build(compiled.options.cpu)
    if lib is not None and build != board.build:
        raise ToolError(f"the model was compiled for --cpu {compiled.options.cpu} (CMSIS-NN's {build} build) but "
                        f"{board.target} runs CMSIS-NN's {board.build} build, whose scratch buffers differ: "
                        f"compile with --cpu {board.target}")
    if build != board.build:
        log.info("model compiled for --cpu %s, run on %s with kwscc's pure-C kernels", compiled.options.cpu,
                 board.target)


# ------------------------------------------------------------------------------------------ build

def _render(template: str, **view) -> str:
    return environment().get_template(f"target/{template}").render(**view)


def build_image(compiled: Compiled, board: Board, work: Path, lib: CmsisNN | None, tools: Tools) -> dict:
    """Write and build the firmware image in `work`; returns paths and the kernel description."""
    name = compiled.name
    view = {"name": name, "NAME": name.upper(), "board": board, "layers": len(compiled.calls),
            "guard_bytes": GUARD_BYTES, "stack_size": STACK_BYTES, "fault_status": FAULT_STATUS,
            "input_file": INPUT_FILE, "output_file": OUTPUT_FILE,
            "reset_every": calls_per_clip(compiled.qm) if compiled.qm.streaming else 0}
    src = work / "src"
    write_outputs(output_files(compiled, lib is None, {}), src)
    runtime = {"kwscc_semihost.h": "semihost.h.j2", "kwscc_semihost.c": "semihost.c.j2",
               "kwscc_startup.c": "startup.c.j2", "kwscc_harness.c": "harness.c.j2",
               "kwscc_target_hooks.h": "hooks.h.j2"}
    for file, template in runtime.items():
        (src / file).write_text(_render(template, **view))
    (work / "link.ld").write_text(_render("link.ld.j2", **view))

    base = [tools.gcc, *COMMON_CFLAGS, *board.cflags, OPT]
    defines = ["-DCMSIS_NN_USE_SINGLE_ROUNDING"] if (lib is not None and compiled.qm.rounding == "single") else []
    if lib is None:
        kernel_dir = src / compiled.backend.host_dir_name
        kernel_sources, kernel_base = sorted(kernel_dir.glob("*.c")), kernel_dir
        kernel_cmd = [*base, *GENERATED_WARNINGS, f"-I{kernel_dir}"]
        model_inc = [f"-I{kernel_dir}"]
        kernels = f"kwscc host kernels ({compiled.backend.host_dir_name}, pure C)"
    else:
        kernel_sources, kernel_base = needed_sources(compiled, lib, board.build), lib.root
        kernel_cmd = [*base, "-std=gnu11", *defines, *lib.kernel_flags(board.build, host=False)]
        model_inc = lib.model_flags(board.build, host=False)
        kernels = lib.describe()
    obj = work / "obj"
    # kwscc_target_hooks.h defines KWSCC_LAYER_HOOK: the model calls kwscc_mark() after every layer
    model_cmd = [*base, *GENERATED_WARNINGS, *defines, f"-I{src}", *model_inc,
                 "-include", str(src / "kwscc_target_hooks.h")]
    runtime_cmd = [*base, *RUNTIME_WARNINGS, f"-I{src}", *model_inc]
    jobs = [(model_cmd, src / f"{name}.c", obj / "model" / f"{name}.o")]
    jobs += [(runtime_cmd, src / f, obj / "runtime" / f.replace(".c", ".o")) for f in runtime if f.endswith(".c")]
    jobs += [(kernel_cmd, s, obj / "kernels" / object_name(s, kernel_base)) for s in kernel_sources]
    compile_objects(jobs)

    elf, map_file = work / "kwscc_image.elf", work / "kwscc_image.map"
    link = [*base, "-T", str(work / "link.ld"), "--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections",
            f"-Wl,-Map={map_file}", "-Wl,--no-warn-rwx-segments", *[str(o) for _, _, o in jobs], "-o", str(elf)]
    result = subprocess.run(link, capture_output=True, text=True)
    if result.returncode != 0 and "--no-warn-rwx-segments" in result.stderr:
        link.remove("-Wl,--no-warn-rwx-segments")  # binutils < 2.39
        result = subprocess.run(link, capture_output=True, text=True)
    if result.returncode != 0:
        hint = (f" (the image does not fit {board.machine}: FLASH {board.flash[1] // KiB} KiB at {board.flash[0]:#x}, "
                f"RAM {board.ram[1] // KiB} KiB at {board.ram[0]:#x})" if "overflowed" in result.stderr else "")
        raise ToolError(f"linking the {board.target} image failed{hint}:\n{result.stderr.strip()[:4000]}")
    return {"elf": elf, "map": map_file, "kernels": kernels,
            "cflags": " ".join([*COMMON_CFLAGS, *board.cflags, OPT, *defines])}


def build_plugin(work: Path, tools: Tools) -> Path:
    src, lib = work / "kwscc_count_plugin.c", work / "libkwscc_count.so"
    src.write_text(_render("count_plugin.c.j2"))
    result = subprocess.run([tools.host_cc, "-std=gnu99", "-O2", "-shared", "-fPIC", str(src), "-o", str(lib)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolError(f"kwscc's QEMU counting plugin did not build:\n{result.stderr.strip()[:2000]}")
    return lib


def symbols(elf: Path, tools: Tools) -> dict[str, tuple[int, int]]:
    """{name: (address, size)} of the image's symbols (Thumb bit cleared)."""
    out = subprocess.run([tools.nm, "-S", "--defined-only", str(elf)], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            table[parts[3]] = (int(parts[0], 16) & ~1, int(parts[1], 16))
        elif len(parts) == 3:
            table.setdefault(parts[2], (int(parts[0], 16) & ~1, 0))
    return table


# ------------------------------------------------------------------------------------------ run

def _run_board(compiled: Compiled, x: np.ndarray, board: Board, work: Path, lib: CmsisNN | None,
               timeout: float | None) -> tuple[np.ndarray, dict]:
    tools = find_tools()
    check_build_matches(compiled, board, lib)
    image = build_image(compiled, board, work, lib, tools)
    syms = symbols(image["elf"], tools)
    arena_symbol = f"{compiled.name}_arena"
    if syms.get(arena_symbol, (None,))[0] != syms.get("__kwscc_arena_start", (-1,))[0]:
        raise ToolError(f"the linker did not place {arena_symbol} before the guard bytes (section .bss.{arena_symbol})")
    plugin = build_plugin(work, tools)
    samples = x.shape[0]
    (work / INPUT_FILE).write_bytes(x.tobytes())
    for stale in (OUTPUT_FILE, COUNTS_FILE):
        (work / stale).unlink(missing_ok=True)
    if timeout is None:
        timeout = float(os.environ.get("KWSCC_QEMU_TIMEOUT", 60 + 0.5 * samples))
    cmd = [tools.qemu, "-M", board.machine, "-cpu", board.cpu, "-nographic", "-monitor", "none", "-serial", "null",
           "-semihosting-config", "enable=on,target=native",
           "-plugin", f"{plugin},mark={syms['kwscc_mark'][0]:#x},out={COUNTS_FILE}",
           "-kernel", str(image["elf"])]
    log.debug("running %s", " ".join(cmd))
    try:
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{board.target}: QEMU ({board.machine}) did not finish within {timeout:.0f} s "
                        f"({samples} samples): the program hangs or is too slow (set KWSCC_QEMU_TIMEOUT)") from None
    _check_status(result, compiled, board, image, tools)
    report = dict(re.findall(r"(\w+)=(\d+)", next((line for line in result.stdout.splitlines()
                                                  if line.startswith("kwscc-result")), "")))
    if int(report.get("samples", -1)) != samples:
        raise ToolError(f"{board.target}: the harness ran {report.get('samples', 'no')} samples of {samples}:\n"
                        f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    _check_arena_declared(compiled, board)
    out = np.fromfile(work / OUTPUT_FILE, np.int8)
    size = _output_size(compiled)
    if out.size != samples * size:
        raise ToolError(f"{board.target}: expected {samples * size} output bytes, got {out.size}")
    measured = {"target": board.target, "board": board.machine, "kernels": image["kernels"],
                "cflags": image["cflags"]}
    if lib is not None:
        measured["cmsis_nn_version"] = lib.version
    measured.update(_instructions(compiled, work / COUNTS_FILE, samples))
    measured.update(memory(compiled, image["map"].read_text(), int(report["stack"]), int(report["stack_reserved"])))
    return out.reshape(samples, size), measured


def _check_status(result: subprocess.CompletedProcess, compiled: Compiled, board: Board, image: dict,
                  tools: Tools) -> None:
    status = result.returncode
    if status == 0:
        return
    text = (result.stdout + result.stderr).strip()
    if status == FAULT_STATUS and "kwscc-fault:" in text:
        line = next(line for line in text.splitlines() if "kwscc-fault:" in line)
        fields = dict(re.findall(r"(\w+)=(-?\w+)", line))
        kind = line.split("kwscc-fault:")[1].split()[0]
        syms = symbols(image["elf"], tools)
        sp = int(fields.get("sp", "0"), 16)
        if sp < syms["__kwscc_stack_limit"][0] + 32 or "cfsr" in fields and int(fields["cfsr"], 16) & (1 << 20):
            kind += f" (stack overflow: sp {sp:#x} is at or below the {STACK_BYTES}-byte stack's limit)"
            where = "(frame lost)"
        else:
            where = "in " + _function_at(image["elf"], fields.get("pc", "0"), tools)
        raise ToolError(f"{board.target}: {kind} {where} {_progress(compiled, int(fields.get('progress', -3)))}"
                        f" on sample {fields.get('sample')}: {line.split('kwscc-fault:')[1].strip()}")
    errors = [line for line in text.splitlines() if line.startswith("kwscc-error:")]
    if status in HARNESS_ERRORS and errors:
        raise ToolError(f"{board.target}: {HARNESS_ERRORS[status]}: {errors[0][len('kwscc-error: '):]}")
    lockup = re.search(r"Lockup.*?R13=([0-9a-fA-F]+)", text, re.S)
    if lockup:  # QEMU aborts (SIGABRT) when a fault cannot be escalated, e.g. a fault while stacking one
        sp = int(lockup.group(1), 16)
        if sp < symbols(image["elf"], tools)["__kwscc_stack_limit"][0] + 32:
            raise ToolError(f"{board.target}: stack overflow: the CPU locked up with sp {sp:#x} below the "
                            f"{STACK_BYTES}-byte stack (a fault while stacking a fault)")
        raise ToolError(f"{board.target}: the CPU locked up (a fault inside the fault handler), sp {sp:#x}:\n"
                        f"{text[:1500]}")
    raise ToolError(f"{board.target}: QEMU ({board.machine}) ended with status {status}:\n{text[-3000:]}")


def _check_arena_declared(compiled: Compiled, board: Board) -> None:
    """The guard bytes only see what the kernels really write: scratch sized for another build (DSP or MVE)
    may stay untouched by the kernels that ran. So the arena the C declares is also checked against the
    memory plan: a smaller one is a failure even when no overflow was observed."""
    match = re.search(rf"#define {compiled.name.upper()}_ARENA_SIZE (\d+)", compiled.files.get(f"{compiled.name}.h", ""))
    declared = int(match.group(1)) if match else -1
    if declared < compiled.plan.arena_size:
        raise ToolError(f"{board.target}: {compiled.name}.h declares a {declared}-byte arena but the memory plan "
                        f"needs {compiled.plan.arena_size} bytes (no overflow was observed on this core with these "
                        f"kernels, but another build of CMSIS-NN would overflow)")


def _function_at(elf: Path, pc: str, tools: Tools) -> str:
    try:
        out = subprocess.run([tools.addr2line, "-f", "-e", str(elf), pc], capture_output=True, text=True,
                             timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return pc
    return f"{out[0]} ({Path(out[1]).name}, pc {pc})" if len(out) >= 2 and out[0] != "??" else f"pc {pc}"


def _progress(compiled: Compiled, progress: int) -> str:
    layers = len(compiled.calls)
    if progress == -2:
        return f"while quantizing the input ({compiled.name}_quantize_input)"
    if -1 <= progress < layers - 1:
        call = compiled.calls[progress + 1]
        return f"during layer {progress + 1} ({call.node.op} '{call.node.name}', {call.function})"
    if progress == layers - 1:
        return f"after the last layer ({compiled.name}_run returning)"
    return "in the harness"


# ------------------------------------------------------------------------------------------ measurements

def _instructions(compiled: Compiled, counts_file: Path, samples: int) -> dict:
    """Instruction counts from the plugin's marks: per sample, [quantize, run, layer 0..L-1 done, end]."""
    if not counts_file.is_file():
        raise ToolError("the QEMU counting plugin wrote no counts (is plugin support enabled in this QEMU?)")
    lines = counts_file.read_text().splitlines()
    marks = np.array([int(v) for v in lines if v.isdigit()], np.int64)  # then "total N"
    # a backend whose template has no KWSCC_LAYER_HOOK gives the whole inference only
    hooked = "KWSCC_LAYER_HOOK" in compiled.files.get(f"{compiled.name}.c", "")
    layers = len(compiled.calls) if hooked else 0
    per_sample = layers + 3
    if marks.size != samples * per_sample:
        raise ToolError(f"the counting plugin recorded {marks.size} marks, expected {samples * per_sample}")
    marks = marks.reshape(samples, per_sample)
    quantize = marks[:, 1] - marks[:, 0]
    inference = marks[:, -1] - marks[:, 1]
    per_layer = np.diff(marks[:, 1:-1], axis=1)  # run start -> layer 0 done -> ... -> layer L-1 done
    macs = [int(call.macs) for call in compiled.calls]
    total_macs = sum(macs)
    mean = float(inference.mean())
    return {
        "instructions_per_inference": int(round(mean)),
        "instructions_per_inference_min": int(inference.min()),
        "instructions_per_inference_max": int(inference.max()),
        "instructions_quantize_input": int(round(float(quantize.mean()))),
        "macs_per_inference": total_macs,
        "instructions_per_mac": mean / total_macs if total_macs else None,
        "instructions_per_layer": [
            {"index": i, "name": call.node.name, "op": call.node.op, "function": call.function,
             "macs": macs[i], "instructions": int(round(float(per_layer[:, i].mean())))}
            for i, call in enumerate(compiled.calls)] if hooked else None,
        "instruction_counting": "exact: every guest instruction QEMU executed (kwscc TCG plugin), mean over samples",
    }


FLASH_SECTIONS = (".text", ".ARM.exidx", ".init_array", ".data")
RAM_SECTIONS = (".data", ".bss")


def parse_map(text: str) -> list[tuple[str, str, int, int, str]]:
    """(output section, input section, address, size, object) of every input section in a GNU ld map."""
    start = text.find("Linker script and memory map")
    entries, out_sec, pending = [], None, None
    hexnum = re.compile(r"^0x[0-9a-fA-F]+$")
    for line in text[start:].splitlines()[1:]:
        if not line.strip():
            continue
        parts = line.split()
        if not line[0].isspace():
            out_sec, pending = parts[0], None
            continue
        if line[1] != " " and not line.startswith(" *("):  # an input section, or *fill*
            if len(parts) >= 3 and hexnum.match(parts[1]) and hexnum.match(parts[2]):
                entries.append((out_sec, parts[0], int(parts[1], 16), int(parts[2], 16), " ".join(parts[3:])))
                pending = None
            else:
                pending = parts[0] if len(parts) == 1 else None
        elif pending is not None:
            if len(parts) >= 3 and hexnum.match(parts[0]) and hexnum.match(parts[1]):
                entries.append((out_sec, pending, int(parts[0], 16), int(parts[1], 16), " ".join(parts[2:])))
            pending = None
    return entries


def memory(compiled: Compiled, map_text: str, stack: int, stack_reserved: int) -> dict:
    """Flash and RAM of the linked image from its map: model code, weights, arena, kernels, and the rest
    (harness, start-up code, semihosting, libc, libgcc), which a deployment replaces with its own."""
    arena_section = f".bss.{compiled.name}_arena"
    flash = dict.fromkeys(("model_code", "weights", "kernels", "harness_and_runtime"), 0)
    ram = dict.fromkeys(("arena", "model_other", "kernels", "harness_and_runtime"), 0)
    for out_sec, in_sec, _addr, size, obj in parse_map(map_text):
        owner = ("model" if f"{os.sep}obj{os.sep}model{os.sep}" in obj else
                 "kernels" if f"{os.sep}obj{os.sep}kernels{os.sep}" in obj else "harness_and_runtime")
        if out_sec in FLASH_SECTIONS:
            if owner == "model":
                flash["weights" if in_sec.startswith(".rodata") else "model_code"] += size
            else:
                flash[owner] += size
        if out_sec in RAM_SECTIONS:
            if owner == "model":
                ram["arena" if in_sec == arena_section else "model_other"] += size
            else:
                ram[owner] += size
    flash["model_total"] = flash["model_code"] + flash["weights"] + flash["kernels"]
    flash["image"] = flash["model_total"] + flash["harness_and_runtime"]
    ram["model_total"] = ram["arena"] + ram["model_other"] + ram["kernels"]
    ram["image"] = ram["model_total"] + ram["harness_and_runtime"]
    return {"flash_bytes": flash, "ram_bytes": ram, "stack_bytes": stack, "stack_bytes_reserved": stack_reserved,
            "stack_measurement": "painted stack: deepest use by one {0}_run call (max over samples)".format(compiled.name)}


def format_measurements(result: dict) -> list[str]:
    """Summary lines of a Cortex-M run for `kwscc validate`."""
    flash, ram = result["flash_bytes"], result["ram_bytes"]
    per_mac = result.get("instructions_per_mac")
    return [
        f"target                      {result['target']} ({result['board']}, {result['kernels']})",
        f"instructions per inference  {result['instructions_per_inference']:,}"
        + (f" ({per_mac:.2f} per MAC)" if per_mac else ""),
        f"flash (bytes)               {flash['model_total']:,} = code {flash['model_code']:,} + weights "
        f"{flash['weights']:,} + kernels {flash['kernels']:,} (image {flash['image']:,})",
        f"RAM (bytes)                 {ram['model_total']:,} = arena {ram['arena']:,} + other "
        f"{ram['model_other'] + ram['kernels']:,} (image {ram['image']:,}), stack {result['stack_bytes']:,}",
    ]
