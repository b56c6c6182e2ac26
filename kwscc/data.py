"""Loading user data: DATA = FILE.npy | FILE.npz (one array, or arrays named after inputs) | FILE.npz:KEY."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from kwscc.errors import DataError
from kwscc.ir import Graph


def _open(spec: str):
    path, _, key = spec.partition(":") if spec.count(":") == 1 and not Path(spec).exists() else (spec, "", "")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        arrays = np.load(p, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{p.name}: not a readable .npy/.npz file ({exc})") from None
    return p, key, arrays


def load_array(spec: str) -> np.ndarray:
    """One array from DATA (labels, for instance)."""
    p, key, arrays = _open(spec)
    if isinstance(arrays, np.ndarray):
        return arrays
    names = list(arrays.keys())
    if not key:
        if len(names) != 1:
            raise DataError(f"{p.name} holds several arrays ({', '.join(names)}): name one as {p.name}:KEY")
        key = names[0]
    if key not in names:
        raise DataError(f"{p.name} has no array '{key}' (it has: {', '.join(names)})")
    return arrays[key]


def _check_samples(name: str, array: np.ndarray, shape: tuple[int, ...], source: str) -> np.ndarray:
    if array.dtype.kind not in "fiu":
        raise DataError(f"{source}: data for input '{name}' has dtype {array.dtype}; expected float32 (or numbers)")
    sample = tuple(shape[1:])
    count = int(np.prod(sample))
    if array.ndim >= 1 and tuple(array.shape[1:]) == sample:
        out = array
    elif array.ndim == 2 and array.shape[1] == count:
        out = array.reshape((array.shape[0],) + sample)
    else:
        forms = f"[samples, {', '.join(map(str, sample))}]"
        if len(sample) > 1:
            forms += f" or [samples, {count}]"
        raise DataError(f"{source}: data for input '{name}' has shape {list(array.shape)}; expected {forms}")
    if out.shape[0] == 0:
        raise DataError(f"{source}: no samples")
    out = out.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise DataError(f"{source}: data for input '{name}' contains NaN or Inf")
    return out


def load_inputs(spec: str, graph: Graph) -> dict[str, np.ndarray]:
    """Samples for every graph input, each [samples, *input_shape[1:]] float32."""
    p, key, arrays = _open(spec)
    if isinstance(arrays, np.ndarray) or key or len(graph.inputs) == 1 and len(arrays.keys()) == 1:
        named = {graph.inputs[0]: load_array(spec)}
        if len(graph.inputs) > 1:
            raise DataError(f"the model has {len(graph.inputs)} inputs: give an .npz with arrays named after them")
    else:
        missing = [n for n in graph.inputs if n not in arrays.keys()]
        if missing:
            raise DataError(
                f"{p.name} holds {', '.join(arrays.keys())}: name the array as {p.name}:KEY "
                f"or name arrays after the model inputs ({', '.join(graph.inputs)})"
            )
        named = {n: arrays[n] for n in graph.inputs}
    out = {n: _check_samples(n, a, graph.tensors[n].shape, spec) for n, a in named.items()}
    counts = {a.shape[0] for a in out.values()}
    if len(counts) != 1:
        raise DataError(f"{spec}: inputs have different sample counts {sorted(counts)}")
    return out
