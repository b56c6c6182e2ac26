"""kwscc.kernel_sources on a small library written here: CMake lists (float kernels left out), the symbol
graph through static helpers, header inline functions and #if code paths, whole-file closures; the
checkout's version; the build files every compile writes."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kwscc.kernel_sources import closure_files, cmake_sources, entry_symbols, load_table, parse_unit, \
    reachable_sources, save_table, scan
from kwscc.validate.cmsis_nn import checkout
from tests.system_packages import require_commands
from tests.target.fake_cmsis_nn import make_fake_cmsis_nn

HEADER = """#ifndef LIB_H
#define LIB_H
int lib_top(int x);
int lib_helper(int x);
int lib_dsp_only(int x);
int lib_plain_only(int x);
int lib_unused(int x);
int lib_other(int x);
extern const int lib_table[4];
static inline int lib_inline(int x) { return lib_helper(x) + 1; }
#endif
"""
SOURCES = {
    "Source/Top/CMakeLists.txt": 'file(GLOB SRC "./*_s8.c")\ntarget_sources(lib PRIVATE ${SRC} extra.c)\n'
                                 'if(ENABLE_F16)\n  target_sources(lib PRIVATE top_f16.c)\nendif()\n',
    "Source/Top/top_s8.c": '#include "lib.h"\nstatic int local(int x) { return lib_inline(x); }\n'
                           'int lib_top(int x) {\n#if defined(USE_DSP)\n  return lib_dsp_only(local(x));\n#else\n'
                           '  return lib_plain_only(local(x));\n#endif\n}\n'
                           'int lib_unused(int x) { return lib_other(x); }\n',
    "Source/Top/extra.c": '#include "lib.h"\nint lib_dsp_only(int x) { return x + lib_table[0]; }\n',
    "Source/Top/top_f16.c": '#include "lib.h"\nint lib_half(int x) { return x; }\n',
    "Source/Top/skipped.c": '#include "lib.h"\nint lib_skipped(int x) { return x; }\n',
    "Source/Support/helper.c": '#include "lib.h"\nint lib_helper(int x) { return 2 * x; }\n'
                               'const int lib_table[4] = {1, 2, 3, 4};\n',
    "Source/Support/plain.c": '#include "lib.h"\nint lib_plain_only(int x) { return x - 1; }\n',
    "Source/Support/other.c": '#include "lib.h"\nint lib_other(int x) { return -x; }\n',
}


@pytest.fixture
def library(tmp_path):
    (tmp_path / "Include").mkdir()
    (tmp_path / "Include" / "lib.h").write_text(HEADER)
    for rel, text in SOURCES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def rel(root: Path, files) -> list[str]:
    return sorted(Path(f).relative_to(root).as_posix() for f in files)


def test_cmake_lists_decide_the_sources(library):
    # Top/ by its CMakeLists (no float kernel behind if(), no file it does not name); Support/ has none: all .c
    assert rel(library, cmake_sources(library / "Source")) == [
        "Source/Support/helper.c", "Source/Support/other.c", "Source/Support/plain.c",
        "Source/Top/extra.c", "Source/Top/top_s8.c"]


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler to preprocess")
@pytest.mark.parametrize("defines, expected", [
    ([], ["Source/Support/helper.c", "Source/Support/other.c", "Source/Support/plain.c", "Source/Top/top_s8.c"]),
    (["-DUSE_DSP"], ["Source/Support/helper.c", "Source/Support/other.c", "Source/Top/extra.c", "Source/Top/top_s8.c"]),
])
def test_closure_follows_the_code_path(library, defines, expected, tmp_path):
    sources = cmake_sources(library / "Source")
    graph = scan(library, sources, ["cc", f"-I{library / 'Include'}", *defines])
    assert "local" not in graph and "lib_inline" not in graph  # file-local: static, or from a header
    assert graph["lib_top"].file == "Source/Top/top_s8.c"
    # through the static helper and the header's inline function
    assert "lib_helper" in graph["lib_top"].refs
    entries = entry_symbols("int main(void) { return lib_top(1); }", graph)
    assert entries == ["lib_top"]
    # other.c comes with top_s8.c whole (lib_unused calls it): the list links without --gc-sections
    assert closure_files(graph, entries) == expected
    save_table(tmp_path / "t.json", "1.0", {"c": graph})
    assert load_table(tmp_path / "t.json") == ("1.0", {"c": graph})


def test_cheap_superset_before_preprocessing(library):
    sources = cmake_sources(library / "Source")
    found = reachable_sources(sources, [library / "Include" / "lib.h"], ["lib_top"])
    # both #if branches and the header's inline body count; nothing lib_top cannot reach
    assert rel(library, found) == ["Source/Support/helper.c", "Source/Support/other.c", "Source/Support/plain.c",
                                   "Source/Top/extra.c", "Source/Top/top_s8.c"]
    assert rel(library, reachable_sources(sources, [], ["lib_other"])) == ["Source/Support/other.c"]


def test_parse_unit_keeps_only_the_files_own_definitions():
    text = '# 1 "lib.h"\nstatic inline int a(int x) { return b(x); }\nint h(int x) { return x; }\n' \
           '# 5 "f.c"\nstruct s { int v; };\nint f(int x) { return a(x) + g(x); }\nconst int t[2] = {1, 2};\n'
    from kwscc.kernel_sources import _own_lines

    external, local = parse_unit(*_own_lines(text, Path("f.c")))
    assert set(external) == {"f", "t"} and set(local) == {"a", "h"}
    assert {"a", "g"} <= external["f"]


def test_version_of_a_git_checkout(tmp_path):
    root = make_fake_cmsis_nn(tmp_path / "nn", version="0.0.0")  # what a git checkout's pdsc says
    header = root / "Include" / "arm_nnfunctions.h"
    assert checkout(root).version is None
    header.write_text(" * $Revision:    V.18.0.0\n" + header.read_text())
    lib = checkout(root)
    assert lib.version == "7.0.0" and lib.api_revision == "V.18.0.0"
    (root / "ARM.CMSIS-NN.pdsc").write_text('<release version="6.0.0">')
    assert checkout(root).version == "6.0.0"


def test_every_compile_writes_the_build_files(tmp_path):
    from kwscc.cli import main
    from tests.e2e import kws_shared as kws

    assert main([*kws.compile_argv("dnn_s", tmp_path / "out")]) == 0
    out = tmp_path / "out"
    listed = (out / "dnn_s_cmsis_nn_sources.txt").read_text().split()
    # every CMSIS-NN function the C calls has its defining file listed (dense layers may run on kwscc's own
    # kernels on the M4, so only the library's calls count)
    called = set(re.findall(r"\b(arm_\w+)\s*\(", (out / "dnn_s.c").read_text()))
    assert "arm_softmax_s8" in called
    assert all(any(f.endswith(f"/{fn}.c") for f in listed) for fn in called), (called, listed)
    assert all(f.startswith("Source/") and f.endswith(".c") for f in listed)
    cmake, make = (out / "dnn_s.cmake").read_text(), (out / "dnn_s.mk").read_text()
    assert all(f'"{f}"' in cmake for f in listed) and all(f in make for f in listed)
    assert "add_library(dnn_s STATIC" in cmake and "DNN_S_SRCS :=" in make and "DNN_S_CFLAGS =" in make
    require_commands("make")
    shown = subprocess.run(["make", "-s", "-f", "-", "show"], input=f"include {out}/dnn_s.mk\nshow:\n\t@echo $(DNN_S_SRCS)\n",
                           capture_output=True, text=True, cwd=tmp_path)
    assert shown.stdout.strip() == f"{out}/dnn_s.c"
