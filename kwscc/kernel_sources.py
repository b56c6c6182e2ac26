"""Which source files of a kernel library (CMSIS-NN, or CMSIS_5's CMSIS/NN) a generated model needs.

The library is read as a symbol graph: every external function or table it defines, the file defining
it, and the external symbols its code reaches (directly or through the file's static helpers and the
headers' inline functions). The graph depends on the code path the compiler selects (pure C, DSP,
MVE), so each source file is run through the preprocessor of that build before it is parsed. A model's
files are the closure, in that graph, of the library functions its generated C calls.

Graphs come from a checkout (scan(), given a preprocessor command) or from a table kwscc ships for the
release it is tested with (load_table(); `python -m kwscc.kernel_sources` regenerates one).
"""
from __future__ import annotations

import bisect
import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kwscc.errors import ToolError

IDENTIFIER = re.compile(r"\b[A-Za-z_]\w*\b")
LITERAL = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
ATTRIBUTE = re.compile(r"__attribute__\s*\(\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\)|__asm__?\s*\([^)]*\)")
FLOAT_KERNEL = re.compile(r"_f(16|32|64)\b")
C_KEYWORDS = {"if", "while", "for", "switch", "return", "sizeof", "struct", "union", "enum", "typedef"}


@dataclass(frozen=True)
class Symbol:
    file: str  # defining source, relative to the library root
    refs: tuple[str, ...]  # external symbols its code reaches


# ------------------------------------------------------------------------------------------ candidate sources

def cmake_sources(source_dir: Path) -> list[Path]:
    """The .c files the library's own CMake lists compile in each Source/<folder>/ (what an unconfigured
    build gets: sources inside if() blocks, such as float kernels behind ARM_NN_ENABLE_F16/F32 options, are
    left out). A folder without a CMakeLists.txt contributes its integer .c files."""
    files: list[Path] = []
    for folder in sorted(p for p in source_dir.iterdir() if p.is_dir()):
        lists = folder / "CMakeLists.txt"
        found = _parse_cmake_list(folder, lists.read_text(errors="replace")) if lists.is_file() else None
        if found is None:
            found = [p for p in sorted(folder.glob("*.c")) if not FLOAT_KERNEL.search(p.stem)]
        files.extend(found)
    return sorted(set(files))


def _parse_cmake_list(folder: Path, text: str) -> list[Path] | None:
    """Sources named by file(GLOB ...) and target_sources(...) outside if() blocks; None if unreadable."""
    text = re.sub(r"#[^\n]*", "", text)
    variables: dict[str, list[Path]] = {}
    files: list[Path] = []
    depth = 0
    for command, args in re.findall(r"(\w+)\s*\(([^)]*)\)", text):
        command = command.lower()
        if command == "if":
            depth += 1
        elif command == "endif":
            depth = max(0, depth - 1)
        elif depth:
            continue
        elif command == "file":
            words = [w.strip('"') for w in args.split()]
            if len(words) >= 3 and words[0] in ("GLOB", "GLOB_RECURSE"):
                glob = folder.rglob if words[0] == "GLOB_RECURSE" else folder.glob
                variables[words[1]] = sorted(p for pattern in words[2:] for p in glob(pattern.removeprefix("./")))
        elif command == "target_sources":
            for word in (w.strip('"') for w in args.split()[1:]):
                var = re.fullmatch(r"\$\{(\w+)\}", word)
                if var:
                    files.extend(variables.get(var.group(1), []))
                elif word.endswith(".c"):
                    files.append(folder / word.removeprefix("./"))
    files = [f for f in files if f.is_file() and f.suffix == ".c"]
    return files or None


# ------------------------------------------------------------------------------------------ scanning

# a function or table defined at the start of a line (the unpreprocessed source: a superset)
RAW_DEFINITION = re.compile(r"^(?!static\b)(?:[A-Za-z_]\w*[\s*]+)*([A-Za-z_]\w*)\s*"
                            r"(?:\((?:[^;\n]*$|[^;{]*\)\s*\{)|(?:\[[^\]\n]*\]\s*)+=)", re.M)
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def reachable_sources(sources: list[Path], headers: list[Path], entries: list[str]) -> list[Path]:
    """A superset, cheap to find, of the sources the entries can reach whatever the build: every #if branch
    counts, and every identifier the headers' inline bodies use counts as used by every file."""
    text = {src: COMMENT.sub(" ", src.read_text(errors="replace")) for src in sources}
    defines: dict[str, list[Path]] = {}
    for src, body in text.items():
        for name in RAW_DEFINITION.findall(body):
            if name not in C_KEYWORDS:
                defines.setdefault(name, []).append(src)
    header_uses = set()
    for header in headers:
        header_uses |= set(IDENTIFIER.findall(_function_bodies(COMMENT.sub(" ", header.read_text(errors="replace")))))
    seen, todo = set(), list(entries) + sorted(header_uses)
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for src in defines.get(name, ()):
            if src not in files:
                files.add(src)
                todo.extend(IDENTIFIER.findall(text[src]))
    return sorted(files)


