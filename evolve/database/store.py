"""The run database: loads and saves records, decides nothing.

SQLite in WAL mode by default (``runs/<run>/evolve.db``), any SQLAlchemy URL otherwise
(PostgreSQL for shared or larger runs). Every method is one short transaction, so whatever a
method wrote is durable when it returns: a killed run loses nothing it had finished.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, overload

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import ColumnClause

from evolve.database.commands import CommandLog
from evolve.database.hot import HotStatement
from evolve.database.lease import RunLease
from evolve.database.models import (
    Base,
    InspirationRow,
    LLMCallRow,
    LLMRetryRow,
    MigrationRow,
    ProgramRow,
    RunEventRow,
    RunLeaseRow,
    RunRow,
    utcnow,
)
from evolve.database.rows import RunEvent
from evolve.errors import UserError
from evolve.records import (
    TRANSITIONS,
    ErrorInfo,
    LLMReply,
    Message,
    Program,
    RetriedFailure,
    Status,
    check_transition,
    jsonable,
)
from evolve.text import (
    MAX_CODE_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_OUTPUT_CHARS,
    MAX_REPLY_CHARS,
    clean_text,
    safe_text,
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL mode
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def describe_url(url: str) -> str:
    """A database URL as an error message names it: a SQLite file by its path, else without
    its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)




def _sqlite_reader_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise UserError(f"database.url: not a SQLAlchemy URL: {url!r}") from exc


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout."""
    parsed = _parse_url(url)
    engine = create_engine(parsed, echo=echo)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_reader_engine(url: str) -> Engine:
    """An engine for ``url`` that cannot write: SQLite opened read-only (``mode=ro``, and
    ``query_only``), PostgreSQL with read-only transactions."""
    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database or ""
        if not path or path == ":memory:":
            raise UserError(f"database.url: {url!r} names no database file")
        reader = parsed.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
        engine = create_engine(reader)
        event.listen(engine, "connect", _sqlite_reader_pragmas)
        return engine
    if backend == "postgresql":
        return create_engine(parsed, connect_args={"options": "-c default_transaction_read_only=on"})
    return create_engine(parsed)


# Statements on every iteration's path, built once: building an ORM statement costs more CPU
# than SQLite takes to run it, and a prebuilt one hits SQLAlchemy's compiled cache directly.
_PROGRAMS = Base.metadata.tables[ProgramRow.__tablename__]
_CALLS = Base.metadata.tables[LLMCallRow.__tablename__]
_OUTCOME_COLUMNS = ("status", "metrics", "features", "cell", "score", "feedback", "stdout_tail", "timings", "evaluated_at")
_ERROR_COLUMNS = ("error_kind", "error_message", "error_stage")
_CALL_COLUMNS = (
    "run_id", "iteration", "model", "mode", "prompt", "reply", "input_tokens", "output_tokens",
    "latency_s", "cost_usd", "error_kind", "error_message", "created_at",
)
_PROGRAM_COLUMNS = (
    "id", "run_id", "iteration", "parent_id", "island", "generation", "mode", "code", "code_hash",
    "diff", "status", "score", "metrics", "features", "cell", "error_kind", "error_message",
    "error_stage", "feedback", "stdout_tail", "timings", "llm_call_id", "created_at", "evaluated_at",
)
_INSERT_PROGRAM = HotStatement(insert(_PROGRAMS), _PROGRAM_COLUMNS)
_INSERT_INSPIRATIONS = HotStatement(
    insert(Base.metadata.tables[InspirationRow.__tablename__]), ("program_id", "inspiration_id", "position")
)
_INSERT_CALL = HotStatement(insert(_CALLS).returning(_CALLS.c.id), _CALL_COLUMNS)
_INSERT_RETRIES = HotStatement(
    insert(Base.metadata.tables[LLMRetryRow.__tablename__]), ("llm_call_id", "kind", "message")
)
_ALLOWED_FROM = {
    status: [old.value for old, new in TRANSITIONS.items() if old is not None and status in new] for status in Status
}


def _finish_statement(status: Status, with_error: bool) -> HotStatement:
    """One conditional UPDATE: the row moves to ``status`` only from a status that allows it.

    The allowed statuses are this module's constants, rendered into the SQL as literals."""
    columns = _OUTCOME_COLUMNS + (_ERROR_COLUMNS if with_error else ())
    assert all(old.isidentifier() for old in _ALLOWED_FROM[status])  # safe to render as literals
    allowed: list[ColumnClause[Any]] = [literal_column(f"'{old}'") for old in _ALLOWED_FROM[status]]
    statement = (
        update(_PROGRAMS)
        .where(_PROGRAMS.c.id == bindparam("_id"), _PROGRAMS.c.status.in_(allowed))
        .values({name: bindparam(name) for name in columns})
    )
    return HotStatement(statement, (*columns, "_id"))


