"""Reading a run database in a SQLite file with the standard library's ``sqlite3`` alone.

The read-only commands (``status``, ``best``, ``lineage``, ``show``, ``export``) must answer at
once; importing SQLAlchemy costs half their budget. This reader answers the same questions as
:class:`evolve.database.store.Database`'s read methods, with the same results (a test compares
them method by method), from a connection opened read-only (``mode=ro``, ``query_only``). Other
databases (PostgreSQL) are read through :meth:`Database.open_readonly`.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from evolve.database.rows import RunEvent, RunInfo
from evolve.errors import UserError
from evolve.records import ErrorInfo, Program, Status

__all__ = ["SqliteReader"]

_PROGRAM = (
    "id, run_id, iteration, parent_id, island, generation, code, code_hash, diff, status, metrics, features, "
    "cell, error_kind, error_message, error_stage, feedback, mode, timings"
)
_CALL = (
    "id, iteration, model, mode, prompt, reply, input_tokens, output_tokens, latency_s, cost_usd, error_kind, "
    "error_message, created_at"
)
_RUN = "id, problem, problem_root, problem_fingerprint, config, seed, status, stop_reason, created_at, updated_at"


def _json(text: Any) -> Any:
    return None if text is None else json.loads(text)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _program(r: tuple[Any, ...], inspirations: tuple[str, ...] = ()) -> Program:
    (pid, run_id, iteration, parent_id, island, generation, code, code_hash, diff, status, metrics, features,
     cell, error_kind, error_message, error_stage, feedback, mode, timings) = r
    error = None
    if error_kind is not None:
        error = ErrorInfo(kind=Status(error_kind), message=error_message or "", stage=error_stage)
    cells = _json(cell)
    return Program(
        id=pid, run_id=run_id, iteration=iteration, parent_id=parent_id, island=island, generation=generation,
        code=code, code_hash=code_hash, diff=diff, status=Status(status), metrics=_json(metrics) or {},
        features=_json(features) or {}, cell=tuple(cells) if cells is not None else None, error=error,
        feedback=feedback, mode=mode, inspiration_ids=inspirations, timings=_json(timings) or {},
    )


def _call(r: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "iteration", "model", "mode", "prompt", "reply", "input_tokens", "output_tokens", "latency_s",
            "cost_usd", "error_kind", "error_message", "created_at")
    call = dict(zip(keys, r, strict=True))
    call["prompt"] = _json(call["prompt"])
    call["created_at"] = _time(call["created_at"]).isoformat()
    return call


def _run(r: tuple[Any, ...]) -> RunInfo:
    return RunInfo(
        id=r[0], problem=r[1], problem_root=r[2], problem_fingerprint=r[3], config=_json(r[4]), seed=r[5],
        status=r[6], stop_reason=r[7], created_at=_time(r[8]), updated_at=_time(r[9]),
    )


class SqliteReader:
    """Read-only questions about the runs in one SQLite file."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._con = connection

    @classmethod
    def open(cls, path: str | Path) -> SqliteReader:
        """Open ``path`` read-only; a clear error if it is not a run database."""
        file = Path(path)
        if not file.is_file():
            raise UserError(f"database.url: no database file at {file}")
        try:
            con = sqlite3.connect(f"file:{file.resolve()}?mode=ro", uri=True, timeout=10.0)
            con.execute("PRAGMA query_only=ON")
            con.execute("select 1 from runs limit 1")
        except sqlite3.Error as exc:
            raise UserError(f"database.url: cannot read {file} as a run database: {exc}") from exc
        return cls(con)

    def close(self) -> None:
        self._con.close()

    def _all(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, args).fetchall()

    # -- runs -------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunInfo | None:
        rows = self._all(f"select {_RUN} from runs where id = ?", run_id)
        return _run(rows[0]) if rows else None

    def list_runs(self) -> list[RunInfo]:
        return [_run(r) for r in self._all(f"select {_RUN} from runs order by created_at")]

    def lease_holder(self, run_id: str) -> dict[str, Any] | None:
        """Who holds the run's lease and until when (None: nobody, or a database from before
        leases)."""
        try:
            rows = self._all(
                "select host, pid, started, renewed_at, expires_at from run_leases where run_id = ?", run_id
            )
        except sqlite3.OperationalError:
            return None
        if not rows:
            return None
        host, pid, started, renewed, expires = rows[0]
        return {"host": host, "pid": pid, "started": started, "renewed_at": _time(renewed), "expires_at": _time(expires)}

    def run_events(self, run_id: str) -> list[RunEvent]:
        try:
            rows = self._all("select kind, detail, created_at from run_events where run_id = ? order by id", run_id)
        except sqlite3.OperationalError:  # a database from before the table existed
            return []
        return [RunEvent(k, _json(d) or {}, _time(t)) for k, d, t in rows]

    # -- programs ---------------------------------------------------------------------------
    def programs(self, run_id: str, *, with_inspirations: bool = False) -> list[Program]:
        rows = self._all(f"select {_PROGRAM} from programs where run_id = ? order by iteration", run_id)
        links: dict[str, list[str]] = {}
        if with_inspirations:
            q = ("select i.program_id, i.inspiration_id from inspirations i join programs p on p.id = i.program_id "
                 "where p.run_id = ? order by i.position")
            for pid, iid in self._all(q, run_id):
                links.setdefault(pid, []).append(iid)
        return [_program(r, tuple(links.get(r[0], ()))) for r in rows]

    def program(self, program_id: str) -> Program | None:
        rows = self._all(f"select {_PROGRAM} from programs where id = ?", program_id)
        if not rows:
            return None
        ins = self._all("select inspiration_id from inspirations where program_id = ? order by position", program_id)
        return _program(rows[0], tuple(i for (i,) in ins))

    def find_program(self, run_id: str, prefix: str) -> Program | None:
        text = prefix.lstrip("#")
        if text.isdigit():
            rows = self._all(f"select {_PROGRAM} from programs where run_id = ? and iteration = ?", run_id, int(text))
            if rows:
                return _program(rows[0])
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._all(f"select {_PROGRAM} from programs where run_id = ? and id like ? escape '\\' limit 2",
                         run_id, escaped + "%")
        # LIKE ignores case in SQLite; ids are compared exactly, as the SQLAlchemy store does
        rows = [r for r in rows if str(r[0]).startswith(prefix)]
        return _program(rows[0]) if len(rows) == 1 else None

    def best_program(self, run_id: str, *, maximize: bool) -> Program | None:
        order = "desc" if maximize else "asc"
        rows = self._all(
            f"select {_PROGRAM} from programs where run_id = ? and status = 'evaluated' and score is not null "
            f"order by score {order}, iteration limit 1", run_id)
        return _program(rows[0]) if rows else None

    def lineage(self, program_id: str) -> list[Program]:
        chain: list[Program] = []
        current: str | None = program_id
        while current is not None:
            rows = self._all(f"select {_PROGRAM} from programs where id = ?", current)
            if not rows:
                break
            chain.append(_program(rows[0]))
            current = rows[0][3]
        return chain[::-1]

    def children(self, program_id: str) -> list[Program]:
        rows = self._all(f"select {_PROGRAM} from programs where parent_id = ? order by iteration", program_id)
        return [_program(r) for r in rows]

    def status_counts(self, run_id: str) -> dict[str, int]:
        rows = self._all("select status, count(*) from programs where run_id = ? group by status", run_id)
        return {str(st): int(n) for st, n in rows}

    # -- model calls ------------------------------------------------------------------------
    def program_call(self, program_id: str) -> dict[str, Any] | None:
        rows = self._all(f"select {', '.join('c.' + c.strip() for c in _CALL.split(','))} from llm_calls c "
                         "join programs p on p.llm_call_id = c.id where p.id = ?", program_id)
        return _call(rows[0]) if rows else None

    def llm_calls(self, run_id: str) -> list[dict[str, Any]]:
        return [_call(r) for r in self._all(f"select {_CALL} from llm_calls where run_id = ? order by id", run_id)]

    def _retries_by_model(self, run_id: str) -> dict[str, int]:
        q = ("select c.model, count(*) from llm_retries r join llm_calls c on c.id = r.llm_call_id "
             "where c.run_id = ? group by c.model")
        try:
            return {str(m): int(n) for m, n in self._all(q, run_id)}
        except sqlite3.OperationalError:
            return {}

    def llm_usage(self, run_id: str) -> list[dict[str, Any]]:
        retried = self._retries_by_model(run_id)
        q = ("select model, count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd), avg(latency_s), "
             "count(error_kind) from llm_calls where run_id = ? group by model")
        keys = ("model", "calls", "input_tokens", "output_tokens", "cost_usd", "mean_latency_s", "errors")
        rows = [dict(zip(keys, r, strict=True)) for r in self._all(q, run_id)]
        return [{**row, "retried": retried.get(row["model"], 0)} for row in rows]

    def llm_spend(self, run_id: str) -> list[tuple[int, float, int]]:
        q = "select iteration, cost_usd, input_tokens + output_tokens from llm_calls where run_id = ? order by id"
        return [(int(i), float(c or 0.0), int(t or 0)) for i, c, t in self._all(q, run_id)]

    def llm_failures(self, run_id: str) -> list[dict[str, Any]]:
        q = ("select model, error_kind, count(*) from llm_calls where run_id = ? and error_kind is not null "
             "group by model, error_kind")
        failed = {(str(m), str(k)): n for m, k, n in self._all(q, run_id)}
        try:
            by_kind = self._all(
                "select c.model, r.kind, count(*) from llm_retries r join llm_calls c on c.id = r.llm_call_id "
                "where c.run_id = ? group by c.model, r.kind", run_id)
        except sqlite3.OperationalError:
            by_kind = []
        retried = {(str(m), str(k)): n for m, k, n in by_kind}
        return [
            {"model": m, "kind": k, "retried": retried.get((m, k), 0), "failed": failed.get((m, k), 0)}
            for m, k in sorted(failed.keys() | retried.keys())
        ]

    def model_iterations(self, run_id: str, model: str) -> list[int]:
        q = "select iteration from llm_calls where run_id = ? and model = ? and reply is not null"
        return sorted({int(i) for (i,) in self._all(q, run_id, model)})
