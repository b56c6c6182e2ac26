"""Names from the model are untrusted: everything that reaches C text passes through here."""
from __future__ import annotations

import re

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Imaginary main".split()
)
MAX_IDENTIFIER = 48
MAX_COMMENT = 96


def c_identifier(text: str, fallback: str = "model") -> str:
    """A valid, lowercase C99 identifier made from `text` (letters, digits, underscores only)."""
    ident = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    ident = re.sub(r"_+", "_", ident)[:MAX_IDENTIFIER].rstrip("_") or fallback
    if ident[0].isdigit():
        ident = f"m_{ident}"[:MAX_IDENTIFIER]
    if ident in C_KEYWORDS or ident.startswith("_"):
        ident = f"m_{ident}"
    return ident


def c_comment(text: str) -> str:
    """Text safe inside /* */ and on one line: printable ASCII without '*', '/' or '\\'."""
    safe = "".join(ch if (" " <= ch <= "~" and ch not in "*/\\") else "_" for ch in str(text))
    return safe[:MAX_COMMENT]


def terminal_text(text: str) -> str:
    """Text safe to print: control characters (ANSI escapes from a model's names) shown as \\xNN."""
    return "".join(ch if ch.isprintable() or ch == " " else f"\\x{ord(ch):02x}" for ch in str(text))