_FINISH = {(status, err): _finish_statement(status, err) for status in Status for err in (False, True)}


@overload
def _message(text: str) -> str: ...
@overload
def _message(text: None) -> None: ...
def _message(text: str | None) -> str | None:
    """A message as stored: storable and bounded (see :mod:`evolve.text`); records are made so
    when built, and this holds for values that reached a record without validation too."""
    return None if text is None else safe_text(text, MAX_MESSAGE_CHARS)


def _stage(text: str | None) -> str | None:
    return None if text is None else safe_text(text, 200)  # the column is a String(200)


def program_from_row(row: ProgramRow, inspirations: Sequence[str] = ()) -> Program:
    error = None
    if row.error_kind is not None:
        error = ErrorInfo(
            kind=Status(row.error_kind), message=row.error_message or "", stage=row.error_stage
        )
    return Program(
        id=row.id,
        run_id=row.run_id,
        iteration=row.iteration,
        parent_id=row.parent_id,
        island=row.island,
        generation=row.generation,
        code=row.code,
        code_hash=row.code_hash,
        diff=row.diff,
        status=Status(row.status),
        metrics=row.metrics or {},
        features=row.features or {},
        cell=tuple(row.cell) if row.cell is not None else None,
        error=error,
        feedback=row.feedback,
        mode=row.mode,
        inspiration_ids=tuple(inspirations),
        timings=row.timings or {},
    )


class RunExists(UserError):
    """A run of that name is in the database already."""


