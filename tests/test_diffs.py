"""Golden tests for parsing and applying SEARCH/REPLACE replies, EVOLVE blocks and rewrites."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evolve.diffs import (
    MAX_EDITS,
    DiffError,
    Edit,
    _tolerant_matches,
    apply_edits,
    evolve_blocks,
    extract_program,
    merge_rewrite,
    parse_edits,
    unified_diff,
)
from evolve.text import MAX_CODE_CHARS

PROGRAM = """import math


def area(r):
    # EVOLVE-BLOCK-START
    scale = 1.0
    value = math.pi * r * r
    # EVOLVE-BLOCK-END
    return value * scale
"""


def block(search: str, replace: str, marker: int = 7) -> str:
    return f"{'<' * marker} SEARCH\n{search}{'=' * marker}\n{replace}{'>' * marker} REPLACE\n"


# --- parse_edits ---------------------------------------------------------------------------


def test_parse_single_unfenced_block() -> None:
    assert parse_edits(block("a = 1\n", "a = 2\n")) == (Edit("a = 1\n", "a = 2\n"),)


def test_parse_fenced_blocks_with_prose_between() -> None:
    reply = (
        "I will change two things.\n```python\n"
        + block("a = 1\n", "a = 2\n")
        + "```\nAnd then:\n```\n"
        + block("b = 1\nc = 3\n", "")
        + "```\nDone."
    )
    assert parse_edits(reply) == (Edit("a = 1\n", "a = 2\n"), Edit("b = 1\nc = 3\n", ""))


def test_parse_tolerates_marker_lengths_trailing_spaces_and_crlf() -> None:
    reply = "<<<<< SEARCH   \r\nx = 1\r\n=========  \r\nx = 2\r\n>>>>>>>>> REPLACE \r\n"
    assert parse_edits(reply) == (Edit("x = 1\n", "x = 2\n"),)


def test_parse_keeps_blank_lines_and_indentation() -> None:
    reply = block("    if x:\n\n        y()\n", "    if x:\n        z()\n")
    assert parse_edits(reply) == (Edit("    if x:\n\n        y()\n", "    if x:\n        z()\n"),)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("just prose, no edits", "no SEARCH/REPLACE block found"),
        ("<<<<<<< SEARCH\na = 1\n=======\na = 2\n", "unterminated block 1"),
        ("<<<<<<< SEARCH\na = 1\n", "unterminated block 1"),
        (block("", "a = 2\n"), "empty SEARCH"),
        ("<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n", "expected a line '======='"),
        (block("a\n", "b\n") + "<<<<<<< SEARCH\nc\n=======\nd\n<<<<<<< SEARCH\n", "block 2"),
    ],
)
def test_parse_errors_give_a_reason_for_the_llm(reply: str, reason: str) -> None:
    with pytest.raises(DiffError, match=reason):
        parse_edits(reply)


# --- apply_edits: golden -------------------------------------------------------------------


def test_apply_exact_match() -> None:
    child = apply_edits(PROGRAM, [Edit("    scale = 1.0\n", "    scale = 2.0\n")])
    assert child == PROGRAM.replace("scale = 1.0", "scale = 2.0")


def test_apply_whitespace_tolerant_with_indentation_shift() -> None:
    # The model dropped the indentation and left trailing spaces; the replacement is re-indented.
    edit = Edit(
        "scale = 1.0   \nvalue = math.pi * r * r\n",
        "scale = 0.5\nif r > 1:\n    value = r\nelse:\n    value = math.pi * r * r\n",
    )
    assert apply_edits(PROGRAM, [edit]) == PROGRAM.replace(
        "    scale = 1.0\n    value = math.pi * r * r\n",
        "    scale = 0.5\n    if r > 1:\n        value = r\n    else:\n        value = math.pi * r * r\n",
    )


def test_apply_tolerant_match_with_negative_shift() -> None:
    code = "def f():\n    if x:\n        y = 1\n"
    edit = Edit(
        "            if x:\n                y = 1\n", "            if x:\n                y = 2\n"
    )
    assert apply_edits(code, [edit]) == "def f():\n    if x:\n        y = 2\n"


def test_apply_multiple_edits_in_order() -> None:
    edits = [
        Edit("    scale = 1.0\n", "    scale = 2.0\n"),
        Edit("    scale = 2.0\n", "    scale = 3.0\n    offset = 1\n"),
    ]
    assert apply_edits(PROGRAM, edits) == PROGRAM.replace(
        "    scale = 1.0\n", "    scale = 3.0\n    offset = 1\n"
    )


def test_apply_deletion() -> None:
    code = "x = 1\ny = 2\nz = 3\n"
    assert apply_edits(code, [Edit("y = 2\n", "")]) == "x = 1\nz = 3\n"


def test_apply_ambiguous_search_is_an_error() -> None:
    code = "x = 1\ny = 0\nx = 1\n"
    with pytest.raises(DiffError, match=r"edit 1: SEARCH text starting 'x = 1' occurs 2 times"):
        apply_edits(code, [Edit("x = 1\n", "x = 2\n")])


def test_apply_ambiguous_tolerant_match_is_an_error() -> None:
    code = "def f():\n    x = 1\ndef g():\n        x = 1\n"
    with pytest.raises(DiffError, match="matches 2 places"):
        apply_edits(code, [Edit("x = 1\n", "x = 2\n")])


def test_apply_missing_search_names_the_edit_and_its_first_line() -> None:
    edits = [Edit("    scale = 1.0\n", "    scale = 2.0\n"), Edit("\n    nothing = here\n", "")]
    with pytest.raises(
        DiffError, match=r"edit 2: SEARCH text starting 'nothing = here' was not found"
    ):
        apply_edits(PROGRAM, edits)


def test_apply_edit_outside_evolve_block_is_rejected() -> None:
    with pytest.raises(DiffError, match="edit 1 changes code outside the EVOLVE-BLOCK"):
        apply_edits(PROGRAM, [Edit("    return value * scale\n", "    return 0\n")])


def test_apply_edit_straddling_a_marker_is_rejected() -> None:
    edit = Edit("    # EVOLVE-BLOCK-START\n    scale = 1.0\n", "    scale = 2.0\n")
    with pytest.raises(DiffError, match="edit 1 changes code outside the EVOLVE-BLOCK"):
        apply_edits(PROGRAM, [edit])


def test_apply_marker_added_inside_block_is_rejected() -> None:
    edit = Edit("    scale = 1.0\n", "    scale = 1.0\n    # EVOLVE-BLOCK-END\n")
    with pytest.raises(DiffError, match="marker"):
        apply_edits(PROGRAM, [edit])


def test_apply_marker_added_to_unmarked_program_is_rejected() -> None:
    with pytest.raises(DiffError, match="edit 1 adds an EVOLVE-BLOCK marker"):
        apply_edits("x = 1\n", [Edit("x = 1\n", "# EVOLVE-BLOCK-START\nx = 1\n")])


def test_apply_marker_removal_is_rejected() -> None:
    edit = Edit("    value = math.pi * r * r\n    # EVOLVE-BLOCK-END\n", "    value = r\n")
    with pytest.raises(DiffError, match="edit 1 changes code outside the EVOLVE-BLOCK"):
        apply_edits(PROGRAM, [edit])


def test_apply_respects_several_evolve_blocks() -> None:
    code = (
        "# EVOLVE-BLOCK-START\na = 1\n# EVOLVE-BLOCK-END\nfixed = 0\n"
        "# EVOLVE-BLOCK-START\nb = 2\n# EVOLVE-BLOCK-END\n"
    )
    child = apply_edits(code, [Edit("a = 1\n", "a = 10\n"), Edit("b = 2\n", "b = 20\n")])
    assert child == code.replace("a = 1", "a = 10").replace("b = 2", "b = 20")
    with pytest.raises(DiffError, match="edit 1 changes code outside"):
        apply_edits(code, [Edit("fixed = 0\n", "fixed = 1\n")])
    spanning = Edit(
        "a = 1\n# EVOLVE-BLOCK-END\nfixed = 0\n# EVOLVE-BLOCK-START\nb = 2\n", "a = 1\n"
    )
    with pytest.raises(DiffError, match="outside the EVOLVE-BLOCK"):
        apply_edits(code, [spanning])


def test_apply_keeps_crlf_newlines() -> None:
    code = PROGRAM.replace("\n", "\r\n")
    child = apply_edits(code, parse_edits(block("    scale = 1.0\r\n", "    scale = 4.0\r\n")))
    assert child == PROGRAM.replace("scale = 1.0", "scale = 4.0").replace("\n", "\r\n")


def test_apply_without_trailing_newline() -> None:
    assert apply_edits("x = 1\ny = 2", [Edit("y = 2", "y = 3")]) == "x = 1\ny = 3"


def test_apply_reply_end_to_end_fenced() -> None:
    reply = "Try a larger scale.\n```\n" + block("    scale = 1.0\n", "    scale = 1.5\n") + "```\n"
    assert apply_edits(PROGRAM, parse_edits(reply)) == PROGRAM.replace("1.0", "1.5")


def test_evolve_blocks_ranges_and_unbalanced_markers() -> None:
    assert evolve_blocks(PROGRAM) == ((5, 7),)
    assert evolve_blocks("x = 1\n") == ()
    with pytest.raises(DiffError, match="never closed"):
        evolve_blocks("# EVOLVE-BLOCK-START\nx = 1\n")
    with pytest.raises(DiffError, match="without a matching"):
        evolve_blocks("x = 1\n# EVOLVE-BLOCK-END\n")


# --- apply_edits: properties ---------------------------------------------------------------

_names = st.from_regex(r"[a-z]{1,6}", fullmatch=True)


@given(values=st.lists(st.integers(0, 999), min_size=1, max_size=12, unique=True), data=st.data())
def test_replacing_a_unique_line_changes_only_that_line(
    values: list[int], data: st.DataObject
) -> None:
    lines = [f"v{i} = {v}" for i, v in enumerate(values)]
    code = "\n".join(lines) + "\n"
    target = data.draw(st.integers(0, len(lines) - 1))
    new = data.draw(_names)
    child = apply_edits(code, [Edit(lines[target] + "\n", f"{new} = 0\n")])
    expected = [*lines[:target], f"{new} = 0", *lines[target + 1 :]]
    assert child == "\n".join(expected) + "\n"


@given(indent=st.integers(0, 8), shift=st.integers(-4, 4))
def test_uniform_indentation_shift_is_tolerated(indent: int, shift: int) -> None:
    code = "head()\n" + " " * indent + "a = 1\n" + " " * indent + "    b = 2\n"
    pad = " " * max(0, indent + shift)
    edit = Edit(f"{pad}a = 1\n{pad}    b = 2\n", f"{pad}a = 5\n")
    assert apply_edits(code, [edit]) == "head()\n" + " " * indent + "a = 5\n"


# --- rewrites ------------------------------------------------------------------------------


def test_extract_program_takes_the_largest_python_fence() -> None:
    reply = "```python\nx = 1\n```\nthen\n```python\ndef f():\n    return 2\n```\n```text\nlong long long long\n```"
    assert extract_program(reply) == "def f():\n    return 2\n"


def test_extract_program_takes_untagged_fence_and_crlf() -> None:
    assert extract_program("Here:\r\n```\r\ny = 3\r\n```\r\n") == "y = 3\n"


def test_extract_program_accepts_an_unfenced_program() -> None:
    assert extract_program("def f():\n    return 1\n") == "def f():\n    return 1\n"


def test_extract_program_rejects_prose() -> None:
    with pytest.raises(DiffError, match="no ```python code block found"):
        extract_program("I think you should make it faster.")


def test_extract_program_reports_an_unterminated_fence() -> None:
    with pytest.raises(DiffError, match="unterminated ``` code block"):
        extract_program("Here it is:\n```python\ndef f():\n    return")


def test_merge_rewrite_keeps_code_outside_blocks() -> None:
    rewritten = PROGRAM.replace("scale = 1.0", "scale = 9.0").replace("import math", "import os")
    merged = merge_rewrite(PROGRAM, rewritten)
    assert merged == PROGRAM.replace("scale = 1.0", "scale = 9.0")


def test_merge_rewrite_requires_markers() -> None:
    with pytest.raises(DiffError, match="keep the EVOLVE-BLOCK-START/EVOLVE-BLOCK-END"):
        merge_rewrite(PROGRAM, "def area(r):\n    return r\n")


def test_merge_rewrite_without_markers_returns_the_rewrite() -> None:
    assert merge_rewrite("x = 1\n", "y = 2\n") == "y = 2\n"


def test_unified_diff_golden() -> None:
    assert unified_diff("a = 1\nb = 2\n", "a = 1\nb = 3\n") == (
        "--- a/parent\n+++ b/child\n@@ -1,2 +1,2 @@\n a = 1\n-b = 2\n+b = 3\n"
    )
    assert unified_diff("x\n", "x\n") == ""


# -- hostile replies: every parse is linear in the reply ---------------------------------------

#: Well above the 120 KB reply that froze the loop for over 95 s with a fence regex.
HOSTILE_SIZE = 150_000
HOSTILE_REPLIES = {
    "unclosed_tagged_fences": "```python x\n" * (HOSTILE_SIZE // 12),
    "unclosed_fences_with_bodies": "```py a\nbody\n" * (HOSTILE_SIZE // 13),
    "fence_lines": "```\n" * (HOSTILE_SIZE // 4),
    "search_markers": "<<<<<<< SEARCH\n" * (HOSTILE_SIZE // 15),
    "dividers": "=======\n" * (HOSTILE_SIZE // 8),
    "long_marker_line": "<" * HOSTILE_SIZE,
    "long_space_line": " " * HOSTILE_SIZE + "x",
    "long_backtick_line": "`" * HOSTILE_SIZE,
}


def _seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    with contextlib.suppress(DiffError):
        work()
    return time.perf_counter() - started


@pytest.mark.parametrize("reply", HOSTILE_REPLIES.values(), ids=HOSTILE_REPLIES.keys())
def test_parsing_a_hostile_reply_takes_under_a_second(reply: str) -> None:
    assert _seconds(lambda: extract_program(reply)) < 1.0
    assert _seconds(lambda: parse_edits(reply)) < 1.0
    assert _seconds(lambda: merge_rewrite(PROGRAM, reply)) < 1.0


def test_an_unclosed_fence_after_closed_ones_keeps_the_closed_ones() -> None:
    reply = "```python\nx = 1\n```\n" + "```python\n" * 10_000
    assert extract_program(reply) == "x = 1\n"


def test_overlapping_searches_in_a_long_program_match_in_linear_time() -> None:
    program = "    x = 1\n" * 6000
    exact = Edit("    x = 1\n" * 3000, "y = 2\n")
    shifted = Edit("x = 1\n" * 3000, "y = 2\n")
    for edit, message in ((exact, "occurs 3001 times"), (shifted, "matches 3001 places")):
        started = time.perf_counter()
        with pytest.raises(DiffError, match=message):
            apply_edits(program, [edit])
        assert time.perf_counter() - started < 1.0


def test_a_reply_with_too_many_blocks_is_rejected() -> None:
    block = "<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
    assert len(parse_edits(block * MAX_EDITS)) == MAX_EDITS
    with pytest.raises(DiffError, match=f"more than {MAX_EDITS} SEARCH/REPLACE blocks"):
        parse_edits(block * (MAX_EDITS + 1))


def _naive_tolerant_matches(lines: list[str], pattern: list[str]) -> list[tuple[int, int]]:
    """The definition: every window whose stripped lines agree and whose non-blank lines all
    have the same indentation shift (windows without a non-blank line do not match)."""
    found = []
    for at in range(len(lines) - len(pattern) + 1):
        window = lines[at : at + len(pattern)]
        if any(c.strip() != p.strip() for c, p in zip(window, pattern, strict=True)):
            continue
        shifts = {
            (len(c) - len(c.lstrip())) - (len(p) - len(p.lstrip()))
            for c, p in zip(window, pattern, strict=True)
            if p.strip()
        }
        if len(shifts) == 1:
            found.append((at, shifts.pop()))
    return found


_LINE = st.sampled_from(["x", " x", "  x", "\tx", "y", "  y", "", "  ", "x ", "    y"])


@given(st.lists(_LINE, min_size=1, max_size=12), st.lists(_LINE, min_size=1, max_size=4))
def test_tolerant_matching_finds_exactly_the_windows_of_its_definition(
    lines: list[str], pattern: list[str]
) -> None:
    assert _tolerant_matches(lines, pattern) == _naive_tolerant_matches(lines, pattern)


def test_a_child_longer_than_the_code_limit_is_rejected_never_cut() -> None:
    line = "    x = 1\n"
    grow = Edit("    scale = 1.0\n", "    scale = 1.0\n" + line * (MAX_CODE_CHARS // len(line)))
    with pytest.raises(DiffError, match=f"more than {MAX_CODE_CHARS}"):
        apply_edits(PROGRAM, [grow])
    huge = "```python\n" + "x = 1\n" * (MAX_CODE_CHARS // 6 + 1) + "```\n"
    with pytest.raises(DiffError, match=f"more than {MAX_CODE_CHARS}"):
        extract_program(huge)
