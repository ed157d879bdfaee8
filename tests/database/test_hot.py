"""The per-iteration writes: on SQLite they bypass Core's execution machinery, and must write
exactly the rows Core writes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from evolve.database import Database
from evolve.database.models import Base
from evolve.database.store import (
    _FINISH,
    _INSERT_CALL,
    _INSERT_INSPIRATIONS,
    _INSERT_PROGRAM,
    _INSERT_RETRIES,
)
from evolve.records import ErrorInfo, LLMReply, Message, Program, Status

WHEN = datetime(2026, 11, 22, 12, 30, 1, 234567, tzinfo=UTC)
CALL: dict[str, Any] = {
    "run_id": "r", "iteration": 3, "model": "m", "mode": "diff",
    "prompt": [{"role": "user", "content": "ünïcode ✓ \"quoted\""}], "reply": "text",
    "input_tokens": 10, "output_tokens": 2, "latency_s": 0.25, "cost_usd": 1e-6,
    "error_kind": None, "error_message": None, "created_at": WHEN,
}
PROGRAM: dict[str, Any] = {
    "id": "p3", "run_id": "r", "iteration": 3, "parent_id": None, "island": 1, "generation": 2,
    "mode": "diff", "code": "x = 1\n", "code_hash": "h", "diff": "", "status": "pending",
    "score": None, "metrics": {}, "features": {"len": 6.0}, "cell": None, "error_kind": None,
    "error_message": None, "error_stage": None, "feedback": "", "stdout_tail": "",
    "timings": {"llm_s": 0.5}, "llm_call_id": 1, "created_at": WHEN, "evaluated_at": None,
}
OUTCOME: dict[str, Any] = {
    "_id": "p3", "status": "timeout", "metrics": {"s": float("inf")}, "features": {"len": 6.0},
    "cell": [2, 0], "score": -1.5, "feedback": "f", "stdout_tail": "out", "timings": {"eval_s": 1.0},
    "evaluated_at": WHEN, "error_kind": "timeout", "error_message": "killed", "error_stage": "run",
}


def _write(path: Path, core: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Write the same rows through the hot statements, or through plain Core; dump the tables."""
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (id, problem, problem_root, problem_fingerprint, config, seed, status,"
            " created_at, updated_at) VALUES ('r', 'p', '/p', 'f', '{}', 0, 'running', '', '')"
        )
        finish = _FINISH[Status.TIMEOUT, True]
        links = [{"program_id": "p3", "inspiration_id": "p3", "position": 0}]
        retries = [{"llm_call_id": 1, "kind": k, "message": f"{k} failed"} for k in ("server", "rate_limit")]
        if core:
            conn.execute(_INSERT_CALL.statement, [CALL])
            conn.execute(_INSERT_RETRIES.statement, retries)
            conn.execute(_INSERT_PROGRAM.statement, [PROGRAM])
            conn.execute(_INSERT_INSPIRATIONS.statement, links)
            moved = conn.execute(finish.statement, OUTCOME).rowcount
        else:
            assert _INSERT_CALL.scalar(conn, CALL) == 1
            _INSERT_RETRIES.execute_many(conn, retries)
            _INSERT_PROGRAM.execute(conn, PROGRAM)
            _INSERT_INSPIRATIONS.execute_many(conn, links)
            moved = finish.execute(conn, OUTCOME)
        assert moved == 1
        assert finish.execute(conn, OUTCOME) == 0  # timeout -> timeout is not a legal move
    engine.dispose()
    with sqlite3.connect(path) as raw:
        return {
            table: raw.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("llm_calls", "llm_retries", "programs", "inspirations")
        }


def test_hot_statements_write_exactly_what_core_writes(tmp_path: Path) -> None:
    hot = _write(tmp_path / "hot.db", core=False)
    core = _write(tmp_path / "core.db", core=True)
    assert hot == core
    assert all(rows for rows in hot.values())


def test_a_program_written_on_the_hot_path_reads_back_whole(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'e.db'}")
    db.create_run("r", problem="p", problem_root="/p", fingerprint="f", config={}, seed=0)
    base = Program(id="p0", run_id="r", iteration=0, parent_id=None, island=0, generation=0,
                   code="x = 0\n", code_hash="h0", status=Status.PENDING)
    db.add_program(base)
    child = base.model_copy(update={"id": "p1", "iteration": 1, "parent_id": "p0",
                                    "inspiration_ids": ("p0",), "mode": "crossover"})
    reply = LLMReply(model="m", text="t", input_tokens=5, output_tokens=1, cost_usd=0.5)
    call_id = db.add_llm_call("r", 1, (Message(role="user", content="hi"),), reply, model="m",
                              mode="crossover", program=child)
    error = ErrorInfo(kind=Status.EXCEPTION, message="boom", stage="run")
    done = child.model_copy(update={"status": Status.EXCEPTION, "error": error,
                                    "timings": {"eval_s": 0.1}, "feedback": "fb"})
    db.finish_program(done, stdout_tail="tail")
    back = db.program("p1")
    db.close()
    assert back is not None
    assert back.model_dump(exclude={"created_at", "evaluated_at"}) == done.model_dump(
        exclude={"created_at", "evaluated_at"}
    )
    assert call_id >= 1
