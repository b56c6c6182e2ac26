"""jinja2 environment for the C templates (all C text lives in templates/)."""
from __future__ import annotations

import jinja2
import numpy as np

VALUES_PER_LINE = 16


def c_values(values) -> str:
    """Array initializer body: integers, VALUES_PER_LINE per indented line."""
    items = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(items[i:i + VALUES_PER_LINE]) for i in range(0, len(items), VALUES_PER_LINE)]
    return ",\n".join("    " + line for line in lines)


def c_float_literal(value: float) -> str:
    """An exact float literal for a power of two: C99 hexadecimal floating constant."""
    mantissa, exponent = np.frexp(value)
    assert mantissa == 0.5, "only powers of two are emitted"
    return f"0x1p{int(exponent) - 1}f"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("kwscc.templates", ""),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["c_values"] = c_values
    return env
