"""Backend for the current CMSIS-NN s8 API (v4 to v7)."""
from kwscc.backends.cmsis_nn.backend import CmsisNNBackend

__all__ = ["CmsisNNBackend"]
