"""pyproject.toml lists every folder kwscc ships, so a wheel holds all templates and host kernels and the
build backend has nothing to warn about; the licence is declared in the current SPDX form and shipped."""
from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def package_of(folder: Path) -> str:
    """Dotted package name of a source folder under the package-dir mapping."""
    rel = folder.relative_to(ROOT).as_posix()
    for package, source in sorted(SETUPTOOLS["package-dir"].items(), key=lambda kv: -len(kv[1])):
        if rel == source or rel.startswith(source + "/"):
            return package + rel[len(source):].replace("/", ".")
    raise AssertionError(f"{rel} is under no package-dir entry")


def shipped_folders() -> list[Path]:
    folders = set()
    for source in SETUPTOOLS["package-dir"].values():
        for path in (ROOT / source).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                folders.add(path.parent)
    return sorted(folders)


def test_every_shipped_folder_is_an_explicit_package():
    packages = set(SETUPTOOLS["packages"])
    missing = [package_of(f) for f in shipped_folders() if package_of(f) not in packages]
    assert not missing, f"add to [tool.setuptools] packages: {missing}"
    assert {"kwscc.templates.target", "kwscc.backends.cmsis_nn.host"} <= packages


def source_folder(package: str) -> Path:
    root = max((p for p in SETUPTOOLS["package-dir"] if package == p or package.startswith(p + ".")), key=len)
    return ROOT / SETUPTOOLS["package-dir"][root] / package[len(root):].lstrip(".").replace(".", "/")


def matches(rel: str, pattern: str) -> bool:
    """setuptools' recursive glob: "**/" also matches no folder; "*" stays inside one folder."""
    depth_free = pattern.removeprefix("**/")
    if pattern.startswith("**/"):
        return fnmatch(rel.rsplit("/", 1)[-1], depth_free)
    return "/" not in rel and fnmatch(rel, pattern)


def test_package_data_covers_every_data_file():
    data = SETUPTOOLS["package-data"]
    for folder in shipped_folders():
        package = package_of(folder)
        for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".py"):
            owners = [name for name in data if package == name or package.startswith(name + ".")]
            assert any(matches(path.relative_to(source_folder(name)).as_posix(), pattern)
                       for name in owners for pattern in data[name]), \
                f"{path.relative_to(ROOT)} is in no [tool.setuptools.package-data] pattern"


def test_licence_is_spdx_and_shipped():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text().splitlines()[0]
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]  # the first to read SPDX licence strings
