"""The linker's own view of a kernel file list: link the model against an archive of the listed files and read,
from the map, which members it pulled in. A linker takes an archive member whole, and only to define a symbol
still undefined, so the members it pulls are the files the model needs (whole files, as the list means them),
independently of kwscc's symbol graph."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from kwscc.build_files import kernel_files, library_graph
from kwscc.validate.cmsis_nn import object_name
from kwscc.validate.target import find_tools


def archive_members(map_text: str, archive: str) -> set[str]:
    """Members of `archive` (its file name) that the map's "Archive member included" section lists."""
    section = map_text.split("Archive member included to satisfy reference by file (symbol)", 1)[-1]
    section = re.split(r"^\S.*(?:sections|Memory Configuration)\s*$", section, maxsplit=1, flags=re.M)[0]
    return set(re.findall(rf"^(?:\S*/)?{re.escape(archive)}\(([^)]+)\)\s*$", section, re.M))


def pull_from_archive(gcc: str, model_objects: list[Path], library_objects: list[Path],
                      work: Path) -> tuple[set[str], set[str]]:
    """Relocatable link (no --gc-sections) of the model's objects against an archive of `library_objects`:
    (names of the members pulled in, symbols left undefined)."""
    archiver = str(Path(gcc).with_name(Path(gcc).name.replace("gcc", "ar")))
    work.mkdir(parents=True, exist_ok=True)
    archive, linked, map_file = work / "libkernels.a", work / "pulled.o", work / "pulled.map"
    archive.unlink(missing_ok=True)
    subprocess.run([archiver, "rcs", str(archive), *map(str, library_objects)], check=True, capture_output=True)
    subprocess.run([gcc, "-nostdlib", "-r", f"-Wl,-Map={map_file}", *map(str, model_objects), str(archive),
                    "-o", str(linked)], check=True, capture_output=True, text=True)
    nm = str(Path(gcc).with_name(Path(gcc).name.replace("gcc", "nm")))
    undefined = subprocess.run([nm, "-u", str(linked)], check=True, capture_output=True, text=True).stdout
    return archive_members(map_file.read_text(), archive.name), {line.split()[-1] for line in undefined.splitlines()
                                                                   if line.strip()}


def check_list_is_what_the_linker_pulls(compiled, work: Path) -> None:
    """After run_on_target(..., cmsis_nn_dir, keep=work), which built one object per file of the model's list
    (the shipped table's, for its --cpu build): an archive of them, linked with the model's object alone, gives
    up every member and leaves none of the library's symbols undefined."""
    files, _ = kernel_files(compiled)
    graph, _ = library_graph(compiled, None)
    objects = sorted((work / "obj" / "kernels").glob("*.o"))
    assert sorted(o.name for o in objects) == sorted(object_name(Path(f), Path()) for f in files)
    pulled, undefined = pull_from_archive(find_tools().gcc, [work / "obj" / "model" / f"{compiled.name}.o"],
                                          objects, work / "archive")
    assert pulled == {o.name for o in objects}, f"listed, not needed: {sorted({o.name for o in objects} - pulled)}"
    assert not undefined & set(graph), f"needed, not listed: {sorted(undefined & set(graph))}"