class Database:
    """Load and save runs, programs, LLM calls and migrations."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._local = threading.local()  # each thread's writer connection, see _begin
        self._writers: list[Connection] = []
        self._writers_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, echo: bool = False) -> Database:
        """Connect and create the tables that are missing."""
        engine = make_engine(url, echo=echo)
        try:
            Base.metadata.create_all(engine)
        except DatabaseError as exc:
            engine.dispose()
            raise UserError(f"{describe_url(url)}: cannot open the database: {exc.orig}") from exc
        return cls(engine)

    @classmethod
    def open_readonly(cls, url: str) -> Database:
        """Connect for reading only: nothing is created, nothing can be written (status,
        best, lineage and the other read-only commands use this)."""
        if make_url(url).get_backend_name() == "sqlite":
            path = make_url(url).database or ""
            if path and not Path(path).is_file():
                raise UserError(f"database.url: no database file at {path}")
        engine = make_reader_engine(url)
        try:
            with engine.connect():
                pass
        except (OperationalError, DBAPIError) as exc:
            engine.dispose()
            raise UserError(f"{describe_url(url)}: cannot open the database: {exc.orig}") from exc
        return cls(engine)

    @property
    def local_writes(self) -> bool:
        """Whether a write is a local file append (SQLite): cheap enough to run inline."""
        return self._engine.dialect.name == "sqlite"

    def close(self) -> None:
        with self._writers_lock:
            for conn in self._writers:
                conn.close()
            self._writers.clear()
        self._local = threading.local()
        self._engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A transaction on this thread's long-lived writer connection.

        The per-iteration writes run here: keeping one connection per thread saves a pool
        checkout and check-in per transaction (about a third of a write's CPU). A connection
        the database dropped is invalidated by SQLAlchemy and reconnects on its next use.
        """
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._engine.connect()
            self._local.conn = conn
            with self._writers_lock:
                self._writers.append(conn)
        with conn.begin():
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # -- runs -------------------------------------------------------------------------------
    def create_run(
        self,
        run_id: str,
        *,
        problem: str,
        problem_root: str,
        fingerprint: str,
        config: dict[str, Any],
        seed: int,
    ) -> None:
        with self._tx() as s:
            if s.get(RunRow, run_id) is not None:
                raise RunExists(f"run '{run_id}' already exists in the database; use 'evolve resume'")
            s.add(
                RunRow(
                    id=run_id,
                    problem=problem,
                    problem_root=problem_root,
                    problem_fingerprint=fingerprint,
                    config=config,
                    seed=seed,
                    status="running",
                )
            )

    def get_run(self, run_id: str) -> RunRow | None:
        with self._tx() as s:
            return s.get(RunRow, run_id)

    def list_runs(self) -> list[RunRow]:
        with self._tx() as s:
            return list(s.scalars(select(RunRow).order_by(RunRow.created_at)))

    def set_run_status(
        self, run_id: str, status: str, reason: str | None = None, config: dict[str, Any] | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "stop_reason": _message(reason), "updated_at": utcnow()}
        if config is not None:
            values["config"] = config
        with self._tx() as s:
            s.execute(update(RunRow).where(RunRow.id == run_id).values(**values))

    def add_run_event(self, run_id: str, kind: str, detail: dict[str, Any]) -> None:
        """Append to the run's history (started, resumed with these overrides)."""
        with self._tx() as s:
            s.add(RunEventRow(run_id=run_id, kind=kind, detail=jsonable(detail)))

    def run_events(self, run_id: str) -> list[RunEvent]:
        """The run's history, oldest first; empty for a run written before there was one."""
        try:
            with self._tx() as s:
                rows = s.scalars(
                    select(RunEventRow).where(RunEventRow.run_id == run_id).order_by(RunEventRow.id)
                ).all()
                return [RunEvent(r.kind, dict(r.detail or {}), r.created_at) for r in rows]
        except (OperationalError, DBAPIError):  # a database from before the table existed
            return []

    def touch_run(self, run_id: str) -> None:
        """Mark the run alive now (a heartbeat, so readers can tell a live run from a killed one)."""
        with self._begin() as conn:
            conn.execute(update(RunRow).where(RunRow.id == run_id).values(updated_at=utcnow()))

    def last_iteration(self, run_id: str) -> int | None:
        """The highest iteration with a finished program (None: nothing finished yet)."""
        with self._tx() as s:
            return s.scalar(
                select(func.max(ProgramRow.iteration)).where(
                    ProgramRow.run_id == run_id, ProgramRow.status != Status.PENDING.value
                )
            )

    def lease_holder(self, run_id: str) -> dict[str, Any] | None:
        """Who holds the run's lease and until when (None: nobody)."""
        with self._tx() as s:
            row = s.get(RunLeaseRow, run_id)
            if row is None:
                return None
            return {
                "host": row.host, "pid": row.pid, "started": row.started,
                "renewed_at": row.renewed_at, "expires_at": row.expires_at,
            }

    def commands(self) -> CommandLog:
        """The steering commands sent to this database's runs (``evolve ctl``, the web UI)."""
        return CommandLog(self._engine)

    def lease(self, run_id: str) -> RunLease:
        """The lease that makes this process the run's one controller (not yet acquired)."""
        return RunLease(self._engine, run_id)

    def delete_run(self, run_id: str) -> None:
        """Remove a run and everything recorded for it (a start that failed leaves no ghost)."""
        with self._tx() as s:
            ids = select(ProgramRow.id).where(ProgramRow.run_id == run_id)
            calls = select(LLMCallRow.id).where(LLMCallRow.run_id == run_id)
            s.execute(delete(InspirationRow).where(InspirationRow.program_id.in_(ids)))
            s.execute(delete(LLMRetryRow).where(LLMRetryRow.llm_call_id.in_(calls)))
            for table in (ProgramRow, LLMCallRow, MigrationRow):
                s.execute(delete(table).where(table.run_id == run_id))
            s.execute(delete(RunLeaseRow).where(RunLeaseRow.run_id == run_id))
            s.execute(delete(RunRow).where(RunRow.id == run_id))

    # -- programs ---------------------------------------------------------------------------
    def add_program(self, program: Program, *, stdout_tail: str = "", llm_call_id: int | None = None,
                    score: float | None = None) -> None:
        """Insert a new program (pending, or already terminal for llm/diff errors)."""
        check_transition(None, program.status)
        with self._begin() as conn:  # Core statements: this is on every iteration's path
            _insert_program(conn, program, stdout_tail=stdout_tail, llm_call_id=llm_call_id, score=score)

    def bulk_add_programs(self, programs: Sequence[Program], *, primary: str) -> None:
        """Insert finished programs in one transaction (imports, benchmarks)."""
        with self._tx() as s:
            s.execute(
                _INSERT_PROGRAM.statement,
                [_values_of(p, stdout_tail="", llm_call_id=None, score=p.score(primary)) for p in programs],
            )

    def finish_program(self, program: Program, *, stdout_tail: str = "", score: float | None = None) -> None:
        """Write the evaluation outcome of a pending program; checks the lifecycle move."""
        values: dict[str, Any] = {
            "_id": program.id,
            "status": program.status.value,
            "metrics": jsonable(program.metrics),
            "features": jsonable(program.features),
            "cell": list(program.cell) if program.cell is not None else None,
            "score": score,
            "feedback": _message(program.feedback),
            "stdout_tail": safe_text(stdout_tail, MAX_OUTPUT_CHARS),
            "timings": jsonable(program.timings),
            "evaluated_at": utcnow(),
        }
        if program.error is not None:
            values |= {
                "error_kind": program.error.kind.value,
                "error_message": _message(program.error.message),
                "error_stage": _stage(program.error.stage),
            }
        statement = _FINISH[program.status, program.error is not None]
        with self._begin() as conn:
            if statement.execute(conn, values) != 1:
                old = conn.execute(select(ProgramRow.status).where(ProgramRow.id == program.id)).scalar()
                if old is None:
                    raise KeyError(program.id)
                check_transition(Status(old), program.status)

    def programs(self, run_id: str, *, with_inspirations: bool = False) -> list[Program]:
        """Every program of the run, in iteration order."""
        with self._tx() as s:
            rows = s.scalars(
                select(ProgramRow).where(ProgramRow.run_id == run_id).order_by(ProgramRow.iteration)
            ).all()
            links: dict[str, list[str]] = {}
            if with_inspirations:
                q = (
                    select(InspirationRow.program_id, InspirationRow.inspiration_id)
                    .join(ProgramRow, ProgramRow.id == InspirationRow.program_id)
                    .where(ProgramRow.run_id == run_id)
                    .order_by(InspirationRow.position)
                )
                for pid, iid in s.execute(q):
                    links.setdefault(pid, []).append(iid)
            return [program_from_row(r, links.get(r.id, ())) for r in rows]

    def program(self, program_id: str) -> Program | None:
        with self._tx() as s:
            row = s.get(ProgramRow, program_id)
            if row is None:
                return None
            ins = s.scalars(
                select(InspirationRow.inspiration_id)
                .where(InspirationRow.program_id == program_id)
                .order_by(InspirationRow.position)
            ).all()
            return program_from_row(row, ins)

    def find_program(self, run_id: str, prefix: str) -> Program | None:
        """A program by full id, id prefix, or iteration number (``#12`` or ``12``)."""
        with self._tx() as s:
            text = prefix.lstrip("#")
            if text.isdigit():
                row = s.scalars(
                    select(ProgramRow).where(ProgramRow.run_id == run_id, ProgramRow.iteration == int(text))
                ).first()
                if row is not None:
                    return program_from_row(row)
            rows = s.scalars(
                select(ProgramRow).where(ProgramRow.run_id == run_id, ProgramRow.id.startswith(prefix)).limit(2)
            ).all()
            return program_from_row(rows[0]) if len(rows) == 1 else None

    def children(self, program_id: str) -> list[Program]:
        """The programs made from ``program_id`` as their parent, in iteration order."""
        with self._tx() as s:
            rows = s.scalars(
                select(ProgramRow).where(ProgramRow.parent_id == program_id).order_by(ProgramRow.iteration)
            ).all()
            return [program_from_row(r) for r in rows]

    def recent_failures(self, run_id: str, limit: int) -> list[Program]:
        """The run's last ``limit`` failed programs, newest first."""
        failed = [st.value for st in Status if st.is_failure]
        with self._tx() as s:
            rows = s.scalars(
                select(ProgramRow)
                .where(ProgramRow.run_id == run_id, ProgramRow.status.in_(failed))
                .order_by(ProgramRow.iteration.desc())
                .limit(limit)
            ).all()
            return [program_from_row(r) for r in rows]

    def program_call(self, program_id: str) -> dict[str, Any] | None:
        """The model call a program was made from (prompt, reply, model, tokens, cost, error)."""
        with self._tx() as s:
            call_id = s.scalar(select(ProgramRow.llm_call_id).where(ProgramRow.id == program_id))
            if call_id is None:
                return None
            row = s.get(LLMCallRow, call_id)
            return None if row is None else _call_dict(row)

    def llm_calls(self, run_id: str) -> list[dict[str, Any]]:
        """Every model call of the run, in the order written, as plain dicts."""
        with self._tx() as s:
            rows = s.scalars(select(LLMCallRow).where(LLMCallRow.run_id == run_id).order_by(LLMCallRow.id)).all()
            return [_call_dict(r) for r in rows]

    def best_program(self, run_id: str, *, maximize: bool) -> Program | None:
        order = ProgramRow.score.desc() if maximize else ProgramRow.score.asc()
        with self._tx() as s:
            row = s.scalars(
                select(ProgramRow)
                .where(
                    ProgramRow.run_id == run_id,
                    ProgramRow.status == Status.EVALUATED.value,
                    ProgramRow.score.is_not(None),
                )
                .order_by(order, ProgramRow.iteration)
                .limit(1)
            ).first()
            return program_from_row(row) if row is not None else None

    def lineage(self, program_id: str) -> list[Program]:
        """The chain from the initial program to ``program_id`` (inclusive), oldest first."""
        chain: list[Program] = []
        current: str | None = program_id
        with self._tx() as s:
            while current is not None:
                row = s.get(ProgramRow, current)
                if row is None:
                    break
                chain.append(program_from_row(row))
                current = row.parent_id
        return chain[::-1]

    def status_counts(self, run_id: str) -> dict[str, int]:
        with self._tx() as s:
            q = (
                select(ProgramRow.status, func.count())
                .where(ProgramRow.run_id == run_id)
                .group_by(ProgramRow.status)
            )
            return {str(st): int(n) for st, n in s.execute(q)}

    # -- LLM calls and migrations -------------------------------------------------------------
    def add_llm_call(
        self,
        run_id: str,
        iteration: int,
        messages: Sequence[Message],
        reply: LLMReply | None,
        *,
        model: str,
        mode: str,
        error: tuple[str, str] | None = None,
        program: Program | None = None,
        retried: Sequence[RetriedFailure] = (),
    ) -> int:
        """Record one model call and the failed attempts ``retried`` before it ended; its id.
        With ``program`` (new, made from this call), insert that program in the same
        transaction, linked to the call."""
        if program is not None:
            check_transition(None, program.status)
        row = {
            "run_id": run_id,
            "iteration": iteration,
            "model": reply.model if reply else model,
            "mode": mode,
            "prompt": [{**m.model_dump(), "content": clean_text(m.content)} for m in messages],
            "reply": safe_text(reply.text, MAX_REPLY_CHARS) if reply else None,
            "input_tokens": reply.input_tokens if reply else 0,
            "output_tokens": reply.output_tokens if reply else 0,
            "latency_s": reply.latency_s if reply else 0.0,
            "cost_usd": reply.cost_usd if reply else 0.0,
            "error_kind": error[0][:64] if error else None,
            "error_message": _message(error[1]) if error else None,
            "created_at": utcnow(),
        }
        with self._begin() as conn:
            call_id = int(_INSERT_CALL.scalar(conn, row))
            if retried:
                _INSERT_RETRIES.execute_many(
                    conn,
                    [
                        {"llm_call_id": call_id, "kind": r.kind[:64], "message": _message(r.message)}
                        for r in retried
                    ],
                )
            if program is not None:
                _insert_program(conn, program, stdout_tail="", llm_call_id=call_id, score=None)
            return call_id

    def recorded_replies(self, run_id: str) -> list[tuple[list[Any], LLMReply]]:
        """Every successful call of the run, in order: (prompt messages, reply)."""
        with self._tx() as s:
            rows = s.scalars(
                select(LLMCallRow)
                .where(LLMCallRow.run_id == run_id, LLMCallRow.reply.is_not(None))
                .order_by(LLMCallRow.id)
            ).all()
            return [
                (
                    list(r.prompt),
                    LLMReply(
                        model=r.model, text=r.reply or "", input_tokens=r.input_tokens,
                        output_tokens=r.output_tokens, latency_s=r.latency_s, cost_usd=r.cost_usd,
                    ),
                )
                for r in rows
            ]

    def llm_usage(self, run_id: str) -> list[dict[str, Any]]:
        """Calls, tokens, cost, latency, errors (calls that failed) and retried failed attempts
        per model."""
        retried = dict(self._retries_by(run_id, LLMCallRow.model))
        with self._tx() as s:
            q = (
                select(
                    LLMCallRow.model,
                    func.count(),
                    func.sum(LLMCallRow.input_tokens),
                    func.sum(LLMCallRow.output_tokens),
                    func.sum(LLMCallRow.cost_usd),
                    func.avg(LLMCallRow.latency_s),
                    func.count(LLMCallRow.error_kind),
                )
                .where(LLMCallRow.run_id == run_id)
                .group_by(LLMCallRow.model)
            )
            keys = ("model", "calls", "input_tokens", "output_tokens", "cost_usd", "mean_latency_s", "errors")
            rows = [dict(zip(keys, row, strict=True)) for row in s.execute(q)]
        return [{**row, "retried": retried.get(row["model"], 0)} for row in rows]

    def llm_spend(self, run_id: str) -> list[tuple[int, float, int]]:
        """Every model call of the run as (iteration, cost in USD, tokens in and out), in the
        order they were written."""
        with self._tx() as s:
            q = (
                select(
                    LLMCallRow.iteration,
                    LLMCallRow.cost_usd,
                    LLMCallRow.input_tokens + LLMCallRow.output_tokens,
                )
                .where(LLMCallRow.run_id == run_id)
                .order_by(LLMCallRow.id)
            )
            return [(int(i), float(c or 0.0), int(t or 0)) for i, c, t in s.execute(q)]

    def llm_failures(self, run_id: str) -> list[dict[str, Any]]:
        """Failures of model calls by model and kind: attempts that were retried, and calls
        that failed in the end (after their retries, or not retryable)."""
        with self._tx() as s:
            q = (
                select(LLMCallRow.model, LLMCallRow.error_kind, func.count())
                .where(LLMCallRow.run_id == run_id, LLMCallRow.error_kind.is_not(None))
                .group_by(LLMCallRow.model, LLMCallRow.error_kind)
            )
            failed = {(str(m), str(k)): n for m, k, n in s.execute(q)}
        by_kind = self._retries_by(run_id, LLMCallRow.model, LLMRetryRow.kind)
        retried = {(str(m), str(k)): n for m, k, n in by_kind}
        return [
            {"model": m, "kind": k, "retried": retried.get((m, k), 0), "failed": failed.get((m, k), 0)}
            for m, k in sorted(failed.keys() | retried.keys())
        ]

    def _retries_by(self, run_id: str, *columns: Any) -> list[tuple[Any, ...]]:
        """Retried failed attempts of the run's calls, counted per ``columns``."""
        with self._tx() as s:
            q = (
                select(*columns, func.count())
                .select_from(LLMRetryRow)
                .join(LLMCallRow, LLMCallRow.id == LLMRetryRow.llm_call_id)
                .where(LLMCallRow.run_id == run_id)
                .group_by(*columns)
            )
            return [tuple(row) for row in s.execute(q)]

    def model_iterations(self, run_id: str, model: str) -> list[int]:
        """Iterations whose proposal came from ``model``."""
        with self._tx() as s:
            q = select(LLMCallRow.iteration).where(
                LLMCallRow.run_id == run_id, LLMCallRow.model == model, LLMCallRow.reply.is_not(None)
            )
            return sorted({int(i) for i in s.scalars(q)})

    def add_migrations(self, run_id: str, moves: Iterable[tuple[int, str, int, int]]) -> None:
        with self._tx() as s:
            s.add_all(
                MigrationRow(run_id=run_id, iteration=it, program_id=pid, from_island=a, to_island=b)
                for it, pid, a, b in moves
            )

    # -- reads for the web UI (evolve.ui): light rows, no code ---------------------------------
    def program_outlines(self, run_id: str) -> list[dict[str, Any]]:
        """Every program of the run without its code, diff or texts, in iteration order: what
        charts, maps and the lineage graph need, cheap at 10,000 programs. ``model`` is the
        model whose reply made the program (None for the initial one)."""
        q = (
            select(
                _PROGRAMS.c.id, _PROGRAMS.c.iteration, _PROGRAMS.c.parent_id, _PROGRAMS.c.island,
                _PROGRAMS.c.generation, _PROGRAMS.c.status, _PROGRAMS.c.score, _PROGRAMS.c.cell,
                _PROGRAMS.c.error_kind, _PROGRAMS.c.created_at, _PROGRAMS.c.evaluated_at,
                _CALLS.c.model,
            )
            .select_from(_PROGRAMS.outerjoin(_CALLS, _CALLS.c.id == _PROGRAMS.c.llm_call_id))
            .where(_PROGRAMS.c.run_id == run_id)
            .order_by(_PROGRAMS.c.iteration)
        )
        with self._tx() as s:
            result = s.execute(q)
            keys = tuple(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result.tuples()]


    def children_of(self, program_id: str) -> list[dict[str, Any]]:
        """The programs made from ``program_id`` as their parent: id, iteration, status, score."""
        q = (
            select(ProgramRow.id, ProgramRow.iteration, ProgramRow.status, ProgramRow.score)
            .where(ProgramRow.parent_id == program_id)
            .order_by(ProgramRow.iteration)
        )
        with self._tx() as s:
            return [dict(row._mapping) for row in s.execute(q)]

    def program_stdout(self, program_id: str) -> str:
        """The captured output tail of a program's evaluation ('' when none)."""
        with self._tx() as s:
            return s.scalar(select(ProgramRow.stdout_tail).where(ProgramRow.id == program_id)) or ""


