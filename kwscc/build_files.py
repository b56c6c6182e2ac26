"""What every compile writes for the user's build system besides the C: OUT/NAME.cmake (a library target
to include()), OUT/NAME.mk (Make variables), OUT/NAME_cmsis_nn_sources.txt (the kernel library's source
files the model calls), and with --cmsis-nn DIR a copy of exactly those files and the library's headers."""
from __future__ import annotations

import logging
from pathlib import Path

from kwscc import __version__, kernel_sources
from kwscc.codegen import environment
from kwscc.errors import ToolError
from kwscc.naming import c_comment

log = logging.getLogger(__name__)

COPY_DIR = "cmsis_nn"  # OUT/cmsis_nn/: the copied library files, laid out as in the checkout


def sources_name(name: str) -> str:
    return f"{name}_cmsis_nn_sources.txt"


def library_graph(compiled, library, build: str | None = None) -> tuple[dict, str]:
    """The kernel library's symbol graph for the model's --cpu build (at least the part the model can reach),
    and where it came from: scanned from `library` (the backend's open_library()), else the table kwscc ships for the
    release it is tested with."""
    backend = compiled.backend
    build = build or backend.kernel_build(compiled.options.cpu)
    if library is not None:
        lib = library
        headers = sorted(h for folder in backend.library_includes for h in (lib.root / folder).rglob("*.h"))
        words = sorted(set(kernel_sources.IDENTIFIER.findall(compiled.files[f"{compiled.name}.c"])))
        sources = kernel_sources.reachable_sources(list(lib.sources), headers, words)
        flags = lib.kernel_flags(build, host=build == "c")
        graph = kernel_sources.scan(lib.root, sources, kernel_sources.preprocessor(build, flags))
        return graph, f"the checkout {lib.describe()} (scanned)"
    release, graphs = kernel_sources.load_table(backend.library_table)
    return graphs[build], f"kwscc's table of {backend.library} {release}"


def kernel_files(compiled, library=None, build: str | None = None) -> tuple[list[str], str]:
    """Source files (relative to the library root) of the library functions the generated C calls, with
    everything they call, in the code path `build` (default: the one of the model's --cpu); and the
    provenance of the list."""
    graph, provenance = library_graph(compiled, library, build)
    entries = kernel_sources.entry_symbols(compiled.files[f"{compiled.name}.c"], graph)
    return kernel_sources.closure_files(graph, entries), provenance


def build_files(compiled, host_kernels: dict[str, str] | None, library_dir: str | Path | None = None) -> dict[str, str]:
    """{relative path: text} of NAME.cmake, NAME.mk, the source list and (library_dir given) the copied
    library files, for a compile whose kwscc host kernels are `host_kernels` (None: not written)."""
    backend, name = compiled.backend, compiled.name
    if backend.library_table is None and library_dir is None:
        return {}
    library = backend.open_library(library_dir) if library_dir is not None else None
    files, provenance = kernel_files(compiled, library)
    view = {"gen": {"version": __version__, "model_name": c_comment(Path(compiled.model_path).name)},
            "name": name, "NAME": name.upper(), "library": backend.library, "kernel_files": files,
            "build": backend.kernel_build(compiled.options.cpu), "provenance": provenance,
            "single_rounding": compiled.qm.rounding == "single", "include_dirs": backend.library_includes,
            "host_dir": backend.host_dir_name, "copied": COPY_DIR if library_dir is not None else None,
            "host_kernels": sorted(f for f in host_kernels if f.endswith(".c")) if host_kernels else None}
    env = environment()
    out = {f"{name}.cmake": env.get_template("build_files/model.cmake.j2").render(view),
           f"{name}.mk": env.get_template("build_files/model.mk.j2").render(view),
           sources_name(name): "".join(f"{f}\n" for f in files)}
    if library_dir is not None:
        out.update(copied_library(library.root, files, backend.library_includes))
    return out


def copied_library(root: Path, files: list[str], include_dirs: tuple[str, ...]) -> dict[str, str]:
    """OUT/cmsis_nn/: the listed sources, every header of the library's include folder and its licence."""
    wanted = [root / f for f in files]
    wanted += sorted(p for folder in include_dirs for p in (root / folder).rglob("*.h"))
    wanted += [p for p in (root / "LICENSE", root / "LICENSE.txt") if p.is_file()]
    try:
        return {f"{COPY_DIR}/{p.relative_to(root).as_posix()}": p.read_text() for p in wanted}
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolError(f"cannot copy the library files from {root}: {exc}") from None

