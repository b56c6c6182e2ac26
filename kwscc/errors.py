"""User-facing failures: every error kwscc reports to a user is a KwsccError."""
from __future__ import annotations


class KwsccError(Exception):
    """A failure caused by the user's input; the CLI prints it as one line and exits with 2."""

    exit_code = 2


class ModelError(KwsccError):
    """The model file cannot be read or is not a valid model."""


class UnsupportedError(KwsccError):
    """The model uses an op or an attribute kwscc cannot compile."""


class DataError(KwsccError):
    """Calibration or test data does not fit the model."""


class ToolError(KwsccError):
    """An external tool (C compiler, generated program) failed."""

    exit_code = 1


class CheckoutError(ToolError):
    """A library checkout the user named (--cmsis-nn, --cmsis-5) is missing or laid out otherwise: bad
    input like any other (exit 2), not a tool that failed."""

    exit_code = 2
