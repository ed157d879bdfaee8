"""SQLAlchemy 2 table models: runs and their history, programs, LLM calls and their retried
failures, inspirations, migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    problem: Mapped[str] = mapped_column(String(200))
    problem_root: Mapped[str] = mapped_column(Text)
    problem_fingerprint: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]
    seed: Mapped[int]
    status: Mapped[str] = mapped_column(String(32))  # running | finished | interrupted | stopped | failed
    stop_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RunLeaseRow(Base):
    """Who holds a run now (see :mod:`evolve.database.lease`); no row: nobody."""

    __tablename__ = "run_leases"

    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class RunEventRow(Base):
    """One entry of a run's history: started, resumed (with which overrides, what changed).

    The start entry also keeps the problem's spec, so that reading a run needs its database only,
    not the problem folder. A table of its own (not columns of ``runs``), so a database written by
    an earlier version gains it on its next run and stays readable meanwhile."""

    __tablename__ = "run_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # start | resume
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProgramRow(Base):
    __tablename__ = "programs"
    __table_args__ = (
        UniqueConstraint("run_id", "iteration", name="uq_program_run_iteration"),
        Index("ix_program_run_hash", "run_id", "code_hash"),
        Index("ix_program_run_score", "run_id", "status", "score"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int]
    parent_id: Mapped[str | None] = mapped_column(String(32), default=None)
    island: Mapped[int]
    generation: Mapped[int]
    mode: Mapped[str] = mapped_column(String(32), default="diff")
    code: Mapped[str | None] = mapped_column(Text, default=None)
    code_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    diff: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(default=None)  # primary metric, for queries
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cell: Mapped[list[Any] | None] = mapped_column(default=None)
    error_kind: Mapped[str | None] = mapped_column(String(32), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    error_stage: Mapped[str | None] = mapped_column(String(200), default=None)
    feedback: Mapped[str] = mapped_column(Text, default="")
    stdout_tail: Mapped[str] = mapped_column(Text, default="")
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    llm_call_id: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    evaluated_at: Mapped[datetime | None] = mapped_column(default=None)


class LLMCallRow(Base):
    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_run_iteration", "run_id", "iteration"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    iteration: Mapped[int]
    model: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(32), default="diff")
    prompt: Mapped[list[Any]]
    reply: Mapped[str | None] = mapped_column(Text, default=None)
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    latency_s: Mapped[float] = mapped_column(default=0.0)
    cost_usd: Mapped[float] = mapped_column(default=0.0)
    error_kind: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LLMRetryRow(Base):
    """A failed attempt of a model call that was retried (the call's own row says how the call
    ended): what kind of failure, and its message."""

    __tablename__ = "llm_retries"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    llm_call_id: Mapped[int] = mapped_column(ForeignKey("llm_calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)


class InspirationRow(Base):
    __tablename__ = "inspirations"

    program_id: Mapped[str] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    inspiration_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(default=0)


class MigrationRow(Base):
    __tablename__ = "migrations"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    iteration: Mapped[int]
    program_id: Mapped[str] = mapped_column(String(32))
    from_island: Mapped[int]
    to_island: Mapped[int]
