"""Steering a live run through `evolve ctl`: pause and resume, a new budget, an injected program,
stop; each command is applied by the run's controller and recorded with its outcome."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

from tests.test_run_trust import EVOLVE, FAST, evolve, proj, query, run_row, wait_for_programs

__all__ = ["proj"]  # the fixture, shared with the run tests


def finished_count(db: Path) -> int:
    return int(query(db, "select count(*) from programs where status != 'pending'")[0][0])  # type: ignore[call-overload]


def outcomes(db: Path) -> list[tuple[str, str | None]]:
    return [(str(k), o if o is None else str(o)) for k, o in query(db, "select kind, outcome from run_commands order by id")]


def wait_applied(db: Path, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query(db, "select count(*) from run_commands where applied_at is not null")[0][0] >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"only some of {n} commands were applied: {outcomes(db)}")


def test_pause_budget_inject_resume_and_stop_a_live_run(proj: Path) -> None:
    db = proj / "runs" / "s" / "evolve.db"
    run = subprocess.Popen([*EVOLVE, "run", *FAST, "max_iterations=1000000", "run_name=s"],
                           cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_programs(db, 5)
        assert evolve("ctl", "s", "pause", cwd=proj).returncode == 0
        wait_applied(db, 1)
        time.sleep(1.0)  # what was in flight finishes
        paused_at = finished_count(db)
        time.sleep(2.0)
        assert finished_count(db) == paused_at, "a paused run went on"

        too_low = evolve("ctl", "s", "budget", "max_iterations=1", cwd=proj)
        assert too_low.returncode == 0
        wait_applied(db, 2)
        assert outcomes(db)[-1][1].startswith("refused: max_iterations 1 is below")  # type: ignore[union-attr]

        target = paused_at + 25
        assert evolve("ctl", "s", "budget", f"max_iterations={target}", cwd=proj).returncode == 0
        injected = proj / "mine.py"
        injected.write_text((proj / "p" / "initial.py").read_text().replace("0.1", "0.11", 1))
        assert evolve("ctl", "s", "inject", str(injected), cwd=proj).returncode == 0
        wait_applied(db, 4)
        assert finished_count(db) <= paused_at + 1  # still paused (the injected one may be done)
        assert evolve("ctl", "s", "resume", cwd=proj).returncode == 0
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, stderr
    assert run_row(proj, "s") == ("finished", f"{target} iterations")
    assert finished_count(db) == target + 1
    kinds = [k for k, _ in outcomes(db)]
    assert kinds == ["pause", "budget", "budget", "inject", "resume"]
    assert all(o is not None for _, o in outcomes(db))
    (parent, status, code), = query(db, "select parent_id, status, code from programs where mode = 'inject'")
    assert parent is None and status == "evaluated" and code == injected.read_text()
    stored = query(db, "select config from runs")[0][0]
    assert f'"max_iterations": {target}' in str(stored)  # a resume keeps the new budget


def test_stop_ends_a_live_run_cleanly_and_it_resumes(proj: Path) -> None:
    db = proj / "runs" / "t" / "evolve.db"
    run = subprocess.Popen([*EVOLVE, "run", *FAST, "max_iterations=1000000", "run_name=t"],
                           cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_programs(db, 5)
        assert evolve("ctl", "t", "stop", cwd=proj).returncode == 0
        _, stderr = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, stderr
    assert run_row(proj, "t") == ("stopped", "stopped by a command (evolve ctl)")
    done = finished_count(db) - 1
    r = evolve("resume", "t", f"max_iterations={done + 3}", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert run_row(proj, "t")[0] == "finished"


def test_a_command_sent_to_a_stopped_run_waits_for_its_next_controller(proj: Path) -> None:
    assert evolve("run", *FAST, "max_iterations=4", "run_name=w", cwd=proj).returncode == 0
    assert evolve("ctl", "w", "budget", "max_iterations=9", cwd=proj).returncode == 0
    db = proj / "runs" / "w" / "evolve.db"
    assert outcomes(db) == [("budget", None)]
    r = evolve("resume", "w", "max_iterations=6", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert outcomes(db)[0][1] == "budget now max_iterations=9"
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from programs").fetchone()[0] == 10
    con.close()

