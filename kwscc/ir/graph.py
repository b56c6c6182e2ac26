"""Graph = op nodes connected through named tensors + a table of tensors."""
from __future__ import annotations

import copy
import heapq
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from kwscc.check.limits import check_node_count
from kwscc.errors import ModelError


@dataclass(slots=True)
class Tensor:
    """A value in the graph: an activation (data is None) or a constant (data holds it)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(slots=True)
class Node:
    """One operation. `op` names an entry of kwscc.ops; attrs are plain Python values."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


class Graph:
    """A model: op nodes connected through named tensors.

    Invariants checked by verify(): every tensor a node reads exists, each tensor has at most one
    producer, the graph is acyclic, and every recorded output shape is what the op infers.

    Edits only mark the edges stale; the topological order (and the networkx view) is rebuilt once, on
    the next query, so that a pass editing every node of a long chain stays linear in the graph size.
    """

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.recorded_ranges: dict[str, tuple[float, float]] = {}  # (min, max) a quantized model records
        # provenance: tensor -> (tensor of the model file, flat index or None), meaning this tensor's
        # values per sample are the file tensor's flattened values at that index (None: the same order)
        self.origins: dict[str, tuple[str, np.ndarray | None]] = {}
        self.node_sources: dict[str, str] = {}  # node -> the op type the model file gives it (for messages)
        self._nodes: dict[str, Node] = {}
        self._order: dict[str, int] = {}
        self._counter = 0
        self._nx = None
        self._order_cache: list[str] | None = []

    # ---- construction -------------------------------------------------------------------------
    def add_tensor(self, tensor: Tensor) -> Tensor:
        self.tensors[tensor.name] = tensor
        return tensor

    def add_const(self, name: str, data: np.ndarray) -> Tensor:
        data = np.asarray(data)
        return self.add_tensor(Tensor(self.unique_tensor_name(name), tuple(data.shape), str(data.dtype), data))

    def add_node(self, node: Node, infer: bool = True) -> Node:
        """Insert a node; with infer, its output tensors are created by the op's shape inference."""
        if node.name in self._nodes:
            node.name = self.unique_node_name(node.name)
        check_node_count(len(self._nodes) + 1, f"node '{node.name}' ({node.op})")
        self._nodes[node.name] = node
        self._order[node.name] = self._counter
        self._counter += 1
        if infer:
            self.infer_node(node)
        self.edges_changed()
        return node

    def infer_node(self, node: Node) -> None:
        """(Re)compute the node's output tensors; values too when every input is a constant."""
        from kwscc.ops import infer_outputs

        for tensor in infer_outputs(node, [self.tensors[name] for name in node.inputs]):
            self.tensors[tensor.name] = tensor

    def remove_node(self, name: str) -> None:
        del self._nodes[name]
        del self._order[name]
        self.edges_changed()

    def unique_node_name(self, base: str) -> str:
        name, i = base, 1
        while name in self._nodes:
            name, i = f"{base}_{i}", i + 1
        return name

    def unique_tensor_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.tensors:
            name, i = f"{base}_{i}", i + 1
        return name

    def replace_uses(self, old: str, new: str) -> None:
        """Make every reader of tensor `old` (nodes and graph outputs) read `new` instead."""
        self.rename_uses({old: new})

    def rename_uses(self, renames: dict[str, str]) -> None:
        """Every reader of a tensor in `renames` (nodes and graph outputs) reads its new name: one sweep."""
        for node in self._nodes.values():
            node.inputs = [renames.get(name, name) for name in node.inputs]
        self.outputs = [renames.get(name, name) for name in self.outputs]
        self.edges_changed()

    def edges_changed(self) -> None:
        """Mark edges and order stale (call after editing a node's inputs or outputs in place)."""
        self._nx = None
        self._order_cache = None

    @property
    def nx(self):
        """The graph as a networkx.DiGraph of node names, each edge carrying a tensor name (imported only
        here: networkx takes a tenth of a second to import, and compiling needs only the order)."""
        import networkx as nx

        if self._nx is None:
            self._nx = nx.DiGraph()
            self._nx.add_nodes_from(self._nodes)
            producers = self.producers()
            for node in self._nodes.values():
                for tensor in node.inputs:
                    if tensor in producers:
                        self._nx.add_edge(producers[tensor], node.name, tensor=tensor)
        return self._nx

    # ---- provenance ---------------------------------------------------------------------------
    def record_sources(self) -> None:
        """Mark every activation tensor as the model file's tensor of the same name (readers call this)."""
        self.origins = {name: (name, None) for name, t in self.tensors.items() if not t.is_const}

    def permute_origin(self, name: str, source_of: str, shape: tuple[int, ...], perm: tuple[int, ...]) -> None:
        """Tensor `name` now holds, per sample, tensor `source_of`'s values viewed as `shape` (batch
        first) and transposed by `perm`; without a known origin of `source_of`, `name` gets none."""
        origin = self.origins.get(source_of)
        if origin is None or perm[0] != 0 or int(np.prod(shape)) != self.tensors[name].size:
            self.origins.pop(name, None)
            return
        index = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:]).transpose([p - 1 for p in perm[1:]]).reshape(-1)
        if origin[1] is not None:
            index = origin[1][index]
        same = np.array_equal(index, np.arange(index.size))
        self.origins[name] = (origin[0], None if same else index)

    # ---- queries --------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        return self._nodes[name]

    def producers(self) -> dict[str, str]:
        return {out: node.name for node in self._nodes.values() for out in node.outputs}

    def producer(self, tensor: str) -> Node | None:
        name = self.producers().get(tensor)
        return self._nodes[name] if name else None

    def consumers(self, tensor: str) -> list[Node]:
        order = self._topological_order()
        return [self._nodes[name] for name in order if tensor in self._nodes[name].inputs]

    def nodes(self) -> list[Node]:
        """Nodes in a deterministic topological order (ties broken by insertion order)."""
        return [self._nodes[name] for name in self._topological_order()]

    def has_node(self, name: str) -> bool:
        return name in self._nodes

    def _topological_order(self) -> list[str]:
        """Kahn's algorithm, always taking the ready node inserted first (networkx's lexicographical sort)."""
        if self._order_cache is None:
            producers = self.producers()
            readers: dict[str, set[str]] = {name: set() for name in self._nodes}
            waiting = {}
            for node in self._nodes.values():
                before = {producers[t] for t in node.inputs if t in producers}
                for name in before:
                    readers[name].add(node.name)
                waiting[node.name] = len(before)
            ready = [(self._order[name], name) for name, count in waiting.items() if count == 0]
            heapq.heapify(ready)
            order = []
            while ready:
                name = heapq.heappop(ready)[1]
                order.append(name)
                for reader in readers[name]:
                    waiting[reader] -= 1
                    if waiting[reader] == 0:
                        heapq.heappush(ready, (self._order[reader], reader))
            if len(order) != len(self._nodes):
                raise ModelError(f"model graph '{self.name}' has a cycle")
            self._order_cache = order
        return self._order_cache

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes())

    def __len__(self) -> int:
        return len(self._nodes)

    def ops(self) -> list[str]:
        return [node.op for node in self.nodes()]

    def copy(self) -> Graph:
        return copy.deepcopy(self)

    def remove_unused_tensors(self) -> None:
        used = set(self.inputs) | set(self.outputs)
        for node in self._nodes.values():
            used.update(node.inputs)
            used.update(node.outputs)
        self.tensors = {name: t for name, t in self.tensors.items() if name in used}
        self.origins = {name: o for name, o in self.origins.items() if name in used}

    # ---- verification -------------------------------------------------------------------------
    def verify(self) -> None:
        """Raise AssertionError (a kwscc bug, not a user error) if an invariant is broken."""
        from kwscc.ops import infer_outputs

        produced: set[str] = set()
        for node in self._nodes.values():
            for out in node.outputs:
                assert out not in produced, f"tensor {out!r} has two producers"
                assert out not in self.inputs, f"graph input {out!r} is produced by {node.name!r}"
                produced.add(out)
        for node in self.nodes():
            for name in node.inputs + node.outputs:
                assert name in self.tensors, f"node {node.name!r} uses unknown tensor {name!r}"
            for tensor in infer_outputs(node, [self.tensors[n] for n in node.inputs]):
                recorded = self.tensors[tensor.name]
                assert recorded.shape == tensor.shape, (
                    f"{node.name}: recorded shape {recorded.shape} of {tensor.name!r} != inferred {tensor.shape}"
                )
        for name in self.inputs + self.outputs:
            assert name in self.tensors, f"graph input/output {name!r} missing"
