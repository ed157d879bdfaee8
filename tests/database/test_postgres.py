"""The same runs on PostgreSQL: a throwaway server on 127.0.0.1, started by this module."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_records import make_candidates_hostile, store_and_read_hostile_text

from evolve.app import build_controller, start_run
from evolve.config import RunConfig
from evolve.database import Database
from evolve.problem import Problem, load_problem


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries are not installed (.ci/run installs Debian's postgresql)")
    bindir = Path(bins[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="evolve-pg-"))  # not under pytest's 0700 tmp: the server user reads it
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        root.chmod(0o755)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "evolve"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(root / "log"), "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([*as_user, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "evolve", "evolve"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://evolve@127.0.0.1:{port}/evolve"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


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
