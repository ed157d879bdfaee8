"""End-to-end runs of the controller on the toy problem, through the real sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evaluators.local import LocalEvaluator
from evolve.app import start_run
from evolve.config import RunConfig
from evolve.controller import Controller, Progress, RunAborted
from evolve.database import Database
from evolve.llm.base import LLMError
from evolve.llm.offline import OfflineMutator
from evolve.problem import Problem
from evolve.prompts import PromptBuilder
from evolve.records import LLMReply, LLMRequest, Program, Status

GOOD_ROWS = """        [0.0, 0.0], [0.3333, 0.0], [0.6667, 0.0], [1.0, 0.0],
        [0.0, 0.5], [0.3333, 0.5], [0.6667, 0.5], [1.0, 0.5],
        [0.0, 1.0], [0.3333, 1.0], [0.6667, 1.0], [1.0, 1.0],"""
OLD_ROWS = """        [0.1, 0.1], [0.4, 0.1], [0.6, 0.1], [0.9, 0.1],
        [0.1, 0.5], [0.4, 0.5], [0.6, 0.5], [0.9, 0.5],
        [0.1, 0.9], [0.4, 0.9], [0.6, 0.9], [0.9, 0.9],"""


def edit(search: str, replace: str) -> str:
    return f"Idea.\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


IMPROVE = edit(OLD_ROWS, GOOD_ROWS)
WRONG_COUNT = edit("        [0.1, 0.1], [0.4, 0.1], [0.6, 0.1], [0.9, 0.1],", "        [0.1, 0.1], [0.4, 0.1], [0.6, 0.1],")
SYNTAX = edit("        [0.1, 0.9], [0.4, 0.9], [0.6, 0.9], [0.9, 0.9],", "        [0.1, 0.9], [0.4, 0.9], [0.6, 0.9], [0.9, 0.9,,")
NO_DIFF = "I would rather not change anything."


def make_config(problem: Problem, tmp_path: Path, **over: Any) -> RunConfig:
    base: dict[str, Any] = {
        "problem": str(problem.root),
        "runs_dir": str(tmp_path / "runs"),
        "run_name": over.pop("run_name", "t"),
        "max_iterations": 8,
        "progress": False,
        "search": {"islands": 2, "in_flight": 2, "lag": 3},
        "evaluator": {"concurrency": 2},
    }
    for key, value in over.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return RunConfig.model_validate(base)


def make_controller(config: RunConfig, problem: Problem, db: Database, llm: Any, **kw: Any) -> Controller:
    return Controller(
        run_id=config.run_name or "t", problem=problem, config=config, db=db, llm=llm,
        evaluator=LocalEvaluator(problem, config.evaluator), prompts=PromptBuilder(problem), **kw,
    )


async def run_once(config: RunConfig, problem: Problem, llm: Any, **kw: Any) -> tuple[Any, Database, Controller]:
    opened = start_run(config)
    _problem, db = opened.problem, opened.db
    controller = make_controller(config, problem, db, llm, **kw)
    try:
        summary = await controller.run()
    finally:
        await controller.aclose()
    return summary, db, controller


async def test_scripted_run_records_every_outcome_with_lineage(toy: Problem, tmp_path: Path, scripted: Any) -> None:
    llm = scripted([IMPROVE, WRONG_COUNT, SYNTAX, NO_DIFF])
    seen: list[Progress] = []
    summary, db, _ = await run_once(make_config(toy, tmp_path), toy, llm, on_progress=seen.append)
    programs = db.programs("t")
    assert [p.iteration for p in programs] == list(range(9))
    assert all(p.parent_id is not None for p in programs[1:])
    statuses = {p.status for p in programs[1:]}
    assert {Status.EVALUATED, Status.REJECTED, Status.SYNTAX_ERROR, Status.DIFF_ERROR} <= statuses
    assert summary.best is not None and summary.best.metrics["energy"] == pytest.approx(102.58, abs=0.01)
    assert summary.initial_score == pytest.approx(130.775, abs=1e-3)
    # the same improving edit on the same parent is a duplicate, evaluated once
    assert any(p.status is Status.DUPLICATE for p in programs)
    rejected = next(p for p in programs if p.status is Status.REJECTED)
    assert rejected.error is not None and "expected a list of 12 points" in rejected.error.message
    # failures of a parent's children reach the next prompt for that parent
    assert any("expected a list of 12 points" in r.messages[1].content for r in llm.requests)
    chain = db.lineage(summary.best.id)
    assert chain[0].iteration == 0 and chain[-1].id == summary.best.id
    assert "+        [0.0, 0.0], [0.3333, 0.0]" in chain[-1].diff
    assert seen and seen[-1].applied == 8
    assert db.get_run("t").status == "finished"  # type: ignore[union-attr]
    db.close()


async def test_offline_run_improves_the_score(toy: Problem, tmp_path: Path) -> None:
    config = make_config(toy, tmp_path, max_iterations=60)
    summary, db, _ = await run_once(config, toy, OfflineMutator(seed=0))
    assert summary.best is not None and summary.initial_score is not None
    assert summary.best.metrics["energy"] < summary.initial_score - 1.0  # minimized
    assert db.status_counts("t").get("evaluated", 0) > 10
    db.close()


async def test_seeded_runs_are_reproducible(toy: Problem, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        config = make_config(toy, tmp_path, run_name=name, max_iterations=16)
        _, db, _ = await run_once(config, toy, OfflineMutator(seed=3))
        runs.append([(p.iteration, p.parent_id is None, p.code_hash, p.status, p.metrics) for p in db.programs(name)])
        db.close()
    assert runs[0] == runs[1]


async def test_resume_continues_without_redoing_work(toy: Problem, tmp_path: Path) -> None:
    config = make_config(toy, tmp_path, max_iterations=6)
    _, db, _ = await run_once(config, toy, OfflineMutator(seed=1))
    first = {p.id: p for p in db.programs("t")}
    longer = config.model_copy(update={"max_iterations": 12})

    class Counting(OfflineMutator):
        calls = 0

        async def complete(self, request: LLMRequest) -> LLMReply:
            Counting.calls += 1
            return await super().complete(request)

    controller = make_controller(longer, toy, db, Counting(seed=1))
    try:
        await controller.run()
    finally:
        await controller.aclose()
    after = db.programs("t")
    assert [p.iteration for p in after] == list(range(13))
    assert Counting.calls == 6  # only the new iterations asked the model
    for p in after:
        if p.id in first:
            assert p == first[p.id]
    db.close()


async def test_target_score_stops_the_run(toy: Problem, tmp_path: Path, scripted: Any) -> None:
    config = make_config(toy, tmp_path, max_iterations=50, target_score=110.0)
    summary, db, _ = await run_once(config, toy, scripted([IMPROVE]))
    assert summary.status == "stopped" and "target" in summary.reason
    assert len(db.programs("t")) < 51
    db.close()


async def test_auth_error_aborts_the_run_with_the_message(toy: Problem, tmp_path: Path) -> None:
    class Refusing:
        name = "refusing"

        async def complete(self, request: LLMRequest) -> LLMReply:
            raise LLMError("model gpt-x: 401 unauthorized; check OPENAI_API_KEY", retryable=False, kind="auth")

        async def aclose(self) -> None:
            return None

    with pytest.raises(RunAborted, match="OPENAI_API_KEY"):
        await run_once(make_config(toy, tmp_path), toy, Refusing())


async def test_failing_initial_program_is_a_user_error(toy: Problem, tmp_path: Path) -> None:
    from evolve.errors import UserError
    from evolve.problem import load_problem

    (toy.root / "initial.py").write_text("def run():\n    raise RuntimeError('broken start')\n")
    broken = load_problem(toy.root)
    with pytest.raises(UserError, match=r"initial program failed \(exception\).*broken start"):
        await run_once(make_config(broken, tmp_path), broken, OfflineMutator())


async def test_context_length_error_shrinks_the_prompt_and_retries(toy: Problem, tmp_path: Path, scripted: Any) -> None:
    class Tight(scripted):  # type: ignore[misc, valid-type]
        async def complete(self, request: LLMRequest) -> LLMReply:
            if "## Best programs so far" in request.messages[1].content:
                self.requests.append(request)
                raise LLMError("prompt is too long", retryable=False, kind="context_length")
            return await super().complete(request)

    llm = Tight([IMPROVE])
    config = make_config(toy, tmp_path, max_iterations=6, search={"islands": 1, "in_flight": 1})
    summary, db, _ = await run_once(config, toy, llm)
    assert summary.status == "finished"
    assert db.status_counts("t").get("llm_error", 0) == 0
    usage = {u["model"]: u for u in db.llm_usage("t")}
    assert usage["scripted"]["errors"] >= 1  # the refused, longer prompts are recorded too
    db.close()


async def test_cost_budget_stops_the_run_cleanly_and_resume_respects_it(toy: Problem, tmp_path: Path, scripted: Any) -> None:
    class Priced(scripted):  # type: ignore[misc, valid-type]
        async def complete(self, request: LLMRequest) -> LLMReply:
            reply = await super().complete(request)
            return reply.model_copy(update={"cost_usd": 0.01})

    config = make_config(toy, tmp_path, max_iterations=200, max_cost_usd=0.05)
    summary, db, _ = await run_once(config, toy, Priced([IMPROVE, WRONG_COUNT]))
    assert summary.status == "stopped" and "max_cost_usd" in summary.reason
    calls = sum(int(u["calls"]) for u in db.llm_usage("t"))
    assert 5 <= calls <= 5 + 4  # at most the proposals already in flight finish after the limit
    llm = Priced([IMPROVE])
    controller = make_controller(config, toy, db, llm)
    try:
        again = await controller.run()
    finally:
        await controller.aclose()
    assert again.status == "stopped" and len(llm.requests) == 0  # spent before it starts
    db.close()


async def test_replay_reproduces_a_run_exactly(toy: Problem, tmp_path: Path) -> None:
    from evolve.app import build_replay

    config = make_config(toy, tmp_path, run_name="orig", max_iterations=20, llm={"mode_weights": {"diff": 2.0, "rewrite": 1.0}})
    _, db, _ = await run_once(config, toy, OfflineMutator(seed=5))
    original = [(p.iteration, p.code_hash, p.status, p.metrics, p.mode) for p in db.programs("orig")]
    db.close()
    replay_cfg = config.model_copy(update={
        "run_name": "again",
        "llm": config.llm.model_copy(update={"provider": "replay", "replay_run": "orig"}),
    })
    llm = build_replay(replay_cfg)
    _, db2, _ = await run_once(replay_cfg, toy, llm)
    again = [(p.iteration, p.code_hash, p.status, p.metrics, p.mode) for p in db2.programs("again")]
    assert again == original
    assert all(u["cost_usd"] == 0 for u in db2.llm_usage("again"))
    db2.close()


async def test_resume_evaluates_pending_programs_without_asking_the_model(toy: Problem, tmp_path: Path, scripted: Any) -> None:
    from evolve.codehash import code_hash
    from evolve.controller import program_id

    config = make_config(toy, tmp_path, max_iterations=0)
    _, db, _ = await run_once(config, toy, scripted([NO_DIFF]))
    initial = db.programs("t")[0]
    assert initial.code is not None
    child_code = initial.code.replace(OLD_ROWS, GOOD_ROWS)
    # what a killed run leaves behind: the proposal committed, its evaluation not
    db.add_program(Program(
        id=program_id("t", 1), run_id="t", iteration=1, parent_id=initial.id, island=0, generation=1,
        code=child_code, code_hash=code_hash(child_code), status=Status.PENDING,
    ))
    llm = scripted([NO_DIFF])
    controller = make_controller(config.model_copy(update={"max_iterations": 1}), toy, db, llm)
    try:
        await controller.run()
    finally:
        await controller.aclose()
    assert llm.requests == []
    child = db.programs("t")[1]
    assert child.status is Status.EVALUATED and child.metrics["energy"] == pytest.approx(102.58, abs=0.01)
    db.close()
