"""Typed, immutable records that cross module boundaries.

Every record here is a frozen pydantic model with ``extra="forbid"``: what the controller, the
evaluator, the LLM layer and the database hand each other. "Not evaluated" is a status, never a
score of 0.0, and errors are fields of a record, never metrics.
"""

from __future__ import annotations

import enum
from functools import partial
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from evolve.text import (
    MAX_CODE_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_OUTPUT_CHARS,
    MAX_REPLY_CHARS,
    clean_text,
    safe_text,
)

# Text fields that hold candidate- or model-derived strings, made storable when a record is
# built (see evolve.text): cleaned of lone surrogates and NUL, and bounded, except program code,
# which is cleaned only (cutting it would change the program; evolve.diffs bounds a child).
CleanText = Annotated[str, AfterValidator(clean_text)]
MessageText = Annotated[str, AfterValidator(partial(safe_text, limit=MAX_MESSAGE_CHARS))]
OutputText = Annotated[str, AfterValidator(partial(safe_text, limit=MAX_OUTPUT_CHARS))]
ReplyText = Annotated[str, AfterValidator(partial(safe_text, limit=MAX_REPLY_CHARS))]
DiffText = Annotated[str, AfterValidator(partial(safe_text, limit=2 * MAX_CODE_CHARS))]
StageText = Annotated[str, AfterValidator(partial(safe_text, limit=200))]


class Record(BaseModel):
    """Base of every boundary record: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(enum.StrEnum):
    """Lifecycle of a program. ``TRANSITIONS`` below is the only authority on moves."""

    PENDING = "pending"  # code known, evaluation not finished
    EVALUATED = "evaluated"  # evaluated, metrics valid
    DUPLICATE = "duplicate"  # same normalized code as a program already in the run
    LLM_ERROR = "llm_error"  # the model call failed after its retries
    DIFF_ERROR = "diff_error"  # the LLM reply could not be turned into a program
    SYNTAX_ERROR = "syntax_error"
    EXCEPTION = "exception"  # the candidate raised
    TIMEOUT = "timeout"  # killed at its wall-time or CPU-time limit
    MEMORY = "memory"  # exceeded its memory limit
    BAD_OUTPUT = "bad_output"  # returned something the protocol or scorer cannot read
    REJECTED = "rejected"  # the trusted scorer found the output invalid
    SCORER_ERROR = "scorer_error"  # the trusted scorer itself crashed (its bug, not the candidate's)

    @property
    def is_failure(self) -> bool:
        return self in FAILURES

    @property
    def is_terminal(self) -> bool:
        return self is not Status.PENDING


FAILURES = frozenset(
    {
        Status.LLM_ERROR,
        Status.DIFF_ERROR,
        Status.SYNTAX_ERROR,
        Status.EXCEPTION,
        Status.TIMEOUT,
        Status.MEMORY,
        Status.BAD_OUTPUT,
        Status.REJECTED,
        Status.SCORER_ERROR,
    }
)

#: Allowed status moves. ``None`` is "not yet recorded".
TRANSITIONS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Status.PENDING, Status.DIFF_ERROR, Status.LLM_ERROR}),
    Status.PENDING: frozenset(
        {Status.EVALUATED, Status.DUPLICATE} | FAILURES - {Status.DIFF_ERROR, Status.LLM_ERROR}
    ),
    **{s: frozenset() for s in Status if s is not Status.PENDING},
}


class TransitionError(ValueError):
    """A status change that the lifecycle does not allow."""


def check_transition(old: Status | None, new: Status) -> Status:
    """Return ``new`` if ``old -> new`` is allowed, else raise :class:`TransitionError`."""
    if new not in TRANSITIONS[old]:
        raise TransitionError(f"program status cannot move from {old} to {new}")
    return new


class ErrorInfo(Record):
    """Why an evaluation or a proposal failed; shown to the LLM in the next prompt."""

    kind: Status
    message: MessageText
    stage: StageText | None = None  # which cascade stage or step failed, when known

    @classmethod
    def from_exception(cls, kind: Status, exc: BaseException, stage: str | None = None) -> ErrorInfo:
        return cls(kind=kind, message=f"{type(exc).__name__}: {exc}", stage=stage)


class EvalResult(Record):
    """What an evaluator returns for one candidate: a status, metrics when it succeeded."""

    status: Status
    metrics: dict[str, float] = Field(default_factory=dict)
    feedback: MessageText = ""  # scorer's text for the LLM (warnings, hints); empty when none
    error: ErrorInfo | None = None
    stdout_tail: OutputText = ""  # the candidate's captured stdout/stderr, truncated
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is Status.EVALUATED


class Message(Record):
    role: str  # "system" | "user" | "assistant"
    content: CleanText


class LLMRequest(Record):
    """A prompt for one proposal.

    ``parent_code`` repeats the parent program in structured form so that the offline mutator can
    work without parsing the prompt; network models read only ``messages``.
    """

    messages: tuple[Message, ...]
    mode: str = "diff"  # "diff" | "rewrite"
    parent_code: CleanText = ""
    seed: int = 0


class RetriedFailure(Record):
    """A failed attempt of a model call that was retried: its error kind and message."""

    kind: str  # ProviderError kinds: rate_limit, server, timeout, connection, malformed, ...
    message: MessageText


class LLMReply(Record):
    """One completion, with what it cost, and the failed attempts retried before it."""

    model: str
    text: ReplyText
    input_tokens: int = 0  # every prompt token, cached or not
    output_tokens: int = 0
    cache_read_tokens: int = 0  # part of input_tokens read from the provider's prompt cache
    cache_write_tokens: int = 0  # part of input_tokens written to the provider's prompt cache
    latency_s: float = 0.0
    cost_usd: float = 0.0
    retried: tuple[RetriedFailure, ...] = ()


class Program(Record):
    """A program as stored in the run: the unit the archive, prompts and lineage talk about."""

    id: str
    run_id: str
    iteration: int
    parent_id: str | None
    island: int
    generation: int
    code: CleanText | None  # None only for proposals that produced no program (llm/diff errors)
    code_hash: str | None
    diff: DiffText = ""  # unified diff from the parent
    status: Status
    metrics: dict[str, float] = Field(default_factory=dict)
    features: dict[str, float] = Field(default_factory=dict)
    cell: tuple[int, ...] | None = None
    error: ErrorInfo | None = None
    feedback: MessageText = ""
    mode: str = "diff"
    inspiration_ids: tuple[str, ...] = ()
    timings: dict[str, float] = Field(default_factory=dict)

    def score(self, primary: str) -> float | None:
        """The primary metric, or None when the program has none (not evaluated, failed)."""
        if self.status is not Status.EVALUATED:
            return None
        return self.metrics.get(primary)


def jsonable(value: Any) -> Any:
    """Turn numpy scalars and tuples into plain JSON types (used for DB JSON columns)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
