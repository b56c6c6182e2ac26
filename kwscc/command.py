"""The command line recorded in the generated files' banner: readable and the same wherever the files go.

File arguments are kept as their base names (a DATA spec keeps its `:KEY`) and the output folder is
written as `.`, the folder holding the files: compiling one model into two folders gives identical bytes,
and no absolute path of the machine that compiled it ends up in the firmware sources.
"""
from __future__ import annotations

import os
import shlex

OUTPUT_FLAGS = ("-o", "--output")


def _readable(token: str) -> str:
    if "/" not in token and os.sep not in token:
        return token
    path, colon, key = token.rpartition(":") if _is_data_spec(token) else (token, "", "")
    return os.path.basename(os.path.normpath(path)) + colon + key


def _is_data_spec(token: str) -> bool:
    """FILE.npz:KEY (a ':' after the last path separator), not a Windows drive letter."""
    tail = token.replace(os.sep, "/").rpartition("/")[2]
    return ":" in tail


def recorded_command(argv: list[str]) -> str:
    words, output_next = ["kwscc"], False
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if output_next:
            words.append(".")
        elif arg.startswith("-") and eq and flag in OUTPUT_FLAGS:
            words.append(f"{flag}=.")
        elif arg.startswith("-o") and len(arg) > 2 and not arg.startswith("--"):  # -oOUT
            words.append("-o.")
        elif arg.startswith("--") and eq:
            words.append(f"{flag}={_readable(value)}")
        else:
            words.append(_readable(arg))
        output_next = arg in OUTPUT_FLAGS
    return " ".join(shlex.quote(w) for w in words)
