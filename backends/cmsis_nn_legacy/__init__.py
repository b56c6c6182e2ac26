"""Backend for the CMSIS_5 5.9.0 legacy q7 API (the one ML-KWS-for-MCU was written for)."""
from kwscc.backends.cmsis_nn_legacy.backend import CmsisNNLegacyBackend

__all__ = ["CmsisNNLegacyBackend"]
