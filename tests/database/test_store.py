from __future__ import annotations

import pytest
from hostile_records import store_and_read_hostile_text

from evolve.database import Database
from evolve.errors import UserError
from evolve.records import (
    ErrorInfo,
    LLMReply,
    Message,
    Program,
    RetriedFailure,
    Status,
    TransitionError,
)


def _run(db: Database) -> None:
    db.create_run("r", problem="p", problem_root="/p", fingerprint="f", config={"a": 1}, seed=0)


def _prog(i: int, parent: str | None, status: Status = Status.PENDING, **kw: object) -> Program:
    return Program(
        id=f"p{i}", run_id="r", iteration=i, parent_id=parent, island=0, generation=i,
        code=f"x = {i}\n", code_hash=f"h{i}", status=status, **kw,  # type: ignore[arg-type]
    )


def test_duplicate_run_is_a_user_error(db: Database) -> None:
    _run(db)
    with pytest.raises(UserError, match="already exists"):
        _run(db)


def test_lifecycle_is_checked_on_write(db: Database) -> None:
    _run(db)
    db.add_program(_prog(0, None))
    done = _prog(0, None, Status.EVALUATED, metrics={"s": 1.0})
    db.finish_program(done, score=1.0)
    with pytest.raises(TransitionError):
        db.finish_program(_prog(0, None, Status.TIMEOUT))
    with pytest.raises(TransitionError):
        db.add_program(_prog(1, "p0", Status.EVALUATED))


def test_lineage_best_and_lookup(db: Database) -> None:
    _run(db)
    db.add_program(_prog(0, None))
    db.finish_program(_prog(0, None, Status.EVALUATED, metrics={"s": 1.0}), score=1.0)
    db.add_program(_prog(1, "p0", inspiration_ids=("p0",)))
    db.finish_program(_prog(1, "p0", Status.EVALUATED, metrics={"s": 3.0}), score=3.0)
    db.add_program(_prog(2, "p1"))
    err = ErrorInfo(kind=Status.TIMEOUT, message="killed after 1 s")
    db.finish_program(_prog(2, "p1", Status.TIMEOUT, error=err))
    assert [p.id for p in db.lineage("p2")] == ["p0", "p1", "p2"]
    best_max = db.best_program("r", maximize=True)
    best_min = db.best_program("r", maximize=False)
    assert best_max is not None and best_max.id == "p1"
    assert best_min is not None and best_min.id == "p0"
    p2 = db.program("p2")
    assert p2 is not None and p2.error == err
    p1 = db.program("p1")
    assert p1 is not None and p1.inspiration_ids == ("p0",)
    assert db.find_program("r", "2") == db.program("p2")
    assert db.status_counts("r") == {"evaluated": 2, "timeout": 1}


def test_llm_calls_are_summed_per_model(db: Database) -> None:
    _run(db)
    msgs = (Message(role="user", content="hi"),)
    db.add_llm_call("r", 1, msgs, LLMReply(model="m1", text="a", input_tokens=10, output_tokens=2, cost_usd=0.5), model="m1", mode="diff")
    db.add_llm_call("r", 2, msgs, LLMReply(model="m1", text="b", input_tokens=5, output_tokens=1, cost_usd=0.25), model="m1", mode="diff")
    db.add_llm_call("r", 3, msgs, None, model="m2", mode="diff", error=("rate_limit", "429"))
    usage = {u["model"]: u for u in db.llm_usage("r")}
    assert usage["m1"]["calls"] == 2 and usage["m1"]["input_tokens"] == 15 and usage["m1"]["cost_usd"] == 0.75
    assert usage["m2"]["errors"] == 1
    assert [reply.text for _prompt, reply in db.recorded_replies("r")] == ["a", "b"]
    assert db.model_iterations("r", "m1") == [1, 2]


def test_retried_failures_are_counted_per_model_and_kind(db: Database) -> None:
    _run(db)
    msgs = (Message(role="user", content="hi"),)
    server, limit = RetriedFailure(kind="server", message="500"), RetriedFailure(kind="rate_limit", message="429")
    db.add_llm_call("r", 1, msgs, LLMReply(model="m1", text="a", retried=(server, limit)), model="m1", mode="diff",
                    retried=(server, limit))
    db.add_llm_call("r", 2, msgs, LLMReply(model="m1", text="b"), model="m1", mode="diff")
    db.add_llm_call("r", 3, msgs, None, model="m2", mode="diff", error=("server", "500"), retried=(server,))
    assert {u["model"]: u["retried"] for u in db.llm_usage("r")} == {"m1": 2, "m2": 1}
    assert db.llm_failures("r") == [
        {"model": "m1", "kind": "rate_limit", "retried": 1, "failed": 0},
        {"model": "m1", "kind": "server", "retried": 1, "failed": 0},
        {"model": "m2", "kind": "server", "retried": 1, "failed": 1},
    ]


def test_hostile_text_is_stored_clean_and_bounded_on_sqlite(db: Database) -> None:
    store_and_read_hostile_text(db)
