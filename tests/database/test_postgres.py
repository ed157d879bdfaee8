"""The same runs on PostgreSQL: a throwaway server on 127.0.0.1, started by this module."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from hostile_records import make_candidates_hostile, store_and_read_hostile_text

from evolve.app import build_controller, start_run
from evolve.config import RunConfig
from evolve.database import Database
from evolve.problem import Problem, load_problem


def _config(problem: Problem, tmp_path: Path, url: str, name: str, iterations: int) -> RunConfig:
    return RunConfig.model_validate({
        "problem": str(problem.root), "runs_dir": str(tmp_path), "run_name": name,
        "max_iterations": iterations, "progress": False, "evaluator": {"concurrency": 2},
        "database": {"url": url},
    })


async def _run(config: RunConfig, db: Database | None = None, problem: Problem | None = None) -> Any:
    if db is None:
        opened = start_run(config)
        problem, db = opened.problem, opened.db
    assert problem is not None
    controller = build_controller(run_id=config.run_name or "", config=config, problem=problem, db=db)
    try:
        return await controller.run(), db
    finally:
        await controller.aclose()


async def test_a_run_and_its_resume_on_postgresql(toy: Problem, tmp_path: Path, postgres_url: str) -> None:
    summary, db = await _run(_config(toy, tmp_path, postgres_url, "pg1", 12))
    assert summary.status == "finished"
    first = {p.id: p for p in db.programs("pg1")}
    assert sorted(p.iteration for p in first.values()) == list(range(13))
    assert all(p.parent_id in first for p in first.values() if p.iteration > 0)
    best = db.best_program("pg1", maximize=False)
    assert best is not None and summary.best is not None and best.id == summary.best.id
    assert [p.id for p in db.lineage(best.id)][-1] == best.id
    assert db.llm_usage("pg1")[0]["calls"] == 12

    again, db = await _run(_config(toy, tmp_path, postgres_url, "pg1", 20), db=db, problem=toy)
    assert again.status == "finished"
    after = db.programs("pg1")
    assert [p.iteration for p in after] == list(range(21))
    assert all(first[p.id] == p for p in after if p.id in first)
    db.close()


def test_hostile_text_is_stored_clean_and_bounded_on_postgresql(postgres_url: str) -> None:
    db = Database.open(postgres_url)
    try:
        store_and_read_hostile_text(db)
    finally:
        db.close()


async def test_a_candidate_printing_nul_and_raising_a_lone_surrogate_runs_and_resumes_on_postgresql(
    toy_dir: Path, tmp_path: Path, postgres_url: str
) -> None:
    make_candidates_hostile(toy_dir)
    problem = load_problem(toy_dir)
    summary, db = await _run(_config(problem, tmp_path, postgres_url, "pg-hostile", 8))
    assert summary.status == "finished"
    again, db = await _run(_config(problem, tmp_path, postgres_url, "pg-hostile", 14), db=db, problem=problem)
    assert again.status == "finished"
    programs = db.programs("pg-hostile")
    db.close()
    assert [p.iteration for p in programs] == list(range(15))
    raised = [p.error.message for p in programs if p.status == "exception" and p.error is not None]
    assert raised and all("bad point \ufffd here" in message for message in raised)


async def test_read_only_commands_on_postgresql(toy: Problem, tmp_path: Path, postgres_url: str) -> None:
    """``status --db URL`` lists the runs of a PostgreSQL database; status, best and lineage read a
    run there with the problem folder gone, in read-only transactions."""
    import json
    import sys

    summary, db = await _run(_config(toy, tmp_path, postgres_url, "pgview", 5))
    db.close()
    assert summary.best is not None
    shutil.rmtree(toy.root)

    def evolve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "evolve.cli", *args, "--db", postgres_url],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)

    listing = json.loads(evolve("status", "--json").stdout)
    assert "pgview" in [r["run"] for r in listing]
    status = evolve("status", "pgview")
    assert status.returncode == 0 and "best energy" in status.stdout, status.stderr
    best = json.loads(evolve("best", "pgview", "--json").stdout)
    assert best["program"]["id"] == summary.best.id
    assert evolve("lineage", "pgview").returncode == 0
