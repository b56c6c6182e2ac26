"""Code size of the generated C, measured with arm-none-eabi-gcc -Os for the chosen core.

The generated NAME.c is compiled on its own (with -ffunction-sections -fdata-sections, so every
function and every array is a section of its own) against the backend's CMSIS-NN headers, and
`arm-none-eabi-size -A` lists the sections. Flash is text + rodata + data, which is what the
Berkeley format of arm-none-eabi-size prints as text + data. The CMSIS-NN library's kernels are
not in that object: they are linked from the library and counted by whoever builds it.
"""
from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

# gcc flags for each --cpu (the FPU options match the boards in docs/cortex-m-emulation.md)
CPU_FLAGS = {
    "generic": ("-mcpu=cortex-m3",),
    "cortex-m3": ("-mcpu=cortex-m3",),
    "cortex-m4": ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
    "cortex-m7": ("-mcpu=cortex-m7", "-mfpu=fpv5-d16", "-mfloat-abi=hard"),
    "cortex-m33": ("-mcpu=cortex-m33", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"),
    "cortex-m55": ("-mcpu=cortex-m55", "-mfloat-abi=hard"),
}
COMMON_FLAGS = ("-std=c99", "-Os", "-mthumb", "-ffunction-sections", "-fdata-sections")
GCC, SIZE = "arm-none-eabi-gcc", "arm-none-eabi-size"


def toolchain() -> tuple[str, str] | None:
    gcc, size = shutil.which(GCC), shutil.which(SIZE)
    return (gcc, size) if gcc and size else None


def compile_flags(cpu: str) -> list[str]:
    return [*COMMON_FLAGS, *CPU_FLAGS.get(cpu, CPU_FLAGS["generic"])]


def parse_size_a(text: str) -> dict[str, int]:
    """{section: bytes} from `arm-none-eabi-size -A -d` output."""
    sections = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    return sections


@functools.lru_cache(maxsize=32)
def _compile(files: tuple[tuple[str, str], ...], source: str, flags: tuple[str, ...]) -> tuple[dict[str, int], str]:
    tools = toolchain()
    assert tools is not None
    gcc, size = tools
    with tempfile.TemporaryDirectory(prefix="kwscc-size-") as tmp:
        for name, text in files:
            (Path(tmp) / name).write_text(text)
        obj = Path(tmp) / (Path(source).stem + ".o")
        cmd = [gcc, *flags, "-I", tmp, "-c", str(Path(tmp) / source), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:1] + list(flags))} failed:\n{proc.stderr[-2000:]}")
        out = subprocess.run([size, "-A", "-d", str(obj)], capture_output=True, text=True, check=True).stdout
        version = subprocess.run([gcc, "-dumpversion"], capture_output=True, text=True).stdout.strip()
    return parse_size_a(out), version


def measure(compiled, array_symbols: set[str]) -> dict:
    """Sections of the generated C compiled for compiled.options.cpu, or why it was not measured.

    array_symbols: the const arrays (weights, biases, quantization parameters) the report counts
    itself; their .rodata.<symbol> sections are checked against it, every other section is code.
    """
    cpu = compiled.options.cpu
    flags = compile_flags(cpu)
    base = {"measured": False, "compiler": GCC, "flags": flags, "cpu": cpu}
    if toolchain() is None:
        return {**base, "reason": f"{GCC} is not installed (apt-get install gcc-arm-none-eabi)"}
    source = f"{compiled.name}.c"
    try:
        headers = {n: t for n, t in compiled.backend.host_files(compiled.qm.rounding).items() if n.endswith(".h")}
    except (NotImplementedError, AttributeError):
        headers = {}
    files = {**headers, **{n: t for n, t in compiled.files.items() if n.endswith((".c", ".h"))}}
    if source not in files:
        return {**base, "reason": f"the backend wrote no {source}"}
    try:
        sections, version = _compile(tuple(sorted(files.items())), source, tuple(flags))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        return {**base, "reason": f"compilation failed: {str(exc).splitlines()[0]}"}
    arrays = {s: n for s, n in sections.items() if s.startswith(".rodata.") and s[len(".rodata."):] in array_symbols}
    text = sum(n for s, n in sections.items() if s == ".text" or s.startswith(".text."))
    rodata = sum(n for s, n in sections.items() if s == ".rodata" or s.startswith(".rodata."))
    data = sum(n for s, n in sections.items() if s == ".data" or s.startswith(".data."))
    bss = sum(n for s, n in sections.items() if s == ".bss" or s.startswith(".bss.") or s == "COMMON")
    const_data = sum(arrays.values())
    return {
        **base, "measured": True, "reason": None, "compiler_version": version,
        "text_bytes": text, "rodata_bytes": rodata, "data_bytes": data, "bss_bytes": bss,
        "const_data_bytes": const_data,  # the weight/bias/quantization arrays as compiled
        "code_bytes": text + rodata - const_data + data,  # functions and their constant tables
        "flash_bytes": text + rodata + data,
        "sections": dict(sorted(sections.items())),
        "source_sha256": hashlib.sha256(files[source].encode()).hexdigest(),
    }
