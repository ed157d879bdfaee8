"""The command line, as a user drives it: run, status, best, lineage, eval, init, errors, kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.database.hostile_records import make_candidates_hostile

EVOLVE = [sys.executable, "-m", "evolve.cli"]


def evolve(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVOLVE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_init_run_status_best_lineage_eval(tmp_path: Path) -> None:
    assert evolve("init", "myprob", cwd=tmp_path).returncode == 0
    r = evolve("run", "problem=myprob", "max_iterations=30", "run_name=r1", "evaluator.concurrency=2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "best energy" in r.stderr
    db = tmp_path / "runs" / "r1" / "evolve.db"
    rows = sqlite3.connect(db).execute("select iteration, parent_id, status from programs order by iteration").fetchall()
    assert [it for it, _, _ in rows] == list(range(31))
    assert all(parent is not None for it, parent, _ in rows if it > 0)

    status = evolve("status", "r1", cwd=tmp_path)
    assert status.returncode == 0 and "best energy" in status.stdout and "outcomes" in status.stdout
    assert "r1" in evolve("status", cwd=tmp_path).stdout

    best = evolve("best", "r1", "-o", "best.py", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    stored = sqlite3.connect(db).execute(
        "select min(score) from programs where status = 'evaluated'"
    ).fetchone()[0]
    ev = evolve("eval", "problem=myprob", "best.py", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["status"] == "evaluated"
    assert result["metrics"]["energy"] == pytest.approx(stored, rel=1e-12)

    lineage = evolve("lineage", "r1", "--html", "lineage.html", cwd=tmp_path)
    assert lineage.returncode == 0, lineage.stderr
    assert "iteration 0" in lineage.stdout and "lineage:" in lineage.stdout
    steps = int(lineage.stdout.split("lineage: ", 1)[1].split()[0])
    assert steps >= 2  # 30 offline iterations improve on the initial energy
    page = (tmp_path / "lineage.html").read_text()
    assert "<svg" in page and page.count("<section>") == steps

    report = evolve("status", "r1", "--html", "run.html", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    run_page = (tmp_path / "run.html").read_text()
    assert "<svg" in run_page and "island 0:" in run_page and "evaluated" in run_page
    # The offline mutator has no price: the score is drawn against the tokens of its prompts.
    assert "<h2>Cost</h2>" in run_page and "tokens spent on model calls" in run_page


def test_eval_reports_a_failing_program_with_exit_0(tmp_path: Path) -> None:
    evolve("init", "p", cwd=tmp_path)
    (tmp_path / "bad.py").write_text("def run(:\n")
    r = evolve("eval", "problem=p", "bad.py", cwd=tmp_path)
    assert r.returncode == 0
    assert json.loads(r.stdout)["status"] == "syntax_error"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("entry: run", "entry: run\nentyr: x", "entyr"),
        ("initial_program: initial.py", "initial_program: missing.py", "initial_program"),
        ("timeout_s: 10", "timeout_s: [1, 2]", "limits.timeout_s"),
    ],
)
def test_malformed_problem_yaml_is_one_line_and_exit_2(tmp_path: Path, old: str, new: str, field: str) -> None:
    evolve("init", "p", cwd=tmp_path)
    yaml_path = tmp_path / "p" / "problem.yaml"
    yaml_path.write_text(yaml_path.read_text().replace(old, new))
    r = evolve("run", "problem=p", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "problem.yaml" in lines[0] and f"'{field}'" in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["problem=circle_packing", "search.islandz=3"], "islandz"),
        (["problem=circle_packing", "search.islands=many"], "search.islands"),
        (["problem=nowhere"], "problem=nowhere"),
        (["max_iterations=10"], "problem"),
    ],
)
def test_bad_overrides_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    r = evolve("run", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if text in cmd and state.split()[1] != "Z" and int(pid) != os.getpid():
            found.append(f"{pid} {cmd[:100]}")
    return found


def _programs(db: Path) -> dict[int, tuple[str, str, str | None, float | None]]:
    if not db.exists():
        return {}
    con = sqlite3.connect(db)
    try:
        rows = con.execute("select iteration, id, status, code_hash, score from programs").fetchall()
    except sqlite3.OperationalError:  # the run has not created its tables yet
        rows = []
    finally:
        con.close()
    return {it: (pid, st, h, sc) for it, pid, st, h, sc in rows}


def test_kill_9_then_resume_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    evolve("init", "p", cwd=tmp_path)
    db = tmp_path / "runs" / "k" / "evolve.db"
    proc = subprocess.Popen(
        [*EVOLVE, "run", "problem=p", "max_iterations=120", "run_name=k", "evaluator.concurrency=2"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len([v for v in _programs(db).values() if v[1] != "pending"]) >= 25:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the killed run's sandboxes and scorer workers die with it
    deadline = time.monotonic() + 5
    while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_mentioning(str(tmp_path))
    before = _programs(db)
    finished_before = {it: v for it, v in before.items() if v[1] != "pending"}
    assert 25 <= len(finished_before) < 121

    r = evolve("resume", "k", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    after = _programs(db)
    assert sorted(after) == list(range(121))  # every iteration exactly once (unique per run)
    for it, row in finished_before.items():
        assert after[it] == row  # nothing finished was lost or redone
    assert all(v[1] != "pending" for v in after.values())
    con = sqlite3.connect(db)
    assert con.execute("select status from runs").fetchone()[0] == "finished"
    con.close()


def test_ctrl_c_marks_the_run_interrupted_and_resume_finishes_it(tmp_path: Path) -> None:
    evolve("init", "p", cwd=tmp_path)
    db = tmp_path / "runs" / "c" / "evolve.db"
    proc = subprocess.Popen(
        [*EVOLVE, "run", "problem=p", "max_iterations=100", "run_name=c", "evaluator.concurrency=2"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_programs(db)) < 10:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "evolve resume" in stderr
    con = sqlite3.connect(db)
    assert con.execute("select status from runs").fetchone()[0] == "interrupted"
    con.close()
    r = evolve("resume", "c", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(_programs(db)) == list(range(101))


def test_a_candidate_raising_a_lone_surrogate_and_printing_nul_runs_and_resumes(tmp_path: Path) -> None:
    evolve("init", "p", cwd=tmp_path)
    make_candidates_hostile(tmp_path / "p")
    args = ("problem=p", "run_name=h", "evaluator.concurrency=2")
    first = evolve("run", *args, "max_iterations=12", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = evolve("resume", "h", "max_iterations=24", cwd=tmp_path)
    assert again.returncode == 0, again.stderr

    db = sqlite3.connect(tmp_path / "runs" / "h" / "evolve.db")
    rows = db.execute("select iteration, status, error_message, stdout_tail from programs").fetchall()
    assert sorted(it for it, *_ in rows) == list(range(25))
    raised = [msg for _, status, msg, _ in rows if status == "exception"]
    assert raised and all("bad point \ufffd here" in msg for msg in raised)
    assert all("\x00" not in (out or "") for *_, out in rows)
    assert any("out\ufffdput" in (out or "") for *_, out in rows)
