"""kwscc's intermediate representation: a graph of op nodes plus a tensor table."""
from kwscc.ir.graph import Graph, Node, Tensor

__all__ = ["Graph", "Node", "Tensor"]
