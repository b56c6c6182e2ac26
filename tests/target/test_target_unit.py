"""Parts of the Cortex-M validation that need no toolchain: linker-map parsing, the memory split, the
board table, tool discovery and CMSIS-NN checkout checks."""
from __future__ import annotations

import shutil

import pytest

from kwscc.errors import ToolError
from kwscc.validate import target
from kwscc.validate.cmsis_nn import checkout
from tests.target.fake_cmsis_nn import HOST, LAYOUT, make_fake_cmsis_nn

MAP = """\
Archive member included to satisfy reference by file (symbol)

Discarded input sections

 .text          0x00000000        0x0 /w/obj/model/net.o

Memory Configuration

Name             Origin             Length             Attributes
FLASH            0x00000000         0x00400000         xr

Linker script and memory map

LOAD /w/obj/model/net.o
.text           0x00000000      0x200
 *(.kwscc_vectors)
 .kwscc_vectors
                0x00000000       0x40 /w/obj/runtime/kwscc_startup.o
                0x00000000                kwscc_vectors
 *(.text .text.*)
 .text.net_run  0x00000040       0x80 /w/obj/model/net.o
                0x00000040                net_run
 .text.arm_convolve_wrapper_s8
                0x000000c0       0x60 /w/obj/kernels/arm_convolve_s8.o
 *fill*         0x00000120        0x4 
 .text.memcpy   0x00000124       0x1c /usr/lib/arm-none-eabi/newlib/libc_nano.a(libc_a-memcpy.o)
 *(.rodata .rodata.*)
 .rodata.net_l00_w
                0x00000140       0xb0 /w/obj/model/net.o
 .rodata.kernel_table
                0x000001f0       0x10 /w/obj/kernels/arm_softmax_s8.o

.data           0x20000000        0x8 load address 0x00000200
 .data.kwscc_tt
                0x20000000        0x8 /w/obj/runtime/kwscc_semihost.o

.bss            0x20000008      0x120
                0x20000008                __kwscc_arena_start = .
 *(.bss.net_arena)
 .bss.net_arena
                0x20000008      0x100 /w/obj/model/net.o
 .bss.kwscc_guard
                0x20000108       0x20 /w/obj/runtime/kwscc_harness.o

.stack          0x20000128     0x8000
                0x20000128                __kwscc_stack_limit = .

.debug_info     0x00000000      0x999
 .debug_info    0x00000000      0x999 /w/obj/model/net.o
"""


class FakeCompiled:
    name = "net"


def test_parse_map_reads_wrapped_and_one_line_entries():
    entries = target.parse_map(MAP)
    by_name = {e[1]: e for e in entries}
    assert by_name[".kwscc_vectors"] == (".text", ".kwscc_vectors", 0, 0x40, "/w/obj/runtime/kwscc_startup.o")
    assert by_name[".text.net_run"][3] == 0x80
    assert by_name[".text.arm_convolve_wrapper_s8"][4].endswith("arm_convolve_s8.o")
    assert by_name["*fill*"][3] == 4
    assert by_name[".bss.net_arena"] == (".bss", ".bss.net_arena", 0x20000008, 0x100, "/w/obj/model/net.o")
    assert ".text.net_run" in by_name and all(e[1] != ".text" or e[3] == 0 for e in entries)


def test_memory_split_into_model_code_weights_arena_kernels():
    m = target.memory(FakeCompiled(), MAP, stack=300, stack_reserved=0x8000)
    assert m["flash_bytes"] == {"model_code": 0x80, "weights": 0xb0, "kernels": 0x60 + 0x10,
                                "harness_and_runtime": 0x40 + 4 + 0x1c + 8,
                                "model_total": 0x80 + 0xb0 + 0x70, "image": 0x208}
    assert m["ram_bytes"]["arena"] == 0x100
    assert m["ram_bytes"]["harness_and_runtime"] == 8 + 0x20
    assert m["ram_bytes"]["image"] == 0x128
    assert m["stack_bytes"] == 300 and m["stack_bytes_reserved"] == 0x8000


def test_boards_cover_the_four_cores_with_the_documented_flags():
    assert set(target.TARGETS) == {"cortex-m3", "cortex-m4", "cortex-m33", "cortex-m55"}
    assert target.BOARDS["cortex-m3"].machine == "mps2-an385" and "-mfloat-abi=soft" in target.BOARDS["cortex-m3"].cflags
    assert target.BOARDS["cortex-m4"].machine == "mps2-an386" and "-mfloat-abi=hard" in target.BOARDS["cortex-m4"].cflags
    assert target.BOARDS["cortex-m33"].machine == "mps2-an505" and target.BOARDS["cortex-m33"].flash[0] == 0x10000000
    assert target.BOARDS["cortex-m55"].machine == "mps3-an547" and target.BOARDS["cortex-m55"].build == "mve"
    from kwscc.backends.cmsis_nn.backend import CPU_BUILDS

    for name, board in target.BOARDS.items():
        assert CPU_BUILDS[name] == board.build


def test_missing_tools_name_the_debian_packages(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert target.missing_tools() == ["gcc-arm-none-eabi", "qemu-system-arm"]
    with pytest.raises(ToolError, match="apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"):
        target.find_tools()


def test_cmsis_nn_checkout_layout(tmp_path):
    lib = checkout(make_fake_cmsis_nn(tmp_path / "nn", version="6.0.0"))
    assert lib.version == "6.0.0"
    assert {p.parent.name for p in lib.sources} >= set(LAYOUT.values())
    assert len(lib.sources) == len(list(HOST.glob("*.c")))


def test_cmsis_nn_checkout_errors(tmp_path):
    with pytest.raises(ToolError, match="no such directory"):
        checkout(tmp_path / "absent")
    (tmp_path / "CMSIS" / "NN" / "Include").mkdir(parents=True)
    with pytest.raises(ToolError, match="not a CMSIS-NN checkout.*CMSIS_5"):
        checkout(tmp_path)
    empty = tmp_path / "empty"
    (empty / "Include").mkdir(parents=True)
    (empty / "Source").mkdir()
    for h in ("arm_nnfunctions.h", "arm_nn_types.h"):
        (empty / "Include" / h).write_text("")
    with pytest.raises(ToolError, match="no C sources"):
        checkout(empty)