def _function_bodies(text: str) -> str:
    """The text of every brace block that follows a ')' (function bodies), concatenated."""
    bodies, pos = [], 0
    for match in re.finditer(r"\)\s*\{", text):
        if match.start() < pos:
            continue
        depth, i = 0, match.end() - 1
        for brace in re.finditer(r"[{}]", text[i:]):
            depth += 1 if brace.group(0) == "{" else -1
            if depth == 0:
                pos = i + brace.end()
                bodies.append(text[i:pos])
                break
        else:
            break
    return "\n".join(bodies)


def scan(root: Path, sources: list[Path], preprocess: list[str]) -> dict[str, Symbol]:
    """The symbol graph of `sources` (below `root`) as `preprocess` (a compiler command with -E and the
    library's include flags) sees them."""
    def one(src: Path):
        result = subprocess.run([*preprocess, "-E", "-w", str(src)], capture_output=True, text=True)
        if result.returncode != 0:
            raise ToolError(f"preprocessing {src} failed:\n{result.stderr.strip()[:2000]}")
        return src.relative_to(root).as_posix(), parse_unit(*_own_lines(result.stdout, src))

    graph: dict[str, Symbol] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for rel, (external, local) in pool.map(one, sources):
            for name, refs in external.items():
                graph.setdefault(name, Symbol(rel, tuple(sorted(_through_locals(refs, local)))))
    # keep only references to symbols the library defines (not libc, not compiler builtins)
    return {name: Symbol(s.file, tuple(r for r in s.refs if r in graph and r != name)) for name, s in graph.items()}


def _through_locals(refs: set[str], local: dict[str, set[str]]) -> set[str]:
    """refs with every static function they reach replaced by what that function references."""
    seen, todo, out = set(), list(refs), set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if ref in local:
            todo.extend(local[ref])
        else:
            out.add(ref)
    return out


def _own_lines(text: str, src: Path) -> tuple[str, list[bool]]:
    """Preprocessor output without its line markers, and per line whether it comes from `src` itself
    (not from a header)."""
    lines, own, mine = [], [], True
    for line in text.splitlines():
        marker = re.match(r'#\s*\d+\s+"([^"]*)"', line)
        if marker:
            mine = Path(marker.group(1)).name == src.name
            continue
        lines.append(line)
        own.append(mine)
    return "\n".join(lines), own


def parse_unit(text: str, own: list[bool] | None = None) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """({external symbol: identifiers it uses}, {local function: identifiers it uses}) of one preprocessed
    translation unit: function definitions and initialized tables at file scope. Local: static, or defined
    in a header (own[line] False: inline functions every includer gets its own copy of)."""
    text = ATTRIBUTE.sub(" ", LITERAL.sub(lambda m: '""' + "\n" * m.group(0).count("\n"), text))
    line_starts = [m.start() for m in re.finditer(r"^", text, re.M)] if own is not None else []
    external: dict[str, set[str]] = {}
    local: dict[str, set[str]] = {}
    head_start, depth, body_start = 0, 0, 0
    for match in re.finditer(r"[{};]", text):
        i, ch = match.start(), match.group(0)
        if ch == "{":
            if depth == 0:
                body_start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                head = text[head_start:body_start]
                in_header = own is not None and not own[bisect.bisect_right(line_starts, body_start) - 1]
                _definition(head, text[body_start:i], external, local, in_header)
                head_start = i + 1
        elif ch == ";" and depth == 0:
            head_start = i + 1
    return external, local


