"""Make untrusted text safe to store and show: valid Unicode, no NUL, bounded length.

Text from a candidate program (its exception messages, its output) or from a model server is
hostile data. A lone surrogate cannot be encoded as UTF-8, so SQLite and PostgreSQL drivers both
refuse it; PostgreSQL refuses a NUL character in text; and a 40 MB exception message would go
into the database, the run page and the next prompt whole. :func:`clean_text` replaces the first
two with U+FFFD, :func:`bound_text` keeps a text's head and tail around a marker saying how much
was cut, and :func:`safe_text` does both. The records in :mod:`evolve.records` apply them to
every candidate- or model-derived field when a record is built, and the database applies them
again to what it writes, so no such string can stop a run.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_CODE_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_OUTPUT_CHARS",
    "MAX_REPLY_CHARS",
    "bound_text",
    "clean_text",
    "safe_text",
]

#: An error message, a scorer's feedback, a retried attempt's message.
MAX_MESSAGE_CHARS = 20_000
#: A candidate's captured stdout/stderr tail (the sandbox keeps 64 KB by default).
MAX_OUTPUT_CHARS = 100_000
#: A model reply as stored (``llm.max_reply_chars`` may not exceed it).
MAX_REPLY_CHARS = 1_000_000
#: A program's source: never cut (that would change the program); a longer child is an error.
MAX_CODE_CHARS = 1_000_000

# Code points no UTF-8 text may hold (lone surrogates) and NUL, which PostgreSQL refuses in text.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """``text`` with each lone surrogate and NUL replaced by U+FFFD; the same object if none.

    Clean text (nearly all of it) is told apart by C-speed checks: under a microsecond for 45 KB
    of ASCII, some 35 us with other characters, against 190 us for a regex scan.
    """
    if "\x00" not in text:
        if text.isascii():
            return text
        try:
            text.encode("utf-8")  # fails exactly on a lone surrogate
        except UnicodeEncodeError:
            pass
        else:
            return text
    return _UNSTORABLE.sub(_REPLACEMENT, text)


def bound_text(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its head and tail around a marker
    ``[... N chars cut ...]``, ``limit`` characters in all (just the head if ``limit`` is too
    small for the marker)."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    while True:  # the marker takes room too, so more is cut; at most a few rounds
        marker = f"\n[... {cut} chars cut ...]\n"
        keep = limit - len(marker)
        if len(text) - keep == cut:
            break
        cut = len(text) - keep
    if keep <= 0:
        return text[:limit]
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + marker + (text[len(text) - tail :] if tail else "")


def safe_text(text: str, limit: int) -> str:
    """``text`` bounded to ``limit`` characters, then cleaned (cutting first: a 40 MB text is
    not scanned whole)."""
    return clean_text(bound_text(text, limit))
