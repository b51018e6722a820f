"""Text from uploads (blob names, column names, cell values) made safe for one line of a log or a terminal."""

from __future__ import annotations

import unicodedata

# Control characters (C0, DEL, C1: newlines that forge log lines, ANSI escapes that drive a terminal) and the
# Unicode line and paragraph separators, which some viewers also break lines on.
_ESCAPED = frozenset({"Cc", "Zl", "Zp"})


def _escape(char: str) -> str:
    if unicodedata.category(char) not in _ESCAPED:
        return char
    return char.encode("unicode_escape").decode("ascii")  # '\n', '\x1b', '\u2028': visible, never acted on


def printable(value: object) -> str:
    """``value`` as text with every control character written as its escape (``\\n``, ``\\x1b``)."""
    text = str(value)
    if text.isprintable():  # the common case: nothing to escape (isprintable is False for every escaped category)
        return text
    return "".join(_escape(char) for char in text)


def has_control(text: str) -> str | None:
    """The first control character in ``text``, escaped, or None."""
    return next((_escape(char) for char in text if unicodedata.category(char) in _ESCAPED), None)
