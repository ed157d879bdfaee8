"""Steering a live run through `evolve ctl`: pause and resume, a new budget, an injected program,
stop; each command is applied by the run's controller and recorded with its outcome."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evolve.config import RunConfig
from evolve.database.commands import Command
from evolve.problem import Problem
from evolve.proposals import program_id
from evolve.recorder import Recorder
from evolve.records import Program
from evolve.steering import Steering
from tests.test_controller import make_config
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



class FakeRun:
    """A live run as :class:`Steering` sees it (the ``Steerable`` protocol), without a controller."""

    def __init__(self, config: RunConfig, applied: int, free: bool = True) -> None:
        self.run_id, self.config, self.paused, self.applied = "r", config, False, applied
        self.free, self.calls, self.spawned = free, list[tuple[Any, ...]](), list[str]()

    def schedule(self) -> None:
        self.calls.append(("schedule",))

    def stop(self, reason: str) -> None:
        self.calls.append(("stop", reason))

    def reconfigure(self, config: RunConfig, *, restart_clock: bool) -> None:
        self.config = config
        self.calls.append(("reconfigure", config.max_iterations, restart_clock))

    def claim_iteration(self) -> int:
        if not self.free:
            raise ValueError("no free iteration to inject into")
        return self.applied + 1

    def spawn(self, coro: Any) -> None:
        self.spawned.append(coro.__qualname__)
        coro.close()

    async def evaluate(self, program: Program) -> None:
        raise AssertionError("not run here")


def steer(run: FakeRun, kind: str, **args: Any) -> str:
    recorder = Recorder(SimpleNamespace(set_run_status=None), run.run_id, "offline")  # type: ignore[arg-type]
    return Steering(run, recorder).apply(Command(kind=kind, args=args))  # type: ignore[arg-type]


def test_steering_pauses_resumes_and_stops_the_run_it_is_given(toy: Problem, tmp_path: Path) -> None:
    run = FakeRun(make_config(toy, tmp_path), applied=3)
    assert steer(run, "resume") == "not paused: nothing to resume"
    assert steer(run, "pause").startswith("paused") and run.paused
    assert steer(run, "resume") == "resumed" and not run.paused
    assert steer(run, "stop").startswith("stopping")
    assert run.calls == [("schedule",), ("schedule",), ("stop", "stopped by a command (evolve ctl)")]


def test_a_budget_is_stored_with_the_run_and_restarts_the_clock_only_for_max_wall_time(toy: Problem, tmp_path: Path) -> None:
    run = FakeRun(make_config(toy, tmp_path), applied=5)
    with pytest.raises(ValueError, match="max_iterations 4 is below the 5 iterations done"):
        steer(run, "budget", max_iterations=4)
    assert run.calls == [] and run.spawned == [] and run.config.max_iterations == 8  # nothing changed
    assert steer(run, "budget", max_iterations=20) == "budget now max_iterations=20"
    assert steer(run, "budget", max_wall_time=60.0) == "budget now max_wall_time=60.0"
    assert run.calls == [("reconfigure", 20, False), ("reconfigure", 20, True)]
    assert run.config.max_wall_time == 60.0
    assert run.spawned == ["Recorder.call", "Recorder.call"]  # the new limits written for a resume


def test_inject_takes_the_next_free_iteration_or_is_refused(toy: Problem, tmp_path: Path) -> None:
    run = FakeRun(make_config(toy, tmp_path, search={"islands": 2}), applied=4)
    assert steer(run, "inject", code="x = 1\n") == f"injected as iteration 5 (program {program_id('r', 5)})"
    assert run.spawned == ["Steering._injected"]
    run.free = False
    with pytest.raises(ValueError, match="no free iteration"):
        steer(run, "inject", code="x = 1\n")
