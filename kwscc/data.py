"""Loading user data: DATA = FILE.npy | FILE.npz (one array, or arrays named after inputs) | FILE.npz:KEY.

Data files are untrusted. Every array's .npy header is read and checked first (numbers only, no
pickled objects, within kwscc.check.limits, as many bytes stored as the header declares, no zip
member inflating like a bomb) before any of its values is read; a bad CRC or a truncated member is
a DataError. iter_batches() streams samples without loading a whole array.
"""
from __future__ import annotations

import contextlib
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from kwscc.check.limits import MAX_DATA_BYTES, MAX_DATA_ELEMENTS
from kwscc.errors import DataError
from kwscc.ir import Graph

MAX_HEADER = 10_000  # bytes of a .npy header (numpy's own default limit)
BOMB_RATIO, BOMB_MIN_BYTES = 200, 1 << 26  # refuse members over 64 MiB that inflate more than 200x


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """One checked array of a data file: where its values start and what they are."""

    path: Path
    member: str | None  # the .npz member, or None for a .npy file
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran: bool
    offset: int  # of the first value, in the file or member

    @property
    def label(self) -> str:
        return f"{self.path.name}:{self.member[:-4]}" if self.member else self.path.name


def _split(spec: str) -> tuple[Path, str]:
    path, _, key = spec.partition(":") if spec.count(":") == 1 and not Path(spec).exists() else (spec, "", "")
    p = Path(path)
    try:
        found = p.is_file()
    except OSError as exc:
        raise DataError(f"data file {path}: {exc.strerror or exc}") from None
    if not found:
        raise DataError(f"data file not found: {path}")
    return p, key


def _header(f, size: int, label: str) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_HEADER)
        else:
            raise DataError(f"{label}: .npy format version {version} is not supported")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{label}: not a readable .npy array ({' '.join(str(exc).split())[:200]})") from None
    if dtype.hasobject or dtype.kind not in "fiubU" or dtype.fields is not None:
        raise DataError(f"{label}: arrays of dtype {dtype} are not supported (numbers or fixed-width strings only; "
                        "no Python objects)")
    count = math.prod(shape)
    if count > MAX_DATA_ELEMENTS or count * dtype.itemsize > MAX_DATA_BYTES:
        raise DataError(f"{label}: shape {list(shape)} of {dtype} is beyond kwscc's limit of {MAX_DATA_ELEMENTS} "
                        f"values and {MAX_DATA_BYTES} bytes per array (docs/limits.md)")
    offset = f.tell()
    if offset + count * dtype.itemsize > size:
        raise DataError(f"{label}: truncated: shape {list(shape)} of {dtype} needs {count * dtype.itemsize} bytes, "
                        f"{size - offset} are stored")
    return dtype, tuple(shape), fortran, offset


