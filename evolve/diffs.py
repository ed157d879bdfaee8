"""Turn an LLM reply into a child program: parse SEARCH/REPLACE blocks and apply them.

This is the mutation path every proposal goes through, network model or offline mutator alike.
Everything here is a pure function of strings. Failures raise :class:`DiffError` whose message is
written for the LLM: the next prompt shows it, so it names the edit and says what to fix.

EVOLVE-BLOCK markers (``# EVOLVE-BLOCK-START`` / ``# EVOLVE-BLOCK-END``) are enforced here, not
merely suggested in the prompt: an edit that touches code outside every block is rejected.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from evolve.text import MAX_CODE_CHARS

__all__ = [
    "MAX_EDITS",
    "DiffError",
    "Edit",
    "apply_edits",
    "evolve_blocks",
    "extract_program",
    "merge_rewrite",
    "parse_edits",
    "unified_diff",
]

START_MARKER = "EVOLVE-BLOCK-START"
END_MARKER = "EVOLVE-BLOCK-END"

_SEARCH_RE = re.compile(r"^\s*<{5,9}\s*SEARCH\s*$")
_DIVIDER_RE = re.compile(r"^\s*={5,9}\s*$")
_REPLACE_RE = re.compile(r"^\s*>{5,9}\s*REPLACE\s*$")
# A fence opens on a line starting with ``` (an optional tag, then anything) and closes on a line
# of ``` alone; both are matched one line at a time, so parsing stays linear in the reply.
_FENCE_OPEN_RE = re.compile(r"[ \t]*```[ \t]*([\w+-]*)")
_FENCE_CLOSE_RE = re.compile(r"[ \t]*```[ \t]*")
_PYTHON_TAGS = frozenset({"python", "py", "python3"})

#: SEARCH/REPLACE blocks one reply may hold. Each edit is applied to the whole program in
#: linear time, so this bounds a reply's cost at a fixed multiple of the program's size.
MAX_EDITS = 200


class DiffError(Exception):
    """An LLM reply that cannot be turned into a program; the message is shown to the LLM."""


@dataclass(frozen=True, slots=True)
class Edit:
    """One SEARCH/REPLACE pair: whole lines to find in the program and the lines replacing them.

    Both texts are blocks of whole lines; a trailing newline is optional. An empty ``replace``
    deletes the matched lines.
    """

    search: str
    replace: str


def _lines(text: str) -> list[str]:
    """Split a block of whole lines, without a phantom empty line after a final newline."""
    if text == "":
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return parts


def _first_line(text: str) -> str:
    for line in _lines(text):
        if line.strip():
            return line.strip()
    return ""


def parse_edits(reply: str) -> tuple[Edit, ...]:
    """Extract the SEARCH/REPLACE blocks of an LLM reply, in order.

    Tolerant of what models really emit: blocks inside code fences or not, 5 to 9 marker
    characters, trailing spaces on marker lines, Windows newlines and prose between blocks.

    Linear in the reply's length: one pass over its lines, each matched against anchored
    patterns.

    Raises:
        DiffError: no block at all, a block without its ``=======`` or ``>>>>>>> REPLACE`` line,
            a block with an empty SEARCH section, or more than :data:`MAX_EDITS` blocks.
    """
    lines = reply.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    edits: list[Edit] = []
    state = "outside"
    search: list[str] = []
    replace: list[str] = []
    for line in lines:
        if state == "outside":
            if _SEARCH_RE.match(line):
                state, search, replace = "search", [], []
        elif state == "search":
            if _DIVIDER_RE.match(line):
                state = "replace"
            elif _SEARCH_RE.match(line) or _REPLACE_RE.match(line):
                raise DiffError(
                    f"block {len(edits) + 1} is malformed: expected a line '=======' between "
                    "the SEARCH and the REPLACE part"
                )
            else:
                search.append(line)
        elif _REPLACE_RE.match(line):
            if not any(s.strip() for s in search):
                raise DiffError(f"block {len(edits) + 1} has an empty SEARCH section")
            if len(edits) == MAX_EDITS:
                raise DiffError(
                    f"more than {MAX_EDITS} SEARCH/REPLACE blocks; make fewer, larger edits"
                )
            edits.append(
                Edit("".join(s + "\n" for s in search), "".join(r + "\n" for r in replace))
            )
            state = "outside"
        elif _SEARCH_RE.match(line) or _DIVIDER_RE.match(line):
            raise DiffError(
                f"block {len(edits) + 1} is malformed: expected '>>>>>>> REPLACE' to close it"
            )
        else:
            replace.append(line)
    if state != "outside":
        raise DiffError(
            f"unterminated block {len(edits) + 1}: each block must end with a line '>>>>>>> REPLACE'"
        )
    if not edits:
        raise DiffError(
            "no SEARCH/REPLACE block found; use '<<<<<<< SEARCH', '=======', '>>>>>>> REPLACE'"
        )
    return tuple(edits)


def _marker_lines(lines: Sequence[str]) -> list[str]:
    return [ln.strip() for ln in lines if START_MARKER in ln or END_MARKER in ln]


def evolve_blocks(code: str) -> tuple[tuple[int, int], ...]:
    """Line ranges ``(first, stop)`` (0-based, half-open) of the code inside each EVOLVE block.

    The marker lines themselves are excluded. An empty tuple means the program has no markers.

    Raises:
        DiffError: markers that are unbalanced or nested.
    """
    return _blocks_of(code.replace("\r\n", "\n").split("\n"))


def _blocks_of(lines: Sequence[str]) -> tuple[tuple[int, int], ...]:
    blocks: list[tuple[int, int]] = []
    start: int | None = None
    for i, line in enumerate(lines):
        if START_MARKER in line:
            if start is not None:
                raise DiffError(f"nested {START_MARKER} marker on line {i + 1}")
            start = i
        elif END_MARKER in line:
            if start is None:
                raise DiffError(f"{END_MARKER} on line {i + 1} without a matching {START_MARKER}")
            blocks.append((start + 1, i))
            start = None
    if start is not None:
        raise DiffError(f"{START_MARKER} on line {start + 1} is never closed by {END_MARKER}")
    return tuple(blocks)


def _occurrences(seq: Sequence[Hashable], pattern: Sequence[Hashable]) -> Iterator[int]:
    """Start of every occurrence of ``pattern`` in ``seq``, overlapping ones too, in
    O(len(seq) + len(pattern)) comparisons (Knuth-Morris-Pratt over items)."""
    m = len(pattern)
    if m == 0:
        return
    fail = [0] * m  # fail[k]: length of the longest proper border of pattern[: k + 1]
    k = 0
    for i in range(1, m):
        while k and pattern[i] != pattern[k]:
            k = fail[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        fail[i] = k
    k = 0
    for i, item in enumerate(seq):
        while k and item != pattern[k]:
            k = fail[k - 1]
        if item == pattern[k]:
            k += 1
            if k == m:
                yield i - m + 1
                k = fail[k - 1]


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _shape(lines: Sequence[str]) -> list[tuple[int | None, str] | None]:
    """Each line as matched up to indentation: None for a blank line, else (its indentation
    minus that of the previous non-blank line, or None for the first; its stripped text).

    Two runs of lines match under one uniform indentation shift exactly when their blank lines
    coincide and their shapes agree after the first non-blank line, whose stripped texts must
    agree; that turns the tolerant match into a plain sequence search.
    """
    shapes: list[tuple[int | None, str] | None] = []
    previous: int | None = None
    for line in lines:
        stripped = line.strip()
        if not stripped:
            shapes.append(None)
            continue
        indent = len(line) - len(line.lstrip())
        shapes.append((None if previous is None else indent - previous, stripped))
        previous = indent
    return shapes


def _tolerant_matches(lines: Sequence[str], pattern: Sequence[str]) -> list[tuple[int, int]]:
    """Every ``(start, shift)`` where ``pattern`` matches ``lines`` ignoring surrounding
    whitespace under one uniform indentation shift (code minus search), in linear time.

    A pattern of blank lines only has no shift and matches nowhere.
    """
    pat = _shape(pattern)
    first = next((k for k, shape in enumerate(pat) if shape is not None), None)
    if first is None:
        return []
    code = _shape(lines)
    blank_run = [0] * (len(lines) + 1)  # blank_run[i]: blank lines ending just before line i
    for i, shape in enumerate(code):
        blank_run[i + 1] = blank_run[i] + 1 if shape is None else 0
    head = pattern[first].strip()
    tail = pat[first + 1 :]
    stop = len(lines) - len(pattern) + first  # the last index the first non-blank line may take
    if tail:
        anchors: Iterable[int] = (j - 1 for j in _occurrences(code, tail) if j - 1 >= first)
    else:
        anchors = range(first, stop + 1)
    matches = []
    for a in anchors:
        if a > stop or code[a] is None or lines[a].strip() != head or blank_run[a] < first:
            continue
        matches.append((a - first, len(_indent(lines[a])) - len(_indent(pattern[first]))))
    return matches


def _reindent(lines: Sequence[str], shift: int, prefix: str) -> list[str]:
    out = []
    for line in lines:
        if not line.strip():
            out.append("")
        elif shift >= 0:
            out.append(prefix[:shift] + line.rstrip())
        else:
            cut = min(-shift, len(_indent(line)))
            out.append(line[cut:].rstrip())
    return out


def _locate(lines: list[str], edit: Edit, number: int) -> tuple[int, int, list[str]]:
    """Where edit ``number`` matches: (start, length, replacement lines re-indented)."""
    pattern = _lines(edit.search)
    replacement = _lines(edit.replace)
    quoted = repr(_first_line(edit.search))
    exact = list(_occurrences(lines, pattern))
    if len(exact) == 1:
        return exact[0], len(pattern), replacement
    if len(exact) > 1:
        raise DiffError(
            f"edit {number}: SEARCH text starting {quoted} occurs {len(exact)} times; "
            "include more surrounding lines so that it matches exactly once"
        )
    matches = _tolerant_matches(lines, pattern)
    if not matches:
        raise DiffError(
            f"edit {number}: SEARCH text starting {quoted} was not found in the program; "
            "SEARCH must copy existing lines exactly"
        )
    if len(matches) > 1:
        raise DiffError(
            f"edit {number}: SEARCH text starting {quoted} matches {len(matches)} places; "
            "include more surrounding lines so that it matches exactly once"
        )
    at, shift = matches[0]
    anchor = next((c for c, p in zip(lines[at:], pattern, strict=False) if p.strip()), lines[at])
    return at, len(pattern), _reindent(replacement, shift, _indent(anchor))


def apply_edits(code: str, edits: Iterable[Edit]) -> str:
    """Apply ``edits`` in order, each to the result of the previous one, and return the child.

    A SEARCH text must match whole lines exactly once: first exactly, else ignoring trailing
    whitespace and allowing a uniform indentation shift (the replacement is re-indented by the
    same shift). When the program has EVOLVE blocks, each matched region must lie wholly inside
    one block, and the markers must survive unchanged. Windows newlines are kept as they were.
    A child longer than :data:`~evolve.text.MAX_CODE_CHARS` is an error.

    Raises:
        DiffError: naming the 1-based edit that failed and quoting its first SEARCH line.
    """
    crlf = "\r\n" in code
    text = code.replace("\r\n", "\n") if crlf else code
    trailing_newline = text.endswith("\n")
    lines = (text[:-1] if trailing_newline else text).split("\n")
    original_markers = _marker_lines(lines)
    for number, edit in enumerate(edits, start=1):
        edit = Edit(edit.search.replace("\r\n", "\n"), edit.replace.replace("\r\n", "\n"))
        if not _lines(edit.search):
            raise DiffError(f"edit {number} has an empty SEARCH section")
        blocks = _blocks_of(lines)
        at, length, replacement = _locate(lines, edit, number)
        if blocks and not any(lo <= at and at + length <= hi for lo, hi in blocks):
            raise DiffError(
                f"edit {number} changes code outside the EVOLVE-BLOCK; only the lines between "
                f"{START_MARKER} and {END_MARKER} may change"
            )
        if _marker_lines(replacement):
            raise DiffError(f"edit {number} adds an EVOLVE-BLOCK marker; markers must not change")
        lines[at : at + length] = replacement
    if _marker_lines(lines) != original_markers:
        raise DiffError("the edits added or removed EVOLVE-BLOCK markers; markers must not change")
    result = _bounded_program("\n".join(lines) + ("\n" if trailing_newline else ""))
    return result.replace("\n", "\r\n") if crlf else result


def extract_program(reply: str) -> str:
    """The program of a full-rewrite reply.

    Takes the largest ```python fenced block (the last one among equals); untagged fences count
    when no block is tagged Python. Without any fence the whole reply is taken if it parses.
    The fences are found in one pass over the reply's lines (a fence regex over the whole text
    was quadratic in the number of unclosed fences: 68 s for a 120 KB reply).

    Raises:
        DiffError: no fenced block and the reply is not Python either.
    """
    text = reply.replace("\r\n", "\n")
    fenced = _fenced_blocks(text)
    tagged = [body for tag, body in fenced if tag in _PYTHON_TAGS]
    untagged = [body for tag, body in fenced if tag == ""]
    bodies = tagged or untagged
    if bodies:
        return _bounded_program(max(reversed(bodies), key=len))
    try:
        ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        if "```" in text:
            raise DiffError(
                "unterminated ``` code block (was the reply cut off?); close it with a line ```"
            ) from exc
        raise DiffError(
            "no ```python code block found and the reply is not a Python program "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return _bounded_program(text)


def _bounded_program(code: str) -> str:
    """``code``, unless it is longer than :data:`~evolve.text.MAX_CODE_CHARS` (a program is
    never cut, and one growing without bound would be stored and evaluated whole)."""
    if len(code) > MAX_CODE_CHARS:
        raise DiffError(
            f"the program would have {len(code)} characters, more than {MAX_CODE_CHARS}; "
            "keep it shorter"
        )
    return code


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every closed fenced block of ``text`` as (lower-case tag, body), in order, in one pass.

    A line opening a fence must end with a newline; the body runs to the next line that is
    ``` alone. A fence never closed ends the scan: no later line can close one either.
    """
    lines = text.split("\n")
    blocks: list[tuple[str, str]] = []
    tag: str | None = None
    body_start = 0
    for index, line in enumerate(lines):
        if tag is None:
            opened = _FENCE_OPEN_RE.match(line)
            if opened is not None and index < len(lines) - 1:
                tag, body_start = opened.group(1).lower(), index + 1
        elif _FENCE_CLOSE_RE.fullmatch(line):
            body = lines[body_start:index]
            blocks.append((tag, "".join(f"{ln}\n" for ln in body)))
            tag = None
    return blocks


def merge_rewrite(original: str, rewritten: str) -> str:
    """Combine a full rewrite with the original so only EVOLVE-block code can change.

    Code outside the blocks comes from ``original``; code inside each block from ``rewritten``.
    Without markers in ``original`` the rewrite is returned unchanged.

    Raises:
        DiffError: the rewrite dropped, added or unbalanced the markers.
    """
    old_lines = original.replace("\r\n", "\n").split("\n")
    old_blocks = _blocks_of(old_lines)
    if not old_blocks:
        return rewritten
    new_lines = rewritten.replace("\r\n", "\n").split("\n")
    new_blocks = _blocks_of(new_lines)
    if len(new_blocks) != len(old_blocks):
        raise DiffError(
            f"the rewrite has {len(new_blocks)} EVOLVE blocks but the program has "
            f"{len(old_blocks)}; keep the {START_MARKER}/{END_MARKER} marker lines"
        )
    merged: list[str] = []
    cursor = 0
    for (old_lo, old_hi), (new_lo, new_hi) in zip(old_blocks, new_blocks, strict=True):
        merged.extend(old_lines[cursor:old_lo])
        merged.extend(new_lines[new_lo:new_hi])
        cursor = old_hi
    merged.extend(old_lines[cursor:])
    return _bounded_program("\n".join(merged))


def unified_diff(old: str, new: str) -> str:
    """A unified diff from parent to child (headers ``a/parent``, ``b/child``), for lineage."""

    def _split(text: str) -> list[str]:
        return [ln if ln.endswith("\n") else ln + "\n" for ln in text.splitlines(keepends=True)]

    return "".join(
        difflib.unified_diff(_split(old), _split(new), fromfile="a/parent", tofile="b/child")
    )