def _definition(head: str, body: str, external: dict, local: dict, in_header: bool) -> None:
    head = " ".join(head.split())
    words = IDENTIFIER.findall(head)
    if "typedef" in words or re.match(r"^\s*(struct|union|enum)\b[^=(]*$", head):
        return
    function = re.search(r"(\w+)\s*\([^{}]*\)\s*$", head)
    if function and function.group(1) not in C_KEYWORDS and "=" not in head:
        name = function.group(1)
        params = set(IDENTIFIER.findall(head[function.end(1):]))
        uses = set(IDENTIFIER.findall(body)) - params
        (local if "static" in words or in_header else external)[name] = uses
        return
    table = re.search(r"(\w+)\s*(\[[^\]]*\]\s*)*=\s*$", head)
    if table and "static" not in words and not in_header:
        external[table.group(1)] = set(IDENTIFIER.findall(body))


# ------------------------------------------------------------------------------------------ queries

def entry_symbols(c_text: str, graph: dict[str, Symbol]) -> list[str]:
    """The library symbols a generated C file names (outside comments)."""
    return sorted(set(IDENTIFIER.findall(COMMENT.sub(" ", c_text))) & set(graph))


def closure_files(graph: dict[str, Symbol], entries: list[str]) -> list[str]:
    """Source files (relative to the library root) defining the entries and everything they reach. A file
    counts whole: everything any of its functions calls is in too, so the list links with any linker, with
    or without --gc-sections (which then drops the functions nothing calls)."""
    by_file: dict[str, list[str]] = {}
    for name, symbol in graph.items():
        by_file.setdefault(symbol.file, []).append(name)
    files, todo = set(), [name for name in entries if name in graph]
    while todo:
        file = graph[todo.pop()].file
        if file not in files:
            files.add(file)
            todo.extend(ref for name in by_file[file] for ref in graph[name].refs)
    return sorted(files)


def save_table(path: Path, release: str, graphs: dict[str, dict[str, Symbol]]) -> None:
    """One line per symbol: {"release": ..., "builds": {build: {symbol: [file, [refs]]}}}."""
    lines = [f'{{"release": {json.dumps(release)}, "builds": {{']
    for b, (build, graph) in enumerate(sorted(graphs.items())):
        lines.append(f"{json.dumps(build)}: {{")
        rows = [f"{json.dumps(name)}: {json.dumps([s.file, list(s.refs)])}" for name, s in sorted(graph.items())]
        lines.append(",\n".join(rows))
        lines.append("}," if b < len(graphs) - 1 else "}")
    lines.append("}}")
    path.write_text("\n".join(lines) + "\n")


def load_table(path: Path) -> tuple[str, dict[str, dict[str, Symbol]]]:
    data = json.loads(path.read_text())
    return data["release"], {build: {name: Symbol(file, tuple(refs)) for name, (file, refs) in g.items()}
                             for build, g in data["builds"].items()}


# ------------------------------------------------------------------------------------------ builds

# the compiler and flags whose predefined macros select each code path of CMSIS-NN (see
# arm_nn_math_types.h): pure C on the host, DSP on Cortex-M4, MVE (Helium) on Cortex-M55
BUILD_COMPILERS = {
    "c": ("cc",),
    "dsp": ("arm-none-eabi-gcc", "-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
    "mve": ("arm-none-eabi-gcc", "-mthumb", "-mcpu=cortex-m55", "-mfloat-abi=hard"),
}


def preprocessor(build: str, include_flags: list[str]) -> list[str]:
    """The preprocessor command that sees CMSIS-NN's `build` code path; ToolError if the compiler is missing."""
    import shutil

    compiler, *flags = BUILD_COMPILERS[build]
    if shutil.which(compiler) is None:
        raise ToolError(f"finding the CMSIS-NN files of the {build} build needs {compiler} to preprocess them "
                        f"(Debian/Ubuntu: apt-get install {'gcc' if compiler == 'cc' else 'gcc-arm-none-eabi'})")
    return [compiler, *flags, *include_flags]


def main(argv: list[str] | None = None) -> int:
    """Regenerate a shipped table: python -m kwscc.kernel_sources BACKEND CHECKOUT RELEASE OUT.json
    (e.g. cmsis-nn CMSIS-NN-v7.0.0 7.0.0 backends/cmsis_nn/cmsis_nn_v7.0.0_sources.json)."""
    import sys

    from kwscc.backends.base import get_backend

    backend, directory, release, out = (argv if argv is not None else sys.argv[1:])
    lib = get_backend(backend).open_library(directory)
    graphs = {build: scan(lib.root, list(lib.sources), preprocessor(build, lib.kernel_flags(build, host=build == "c")))
              for build in BUILD_COMPILERS}
    save_table(Path(out), release, graphs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
