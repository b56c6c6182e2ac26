"""Names from the model are untrusted: everything that reaches C text passes through here."""
from __future__ import annotations

import re

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Imaginary main".split()
)
MAX_IDENTIFIER = 48
# NAME.h must not shadow a header a build includes with -I OUT: C99/POSIX headers, and every name
# CMSIS (arm_*, cmsis_*, core_*) or kwscc (kwscc_*) uses for its own
SYSTEM_HEADERS = frozenset(
    "assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg "
    "stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string strings tgmath threads time uchar wchar wctype "
    "unistd fcntl alloca malloc memory endian sys".split()
)
RESERVED_PREFIXES = ("arm_", "cmsis_", "core_", "kwscc_")
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


def file_stem(ident: str) -> str:
    """The C name `ident` as the stem of NAME.h/NAME.c: suffixed with _model where NAME.h would shadow a
    system, CMSIS or kwscc header (stdint.h, arm_nnfunctions.h) for code compiled with -I OUT."""
    if ident in SYSTEM_HEADERS or ident.startswith(RESERVED_PREFIXES) or ident in ("arm", "cmsis", "kwscc"):
        return f"{ident}_model"[:MAX_IDENTIFIER + 6]
    return ident


def c_comment(text: str) -> str:
    """Text safe inside /* */ and on one line: printable ASCII without '*', '/' or '\\'."""
    safe = "".join(ch if (" " <= ch <= "~" and ch not in "*/\\") else "_" for ch in str(text))
    return safe[:MAX_COMMENT]


def printable(text: str) -> str:
    """Text safe to print, in XML and in Markdown: control and other unprintable characters (ANSI escapes
    in a model's names) shown as \\xNN."""
    return "".join(ch if ch.isprintable() or ch == " " else f"\\x{ord(ch):02x}" for ch in str(text))


def markdown_cell(text: str) -> str:
    """A model's name inside a Markdown table cell: printable, with its pipes and backticks escaped."""
    return re.sub(r"([|`\\*<>])", r"\\\1", printable(text))