def _members(p: Path) -> dict[str, zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{p.name}: not a readable .npz file ({exc})") from None
    members = {}
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise DataError(f"{p.name}: member '{info.filename}' is not a .npy array")
        if info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_RATIO * max(info.compress_size, 1):
            raise DataError(f"{p.name}: member '{info.filename}' inflates {info.compress_size} bytes to "
                            f"{info.file_size}: refused as a zip bomb")
        members[info.filename[:-4]] = info
    return members


def _is_npz(p: Path) -> bool:
    with p.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def array_info(p: Path, key: str | None) -> ArrayInfo:
    """The checked header of array `key` of an .npz (None for a .npy file)."""
    if key is None:
        with p.open("rb") as f:
            dtype, shape, fortran, offset = _header(f, p.stat().st_size, p.name)
        return ArrayInfo(p, None, dtype, shape, fortran, offset)
    info = _members(p)[key]
    label = f"{p.name}:{key}"
    try:
        with zipfile.ZipFile(p) as z, z.open(info) as f:
            dtype, shape, fortran, offset = _header(f, info.file_size, label)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{label}: cannot read ({exc})") from None
    return ArrayInfo(p, info.filename, dtype, shape, fortran, offset)


def _keys(p: Path) -> list[str] | None:
    """The array names of an .npz, or None for a .npy file."""
    return list(_members(p)) if _is_npz(p) else None


def read_rows(info: ArrayInfo, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Rows start:stop (the first axis) of a checked array, reading only those."""
    rows = info.shape[0] if info.shape else 1
    stop = rows if stop is None else min(stop, rows)
    row_shape = info.shape[1:] if info.shape else ()
    row_bytes = math.prod(row_shape) * info.dtype.itemsize
    if info.fortran and len(info.shape) > 1:  # column-major: rows are not contiguous; read it whole
        return _read(info, 0, math.prod(info.shape)).reshape(info.shape, order="F")[start:stop]
    flat = _read(info, start * row_bytes, (stop - start) * math.prod(row_shape))
    return flat.reshape(((stop - start,) + row_shape) if info.shape else ())


def _read(info: ArrayInfo, skip: int, count: int) -> np.ndarray:
    nbytes = count * info.dtype.itemsize
    try:
        if info.member is None:
            with info.path.open("rb") as f:
                f.seek(info.offset + skip)
                raw = f.read(nbytes)
        else:
            with zipfile.ZipFile(info.path) as z, z.open(info.member) as f:
                f.seek(info.offset + skip)
                raw = f.read(nbytes)
                if skip + nbytes + info.offset >= z.getinfo(info.member).file_size:
                    f.read()  # reach the end, where zipfile checks the CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{info.label}: cannot read ({exc})") from None
    if len(raw) != nbytes:
        raise DataError(f"{info.label}: truncated")
    return np.frombuffer(raw, info.dtype).copy()


def _resolve(spec: str) -> tuple[Path, str | None]:
    """(file, npz key or None) of DATA naming one array."""
    p, key = _split(spec)
    keys = _keys(p)
    if keys is None:
        return p, None
    if not key:
        if len(keys) != 1:
            raise DataError(f"{p.name} holds {len(keys)} arrays ({', '.join(keys) or 'none'}): name one as "
                            f"{p.name}:KEY")
        key = keys[0]
    if key not in keys:
        raise DataError(f"{p.name} has no array '{key}' (it has: {', '.join(keys)})")
    return p, key


def load_array(spec: str) -> np.ndarray:
    """One array from DATA (labels, for instance)."""
    return read_rows(array_info(*_resolve(spec)))


def _check_samples(name: str, info: ArrayInfo, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-sample shape the array is read as (its own, or flat rows reshaped)."""
    source = info.label
    if info.dtype.kind not in "fiu":
        raise DataError(f"{source}: data for input '{name}' has dtype {info.dtype}; expected float32 (or numbers)")
    sample = tuple(shape[1:])
    count = math.prod(sample)
    if len(info.shape) >= 1 and tuple(info.shape[1:]) == sample or len(info.shape) == 2 and info.shape[1] == count:
        if info.shape[0] == 0:
            raise DataError(f"{source}: no samples")
        return sample
    forms = f"[samples, {', '.join(map(str, sample))}]"
    if len(sample) > 1:
        forms += f" or [samples, {count}]"
    raise DataError(f"{source}: data for input '{name}' has shape {list(info.shape)}; expected {forms}")


def _input_arrays(spec: str, graph: Graph) -> dict[str, ArrayInfo]:
    p, key = _split(spec)
    keys = _keys(p)
    if keys is None or key or len(graph.inputs) == 1 and len(keys) == 1:
        if len(graph.inputs) > 1:
            raise DataError(f"the model has {len(graph.inputs)} inputs: give an .npz with arrays named after them")
        return {graph.inputs[0]: array_info(*_resolve(spec))}
    missing = [n for n in graph.inputs if n not in keys]
    if missing:
        raise DataError(f"{p.name} holds {', '.join(keys)}: name the array as {p.name}:KEY "
                        f"or name arrays after the model inputs ({', '.join(graph.inputs)})")
    return {n: array_info(p, n) for n in graph.inputs}


def _row_batches(info: ArrayInfo, batch: int) -> Iterator[np.ndarray]:
    """The rows of a checked array, `batch` at a time, in one sequential pass over the file or
    member (a compressed member inflated once, not from its start for every batch)."""
    rows = info.shape[0] if info.shape else 1
    if info.fortran and len(info.shape) > 1:  # column-major: rows are not contiguous; read it whole
        whole = read_rows(info)
        for start in range(0, rows, batch):
            yield whole[start:start + batch]
        return
    row_shape = info.shape[1:]
    row_bytes = math.prod(row_shape) * info.dtype.itemsize
    try:
        with contextlib.ExitStack() as stack:
            if info.member is None:
                f = stack.enter_context(info.path.open("rb"))
            else:
                f = stack.enter_context(stack.enter_context(zipfile.ZipFile(info.path)).open(info.member))
            f.seek(info.offset)
            for start in range(0, rows, batch):
                n = min(batch, rows - start)
                raw = f.read(n * row_bytes)
                if len(raw) != n * row_bytes:
                    raise DataError(f"{info.label}: truncated")
                yield np.frombuffer(raw, info.dtype).reshape((n,) + row_shape)
            if info.member is not None:
                f.read()  # reach the end, where zipfile checks the CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{info.label}: cannot read ({exc})") from None


def _as_samples(name: str, info: ArrayInfo, sample: tuple[int, ...], rows: np.ndarray) -> np.ndarray:
    out = rows.reshape((rows.shape[0],) + sample).astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise DataError(f"{info.label}: data for input '{name}' contains NaN or Inf")
    return out


def _checked_inputs(spec: str, graph: Graph) -> tuple[dict[str, ArrayInfo], dict[str, tuple[int, ...]], int]:
    """(array of each input, its per-sample shape, the sample count), from the headers only."""
    arrays = _input_arrays(spec, graph)
    samples = {n: _check_samples(n, info, graph.tensors[n].shape) for n, info in arrays.items()}
    counts = {info.shape[0] for info in arrays.values()}
    if len(counts) != 1:
        raise DataError(f"{spec}: inputs have different sample counts {sorted(counts)}")
    return arrays, samples, counts.pop()


def iter_batches(spec: str, graph: Graph, batch: int) -> Iterator[dict[str, np.ndarray]]:
    """Samples for every graph input, `batch` at a time, each [n, *input_shape[1:]] float32; only
    one batch of each array is in memory at a time."""
    arrays, samples, _ = _checked_inputs(spec, graph)
    batch = max(int(batch), 1)
    streams = [_row_batches(info, batch) for info in arrays.values()]
    for parts in zip(*streams):
        yield {n: _as_samples(n, info, samples[n], rows) for (n, info), rows in zip(arrays.items(), parts)}


@dataclass(frozen=True, slots=True)
class DataSource:
    """The samples of DATA for a graph's inputs, checked from the headers and read batch by batch
    (calibration on a set larger than memory)."""

    spec: str
    graph: Graph
    count: int

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        return iter_batches(self.spec, self.graph, size)


def data_source(spec: str, graph: Graph) -> DataSource:
    return DataSource(spec, graph, _checked_inputs(spec, graph)[2])


def load_inputs(spec: str, graph: Graph) -> dict[str, np.ndarray]:
    """Samples for every graph input, each [samples, *input_shape[1:]] float32."""
    (whole,) = iter_batches(spec, graph, MAX_DATA_ELEMENTS)
    return whole
