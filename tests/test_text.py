"""Untrusted text made storable: lone surrogates and NUL replaced, length bounded head and tail,
at the records' boundary."""

from __future__ import annotations

import re
import time

from hypothesis import given
from hypothesis import strategies as st

from evolve.records import (
    ErrorInfo,
    EvalResult,
    LLMReply,
    Message,
    Program,
    RetriedFailure,
    Status,
)
from evolve.text import (
    MAX_MESSAGE_CHARS,
    MAX_OUTPUT_CHARS,
    bound_text,
    clean_text,
    safe_text,
)


def test_clean_text_replaces_lone_surrogates_and_nul_only() -> None:
    assert clean_text("a\ud800b\udfffc\x00d") == "a\ufffdb\ufffdc\ufffdd"
    kept = "tab\t, newline\n, emoji \U0001f600, \x01 and \ufffe"
    assert clean_text(kept) is kept


@given(st.text(max_size=300), st.integers(min_value=0, max_value=200))
def test_bound_text_keeps_head_and_tail_and_names_the_cut(text: str, limit: int) -> None:
    bounded = bound_text(text, limit)
    if len(text) <= limit:
        assert bounded == text
        return
    assert len(bounded) <= limit
    match = re.search(r"\n\[\.\.\. (\d+) chars cut \.\.\.\]\n", bounded)
    if match is None:  # a limit too small for the marker keeps the head only
        assert bounded == text[:limit]
        return
    head, tail = bounded[: match.start()], bounded[match.end() :]
    assert len(bounded) == limit
    assert text.startswith(head) and text.endswith(tail)
    assert int(match.group(1)) == len(text) - len(head) - len(tail)


def test_a_40_mb_text_is_bounded_in_milliseconds() -> None:
    huge = "\ud800" + "x" * 40_000_000
    started = time.perf_counter()
    bounded = safe_text(huge, MAX_MESSAGE_CHARS)
    assert time.perf_counter() - started < 0.5
    assert len(bounded) == MAX_MESSAGE_CHARS and bounded.startswith("\ufffdxxx")


def test_records_make_candidate_and_model_text_storable() -> None:
    hostile = "\x00\ud800" + "y" * 5_000_000
    error = ErrorInfo(kind=Status.EXCEPTION, message=hostile, stage=hostile)
    result = EvalResult(status=Status.EXCEPTION, error=error, feedback=hostile, stdout_tail=hostile)
    assert len(error.message) == MAX_MESSAGE_CHARS and error.message.startswith("\ufffd\ufffdy")
    assert error.stage is not None and len(error.stage) == 200
    assert len(result.feedback) == MAX_MESSAGE_CHARS
    assert len(result.stdout_tail) == MAX_OUTPUT_CHARS
    assert RetriedFailure(kind="server", message=hostile).message == error.message
    assert LLMReply(model="m", text="ok \ud800").text == "ok \ufffd"
    assert Message(role="user", content="\x00").content == "\ufffd"
    program = Program(
        id="p", run_id="r", iteration=0, parent_id=None, island=0, generation=0,
        code="x = '\x00'\n" + "z = 1\n" * 500_000, code_hash="h", status=Status.PENDING,
    )
    assert program.code is not None and program.code.startswith("x = '\ufffd'\n")
    assert len(program.code) == len("x = '\x00'\n") + 3_000_000  # code is cleaned, never cut
    assert ErrorInfo.from_exception(Status.EXCEPTION, ValueError("\ud800")).message == "ValueError: \ufffd"
