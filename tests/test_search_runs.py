"""Strategies through the controller (a fake in-process evaluator: milliseconds) and the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evolve.app import start_run
from evolve.config import RunConfig
from evolve.controller import Controller, RunSummary
from evolve.database import Database
from evolve.llm.offline import OfflineMutator
from evolve.problem import Problem
from evolve.prompts import PromptBuilder

STRATEGIES = ["map_elites", "greedy", "random"]


def config(problem: Problem, tmp_path: Path, strategy: str, **over: Any) -> RunConfig:
    return RunConfig.model_validate({
        "problem": str(problem.root), "runs_dir": str(tmp_path / "runs"), "run_name": over.pop("run_name", "t"),
        "max_iterations": over.pop("max_iterations", 30), "progress": False, "evaluator": {"concurrency": 2},
        "search": {"strategy": strategy, "in_flight": 3, "lag": over.pop("lag", 4)}, **over,
    })


async def run(cfg: RunConfig, problem: Problem, db: Database, evaluator: Any) -> RunSummary:
    controller = Controller(
        run_id=cfg.run_name or "t", problem=problem, config=cfg, db=db, llm=OfflineMutator(seed=3),
        evaluator=evaluator, prompts=PromptBuilder(problem),
    )
    try:
        return await controller.run()
    finally:
        await controller.aclose()


def hashes(db: Database, run_id: str) -> list[tuple[int, str | None, str]]:
    return [(p.iteration, p.code_hash, p.status.value) for p in db.programs(run_id)]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_seeded_run_makes_the_same_programs_with_each_strategy(
    toy: Problem, tmp_path: Path, fake_evaluator: Any, strategy: str
) -> None:
    runs = []
    for name in ("a", "b"):
        opened = start_run(config(toy, tmp_path, strategy, run_name=name))
        summary = await run(config(toy, tmp_path, strategy, run_name=name), toy, opened.db, fake_evaluator())
        assert summary.status == "finished" and summary.best is not None
        runs.append(hashes(opened.db, name))
        opened.db.close()
    assert runs[0] == runs[1]
    assert len({h for _, h, _ in runs[0]}) > 10  # the search did explore


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_resumed_run_continues_as_an_uninterrupted_one(
    toy: Problem, tmp_path: Path, fake_evaluator: Any, strategy: str
) -> None:
    whole = start_run(config(toy, tmp_path, strategy, run_name="whole", lag=1))
    await run(config(toy, tmp_path, strategy, run_name="whole", lag=1), toy, whole.db, fake_evaluator())
    part_cfg = config(toy, tmp_path, strategy, run_name="part", lag=1, max_iterations=12)
    part = start_run(part_cfg)
    await run(part_cfg, toy, part.db, fake_evaluator())
    await run(part_cfg.model_copy(update={"max_iterations": 30}), toy, part.db, fake_evaluator())
    assert hashes(part.db, "part") == hashes(whole.db, "whole")
    whole.db.close()
    part.db.close()


async def test_random_search_makes_every_child_from_the_initial_program(
    toy: Problem, tmp_path: Path, fake_evaluator: Any
) -> None:
    cfg = config(toy, tmp_path, "random")
    opened = start_run(cfg)
    evaluator = fake_evaluator()
    summary = await run(cfg, toy, opened.db, evaluator)
    programs = opened.db.programs("t")
    assert {p.parent_id for p in programs[1:]} == {programs[0].id}
    assert {p.generation for p in programs[1:]} == {1}
    scored = [p.metrics["energy"] for p in programs if p.score("energy") is not None]
    assert summary.best is not None and summary.best.metrics["energy"] == min(scored)
    assert len(evaluator.calls) == len({p.code_hash for p in programs if p.code_hash})  # one call per code
    opened.db.close()


def evolve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evolve.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("strategy", ["greedy", "random"])
def test_search_group_option_from_the_cli_is_recorded_with_the_run(toy_dir: Path, tmp_path: Path, strategy: str) -> None:
    r = evolve("run", f"problem={toy_dir}", f"search={strategy}", "max_iterations=4", "run_name=r",
               "progress=false", "evaluator.concurrency=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(tmp_path / "runs" / "r" / "evolve.db")
    stored = json.loads(con.execute("select config from runs").fetchone()[0])
    assert stored["search"]["strategy"] == strategy
    parents = {row[0] for row in con.execute("select parent_id from programs where iteration > 0")}
    if strategy == "random":
        initial = con.execute("select id from programs where iteration = 0").fetchone()[0]
        assert parents == {initial}


def test_an_unknown_strategy_is_a_one_line_error_naming_the_field(toy_dir: Path, tmp_path: Path) -> None:
    r = evolve("run", f"problem={toy_dir}", "search.strategy=hill_climb", "max_iterations=2", cwd=tmp_path)
    assert r.returncode != 0
    assert "search.strategy" in r.stderr and "hill_climb" in r.stderr and "Traceback" not in r.stderr


def test_a_strategy_that_does_not_import_leaves_no_run_behind(toy_dir: Path, tmp_path: Path) -> None:
    r = evolve("run", f"problem={toy_dir}", "search.strategy=no_such_pkg_xyz:Search", "run_name=r", cwd=tmp_path)
    assert r.returncode != 0
    assert "search.strategy: cannot import 'no_such_pkg_xyz'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs" / "r").exists()


def test_pareto_runs_from_the_cli_on_objectives_declared_in_problem_yaml(toy_dir: Path, tmp_path: Path) -> None:
    import yaml

    spec = yaml.safe_load((toy_dir / "problem.yaml").read_text())
    spec["metrics"]["objectives"] = {"energy": "minimize", "code_length": "minimize"}
    (toy_dir / "problem.yaml").write_text(yaml.safe_dump(spec))
    r = evolve("run", f"problem={toy_dir}", "search=pareto", "max_iterations=4", "run_name=r",
               "progress=false", "evaluator.concurrency=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(tmp_path / "runs" / "r" / "evolve.db")
    stored = json.loads(con.execute("select config from runs").fetchone()[0])
    assert stored["search"]["strategy"] == "pareto" and stored["search"]["population"] == 64


def test_pareto_without_objectives_is_a_one_line_error(toy_dir: Path, tmp_path: Path) -> None:
    r = evolve("run", f"problem={toy_dir}", "search=pareto", "run_name=r", cwd=tmp_path)
    assert r.returncode != 0
    assert "metrics.objectives" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs" / "r").exists()


def test_status_names_the_strategy_and_shows_the_pareto_front(toy_dir: Path, tmp_path: Path) -> None:
    import yaml

    spec = yaml.safe_load((toy_dir / "problem.yaml").read_text())
    spec["metrics"]["objectives"] = {"energy": "minimize", "code_length": "minimize"}
    (toy_dir / "problem.yaml").write_text(yaml.safe_dump(spec))
    r = evolve("run", f"problem={toy_dir}", "search=pareto", "max_iterations=6", "run_name=r",
               "progress=false", "evaluator.concurrency=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    status = evolve("status", "r", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "pareto" in status.stdout and "front" in status.stdout
    con = sqlite3.connect(tmp_path / "runs" / "r" / "evolve.db")
    rows = con.execute("select id, score, length(code) from programs where status = 'evaluated'").fetchall()
    front = [i for i, e, n in rows if not any(e2 <= e and n2 <= n and (e2 < e or n2 < n) for _, e2, n2 in rows)]
    assert front and all(pid in status.stdout for pid in front)


def test_show_marks_the_pareto_front_and_without_a_program_shows_the_front(toy_dir: Path, tmp_path: Path) -> None:
    import yaml

    spec = yaml.safe_load((toy_dir / "problem.yaml").read_text())
    spec["metrics"]["objectives"] = {"energy": "minimize", "code_length": "minimize"}
    (toy_dir / "problem.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    r = evolve("run", f"problem={toy_dir}", "search=pareto", "max_iterations=12", "run_name=r",
               "progress=false", "evaluator.concurrency=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(tmp_path / "runs" / "r" / "evolve.db")
    rows = con.execute("select id, score, length(code) from programs where status = 'evaluated' order by iteration").fetchall()
    front = [i for i, e, n in rows if not any(e2 <= e and n2 <= n and (e2 < e or n2 < n) for _, e2, n2 in rows)]
    best = min((e, k, i) for k, (i, e, _) in enumerate(rows) if i in front)[2]  # lowest energy, earliest
    off = [i for i, _, _ in rows if i not in front]
    assert len(front) >= 2 and off, "the seeded run has a front of several and dominated programs"

    out = evolve("show", "r", cwd=tmp_path).stdout  # piped: plain text
    assert f"the best of a pareto run is its front: {len(front)} programs" in out
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("front: ")]
    assert sorted(listed) == sorted(front)
    # read along the trade-off: by the first objective, best first (lowest energy), then the
    # second (shortest code), the earliest of equals first
    by_id = {i: (e, n, k) for k, (i, e, n) in enumerate(rows)}
    assert listed == sorted(front, key=lambda i: by_id[i])
    assert [line for line in out.splitlines() if line.endswith("(shown)")] == [
        next(line for line in out.splitlines() if line.startswith(f"front: {best}"))]
    assert f"program: {best}\n" in out and f"pareto front: on the run's front of {len(front)} programs" in out

    dominated = evolve("show", "r", off[-1], cwd=tmp_path).stdout
    assert f"program: {off[-1]}\n" in dominated and "pareto front: not on the run's front" in dominated
    assert "front: " + front[0] not in dominated  # the front is listed only when no program is asked for

    as_json = json.loads(evolve("show", "r", "--json", cwd=tmp_path).stdout)
    assert as_json["picked"] is True and as_json["on_front"] is True and as_json["program"]["id"] == best
    assert sorted(m["id"] for m in as_json["front"]) == sorted(front)
    assert set(as_json["front"][0]["objectives"]) == {"energy", "code_length"}
    off_json = json.loads(evolve("show", "r", off[-1], "--json", cwd=tmp_path).stdout)
    assert off_json["picked"] is False and off_json["on_front"] is False


def test_show_without_a_program_shows_the_best_of_a_single_objective_run(toy_dir: Path, tmp_path: Path) -> None:
    r = evolve("run", f"problem={toy_dir}", "max_iterations=6", "run_name=r", "progress=false",
               "evaluator.concurrency=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(tmp_path / "runs" / "r" / "evolve.db")
    best = con.execute("select id from programs where status = 'evaluated' order by score, iteration").fetchone()[0]
    out = evolve("show", "r", cwd=tmp_path).stdout
    assert out.startswith(f"the run's best by energy: program {best}\n") and "pareto" not in out
    as_json = json.loads(evolve("show", "r", "--json", cwd=tmp_path).stdout)
    assert as_json["program"]["id"] == best and as_json["on_front"] is None and as_json["front"] is None


def test_a_run_keeps_its_strategy_on_resume(toy_dir: Path, tmp_path: Path) -> None:
    r = evolve("run", f"problem={toy_dir}", "search=random", "max_iterations=2", "run_name=r",
               "progress=false", "evaluator.concurrency=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    refused = evolve("resume", "r", "search=greedy", "max_iterations=4", cwd=tmp_path)
    assert refused.returncode != 0
    assert "a run keeps its search strategy" in refused.stderr and "uses random" in refused.stderr
    same = evolve("resume", "r", "search=random", "max_iterations=4", "progress=false", cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    con = sqlite3.connect(tmp_path / "runs" / "r" / "evolve.db")
    initial = con.execute("select id from programs where iteration = 0").fetchone()[0]
    parents = {row[0] for row in con.execute("select parent_id from programs where iteration > 0")}
    assert parents == {initial} and con.execute("select count(*) from programs").fetchone()[0] == 5
