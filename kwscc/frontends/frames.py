"""Time frames of a sequence tensor as IR ops, for the readers that unroll loops (ONNX Scan, TFLite
WHILE) and unstack sequences (TFLite UNPACK, GATHER with a constant index).

Frame t of a sequence is a Crop [t, t+1) of its time axis, reshaped to the frame's own shape. The
IR keeps the batch on axis 0, but converters often make a sequence time-major first ([T, 1, F]: the
batch of 1 on axis 1). Such a sequence is read through a batch-first view [1, T, F] of the same
values (a pure reshape, since the moved axis has size 1), taken from the batch-first tensor the
time-major one was reshaped from where there is one, so every op keeps batch-first data.
"""
from __future__ import annotations

from kwscc.errors import UnsupportedError
from kwscc.ir import Graph, Node


class Frames:
    """Frame extraction for one graph; each sequence's batch-first view is made once."""

    def __init__(self, graph: Graph, sources: dict[str, str] | None = None) -> None:
        self.graph = graph
        self.sources = sources if sources is not None else graph.node_sources
        self._views: dict[str, tuple[str, int]] = {}  # (sequence, time axis) -> (view, its time axis)

    @property
    def made_views(self) -> bool:
        return bool(self._views)

    def _add(self, name: str, op: str, inputs: list[str], output: str, attrs: dict, source: str) -> str:
        node = self.graph.add_node(Node(self.graph.unique_node_name(name), op, inputs, [output], attrs))
        self.sources[node.name] = source
        return output

    def _view(self, seq: str, axis: int, where: str, source: str) -> tuple[str, int]:
        """A tensor holding `seq`'s values with the batch on axis 0, and the time axis in it."""
        shape = self.graph.tensors[seq].shape
        if axis > 0 or shape[0] == 1:
            return seq, axis
        key = f"{seq}:{axis}"
        if key in self._views:
            return self._views[key]
        if len(shape) < 2 or shape[1] != 1:  # time-major is [T, batch, ...]
            raise UnsupportedError(f"{where}: the sequence '{seq}' of shape {list(shape)} is time-major with a "
                                   "batch axis (axis 1) that is not 1; only batch 1 is supported")
        view_shape = (1,) + shape[:1] + shape[2:]
        src, producer = seq, self.graph.producer(seq)
        while producer is not None and producer.op == "Reshape":  # the batch-first tensor it came from
            src = producer.inputs[0]
            if self.graph.tensors[src].shape[:1] == (1,):
                break
            producer = self.graph.producer(src)
        if self.graph.tensors[src].shape[:1] != (1,):
            src = seq
        view = self.graph.unique_tensor_name(f"{seq}_batch_first")
        self._add(f"{view}_reshape", "Reshape", [src], view, {"shape": view_shape}, source)
        self._views[key] = (view, 1)
        return view, 1

    def take(self, seq: str, axis: int, t: int, out: str, out_shape: tuple[int, ...], where: str,
             source: str) -> list[str]:
        """Write frame t of `seq` (time axis `axis`) to `out`, shaped `out_shape`; returns the
        tensors added on the way (the view, the crop)."""
        shape = self.graph.tensors[seq].shape
        axis %= len(shape)
        if not 0 <= t < shape[axis]:
            raise UnsupportedError(f"{where}: step {t} lies outside the {shape[axis]} frames of '{seq}'")
        if shape[axis] == 1:  # the only frame (PyTorch's h_n[-1] of a batch-1 axis): no Crop, a Reshape
            self._add(f"{out}_reshape", "Reshape", [seq], out, {"shape": tuple(out_shape)}, source)
            return []
        view, time_axis = self._view(seq, axis, where, source)
        added = [] if view == seq else [view]
        crop_shape = list(self.graph.tensors[view].shape)
        crop_shape[time_axis] = 1
        if tuple(crop_shape) == tuple(out_shape):
            self._add(f"{out}_frame", "Crop", [view], out, {"axis": time_axis, "start": t, "end": t + 1}, source)
            return added
        crop = self.graph.unique_tensor_name(f"{out}_frame")
        self._add(crop, "Crop", [view], crop, {"axis": time_axis, "start": t, "end": t + 1}, source)
        self._add(f"{out}_reshape", "Reshape", [crop], out, {"shape": tuple(out_shape)}, source)
        return added + [crop]
