"""Commands to a run, through its database: pause, resume, stop, a new budget, a program to inject.

A command is written to the ``run_commands`` table by ``evolve ctl`` or the web UI, so it reaches
a run on another machine through a shared database, and the table is the run's history of
commands. The run's controller polls it (:mod:`evolve.steering`) and marks each command applied
with its outcome; a command sent while no controller holds the run waits, with ``applied_at``
empty, for the next controller of the run.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import JSON, Engine, String, Text, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from evolve.database.models import Base, utcnow
from evolve.errors import UserError, one_line
from evolve.text import MAX_CODE_CHARS

#: What ``budget`` may change, and the type of each value.
BUDGETS: dict[str, type[int] | type[float]] = {
    "max_iterations": int,
    "max_wall_time": float,
    "max_cost_usd": float,
    "max_tokens": int,
    "max_llm_failures": int,
}
KINDS = ("pause", "resume", "stop", "budget", "inject")


class RunCommandRow(Base):
    __tablename__ = "run_commands"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(200))  # who sent it: "cli on HOST", "ui from ADDR"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome: Mapped[str | None] = mapped_column(Text, default=None)


class Command(BaseModel):
    """One command, validated: ``budget`` takes limits from :data:`BUDGETS`, ``inject`` the
    program's code (UTF-8 text, at most ``MAX_CODE_CHARS``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["pause", "resume", "stop", "budget", "inject"]
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _args_fit_kind(self) -> Command:
        if self.kind in ("pause", "resume", "stop") and self.args:
            raise ValueError(f"{self.kind} takes no arguments")
        if self.kind == "budget":
            if not self.args:
                raise ValueError("budget needs at least one of " + ", ".join(BUDGETS))
            for key, value in self.args.items():
                if key not in BUDGETS:
                    raise ValueError(f"budget: unknown limit {key!r} (one of {', '.join(BUDGETS)})")
                kind = BUDGETS[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not float(value).is_integer()):
                    raise ValueError(f"budget: {key} must be a{'n integer' if kind is int else ' number'}, got {value!r}")
                if not math.isfinite(value) or value < 0 or (value == 0 and key != "max_iterations"):
                    raise ValueError(f"budget: {key} must be a positive, finite value, got {value!r}")
        if self.kind == "inject":
            code = self.args.get("code")
            if set(self.args) != {"code"} or not isinstance(code, str) or not code.strip():
                raise ValueError("inject needs the program's code")
            if len(code) > MAX_CODE_CHARS:
                raise ValueError(f"inject: the program has {len(code):,} characters, at most {MAX_CODE_CHARS:,}")
            if "\x00" in code:
                raise ValueError("inject: the program holds a NUL character")
        return self


def parse_command(kind: str, args: dict[str, Any]) -> Command:
    """A command from user input; a UserError that names what is wrong."""
    try:
        return Command(kind=kind, args=args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "command"
        raise UserError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None


def budget_args(pairs: list[str]) -> dict[str, Any]:
    """``["max_iterations=500", "max_cost_usd=2.5"]`` as budget arguments."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in BUDGETS:
            raise UserError(f"budget: expected LIMIT=VALUE with LIMIT one of {', '.join(BUDGETS)}, got {pair!r}")
        try:
            out[key] = BUDGETS[key](raw)
        except ValueError:
            raise UserError(f"budget: {key}: not a{'n integer' if BUDGETS[key] is int else ' number'}: {raw!r}") from None
    return out


class CommandLog:
    """Write and read the ``run_commands`` table (created on first use)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ready = False

    def _table(self) -> None:
        if not self._ready:
            RunCommandRow.__table__.create(self._engine, checkfirst=True)  # type: ignore[attr-defined]
            self._ready = True

    def record(self, run_id: str, command: Command, *, source: str) -> int:
        """Store the command; its id."""
        self._table()
        with self._engine.begin() as conn:
            row = conn.execute(
                insert(RunCommandRow).returning(RunCommandRow.id),
                {"run_id": run_id, "kind": command.kind, "args": command.args, "source": source[:200], "created_at": utcnow()},
            )
            return int(row.scalar_one())

    def history(self, run_id: str) -> list[dict[str, Any]]:
        """Every command sent to the run, oldest first (an inject's code as its size only)."""
        self._table()
        q = select(RunCommandRow).where(RunCommandRow.run_id == run_id).order_by(RunCommandRow.id)
        with self._engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            {
                "id": r["id"], "kind": r["kind"], "source": r["source"],
                "args": {"code_chars": len(r["args"].get("code", ""))} if r["kind"] == "inject" else r["args"],
                "created_at": r["created_at"].isoformat(), "applied_at": r["applied_at"].isoformat() if r["applied_at"] else None,
                "outcome": r["outcome"],
            }
            for r in rows
        ]

    def pending(self, run_id: str) -> list[tuple[int, Command]]:
        """The commands the run has not applied yet, oldest first (what its controller polls)."""
        self._table()
        q = (
            select(RunCommandRow.id, RunCommandRow.kind, RunCommandRow.args)
            .where(RunCommandRow.run_id == run_id, RunCommandRow.applied_at.is_(None))
            .order_by(RunCommandRow.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(q).all()
        out = []
        for number, kind, args in rows:
            try:
                out.append((int(number), Command(kind=kind, args=dict(args or {}))))
            except ValidationError as exc:  # written by hand or by another version: refused, recorded
                self.mark_applied(int(number), f"refused: {one_line(exc)}")
        return out

    def mark_applied(self, number: int, outcome: str) -> None:
        """Record that the controller acted on command ``number``, and how."""
        self._table()
        with self._engine.begin() as conn:
            conn.execute(
                update(RunCommandRow)
                .where(RunCommandRow.id == number)
                .values(applied_at=utcnow(), outcome=outcome[:2000])
            )