def _call_dict(row: LLMCallRow) -> dict[str, Any]:
    return {
        "id": row.id, "iteration": row.iteration, "model": row.model, "mode": row.mode,
        "prompt": list(row.prompt), "reply": row.reply, "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens, "latency_s": row.latency_s, "cost_usd": row.cost_usd,
        "error_kind": row.error_kind, "error_message": row.error_message,
        "created_at": row.created_at.isoformat(),
    }


def _insert_program(
    conn: Connection, program: Program, *, stdout_tail: str, llm_call_id: int | None, score: float | None
) -> None:
    _INSERT_PROGRAM.execute(conn, _values_of(program, stdout_tail=stdout_tail, llm_call_id=llm_call_id, score=score))
    if program.inspiration_ids:
        _INSERT_INSPIRATIONS.execute_many(
            conn,
            [
                {"program_id": program.id, "inspiration_id": iid, "position": k}
                for k, iid in enumerate(program.inspiration_ids)
            ],
        )


def _values_of(p: Program, *, stdout_tail: str, llm_call_id: int | None, score: float | None) -> dict[str, Any]:
    """A program as the column values of its row."""
    now = utcnow()
    return {
        "id": p.id,
        "run_id": p.run_id,
        "iteration": p.iteration,
        "parent_id": p.parent_id,
        "island": p.island,
        "generation": p.generation,
        "mode": p.mode,
        "code": clean_text(p.code) if p.code is not None else None,
        "code_hash": p.code_hash,
        "diff": safe_text(p.diff, 2 * MAX_CODE_CHARS),
        "status": p.status.value,
        "score": score,
        "metrics": jsonable(p.metrics),
        "features": jsonable(p.features),
        "cell": list(p.cell) if p.cell is not None else None,
        "error_kind": p.error.kind.value if p.error else None,
        "error_message": _message(p.error.message) if p.error else None,
        "error_stage": _stage(p.error.stage) if p.error else None,
        "feedback": _message(p.feedback),
        "stdout_tail": safe_text(stdout_tail, MAX_OUTPUT_CHARS),
        "timings": jsonable(p.timings),
        "llm_call_id": llm_call_id,
        "created_at": now,
        "evaluated_at": now if p.status.is_terminal else None,
    }
