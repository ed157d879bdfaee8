"""Runs a user can trust, driven through the CLI: every budget stops the run (resumable, with its
reason recorded and printed), one controller per run, SIGTERM, a dead model endpoint, a crashing
scorer, and one clear line (never a traceback) for each bad input."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

EVOLVE = [sys.executable, "-m", "evolve.cli"]


def evolve(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVOLVE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    """The run's stderr, which must be one line and no traceback."""
    lines = [line for line in r.stderr.splitlines() if line.strip() and not line.startswith(("WARNING", "iter "))]
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1, r.stderr
    return lines[0]


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def run_row(tmp_path: Path, name: str) -> tuple[str, str]:
    (status, reason), = query(tmp_path / "runs" / name / "evolve.db", "select status, stop_reason from runs")
    return str(status), str(reason)


def applied(tmp_path: Path, name: str) -> int:
    (n,), = query(tmp_path / "runs" / name / "evolve.db", "select count(*) from programs where status != 'pending'")
    return int(n) - 1


def wait_for_programs(db: Path, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if query(db, "select count(*) from programs where status != 'pending'")[0][0] >= n:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{db}: fewer than {n} programs after {timeout} s")


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    assert evolve("init", "p", cwd=tmp_path).returncode == 0
    return tmp_path


FAST = ["problem=p", "evaluator.concurrency=2", "progress=false"]


# -- budgets ---------------------------------------------------------------------------------------
def test_max_iterations_and_target_score_stop_the_run(proj: Path) -> None:
    r = evolve("run", *FAST, "max_iterations=6", "run_name=it", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert run_row(proj, "it") == ("finished", "6 iterations") and applied(proj, "it") == 6
    (initial,), = query(proj / "runs" / "it" / "evolve.db", "select score from programs where iteration = 0")[0:1]
    # energy is minimized: any improvement on the initial program reaches this target
    target = float(initial) - 1e-9  # type: ignore[arg-type]
    r = evolve("run", *FAST, "max_iterations=3000", f"target_score={target!r}", "run_name=tg", cwd=proj)
    assert r.returncode == 0, r.stderr
    status, reason = run_row(proj, "tg")
    assert status == "stopped" and reason.startswith("target score") and reason in r.stderr
    assert applied(proj, "tg") < 3000
    (best,), = query(proj / "runs" / "tg" / "evolve.db", "select min(score) from programs where status = 'evaluated'")
    assert float(best) <= target  # type: ignore[arg-type]


def test_max_wall_time_stops_in_time_and_the_run_resumes(proj: Path) -> None:
    t0 = time.monotonic()
    r = evolve("run", *FAST, "max_iterations=1000000", "max_wall_time=10", "run_name=w", cwd=proj, timeout=90)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    status, reason = run_row(proj, "w")
    assert status == "stopped" and reason == "max_wall_time 10 s reached" and reason in r.stderr
    assert took < 10 + 4, f"max_wall_time=10 took {took:.1f} s"  # start-up counts against the budget
    done = applied(proj, "w")
    assert done > 0
    r = evolve("resume", "w", "max_wall_time=10", cwd=proj, timeout=90)
    assert r.returncode == 0, r.stderr
    assert applied(proj, "w") > done and run_row(proj, "w")[0] == "stopped"


def test_max_tokens_stops_the_run_and_resume_with_a_larger_budget_goes_on(proj: Path) -> None:
    r = evolve("run", *FAST, "max_iterations=100000", "max_tokens=20000", "run_name=tk", cwd=proj)
    assert r.returncode == 0, r.stderr
    status, reason = run_row(proj, "tk")
    assert status == "stopped" and reason.startswith("max_tokens 20000 reached") and "max_tokens 20000" in r.stderr
    (tokens,), = query(proj / "runs" / "tk" / "evolve.db", "select sum(input_tokens + output_tokens) from llm_calls")
    assert 20000 <= int(tokens) < 100000  # type: ignore[call-overload]
    done = applied(proj, "tk")
    r = evolve("resume", "tk", "max_tokens=40000", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert applied(proj, "tk") > done and run_row(proj, "tk")[1].startswith("max_tokens 40000")


@pytest.fixture
def wire_server(tmp_path: Path) -> str:
    """A model server on loopback speaking the OpenAI protocol, in its own process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "evolve.testing.wire_server", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield f"http://127.0.0.1:{port}/v1"  # type: ignore[misc]
    proc.terminate()
    proc.wait(timeout=10)


def test_max_cost_usd_stops_a_priced_run(proj: Path, wire_server: str) -> None:
    r = evolve(
        "run", *FAST, "llm=local", f"llm.base_url={wire_server}", "llm.price_in_per_mtok=100",
        "llm.price_out_per_mtok=100", "max_iterations=100000", "max_cost_usd=0.5", "run_name=c", cwd=proj,
    )
    assert r.returncode == 0, r.stderr
    status, reason = run_row(proj, "c")
    assert status == "stopped" and reason.startswith("max_cost_usd 0.5 reached") and "max_cost_usd 0.5" in r.stderr
    (cost,), = query(proj / "runs" / "c" / "evolve.db", "select sum(cost_usd) from llm_calls")
    assert 0.5 <= float(cost) < 2.0  # type: ignore[arg-type]


# -- liveness and ownership ------------------------------------------------------------------------
def test_a_second_controller_is_refused_and_sigterm_leaves_the_run_interrupted(proj: Path) -> None:
    db = proj / "runs" / "live" / "evolve.db"
    first = subprocess.Popen(
        [*EVOLVE, "run", *FAST, "max_iterations=1000000", "run_name=live"],
        cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_programs(db, 10)
        for args in (["resume", "live"], ["replay", "live"]):
            second = evolve(*args, cwd=proj)
            assert second.returncode == 2
            line = one_line_error(second)
            assert f"pid {first.pid} on" in line and "held by" in line
        status = evolve("status", "live", cwd=proj)
        assert status.returncode == 0 and "stale" not in status.stdout and "running" in status.stdout
        assert run_row(proj, "live")[0] == "running"  # the refused controllers changed nothing
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 143, stderr
    assert "Traceback" not in stderr and "evolve resume runs/live" in stderr
    assert run_row(proj, "live") == ("interrupted", "terminated (SIGTERM)")
    assert query(db, "select count(*) from run_leases") == [(0,)]  # released
    done = applied(proj, "live")
    r = evolve("resume", "live", f"max_iterations={done + 5}", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert run_row(proj, "live")[0] == "finished" and applied(proj, "live") == done + 5


def test_a_dead_model_endpoint_stops_the_run_with_one_line_naming_it(proj: Path) -> None:
    url = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    r = evolve(
        "run", *FAST, "llm=local", f"llm.base_url={url}", "llm.retry.max_retries=1",
        "llm.retry.initial_delay_s=0.01", "max_iterations=40", "max_llm_failures=3", "run_name=dead", cwd=proj,
    )
    assert r.returncode == 1
    line = one_line_error(r)
    assert "local-model" in line and "127.0.0.1:9" in line and "3 calls in a row" in line
    status, reason = run_row(proj, "dead")
    assert status == "stopped" and "max_llm_failures" in reason
    (calls,), = query(proj / "runs" / "dead" / "evolve.db", "select count(*) from programs where status = 'llm_error'")
    assert 3 <= int(calls) < 40  # type: ignore[call-overload]


# -- the trusted scorer ----------------------------------------------------------------------------
def _scorer_crashing_when(proj: Path, condition: str) -> None:
    scorer = proj / "p" / "scorer.py"
    text = scorer.read_text()
    text = text.replace(
        '    return {"energy": sum(1.0 / d for d in dists), "min_distance": min(dists)}',
        f'    energy = sum(1.0 / d for d in dists)\n    if {condition}:\n        raise KeyError("scorer bug")\n'
        '    return {"energy": energy, "min_distance": min(dists)}',
    )
    scorer.write_text(text)


def test_a_scorer_crash_on_the_initial_program_is_one_line_and_leaves_no_run(proj: Path) -> None:
    _scorer_crashing_when(proj, "True")
    r = evolve("run", *FAST, "max_iterations=5", "run_name=s0", cwd=proj)
    assert r.returncode == 2
    line = one_line_error(r)
    assert "scorer crashed on the initial program" in line and "KeyError" in line
    assert not (proj / "runs" / "s0").exists()


def test_a_scorer_crash_on_a_child_is_scorer_error_with_its_traceback(proj: Path) -> None:
    _scorer_crashing_when(proj, "energy < 130.7")  # the initial energy is 130.775; better children crash it
    r = evolve("run", *FAST, "max_iterations=40", "run_name=s1", cwd=proj)
    assert r.returncode == 0, r.stderr
    rows = query(proj / "runs" / "s1" / "evolve.db", "select error_message from programs where status = 'scorer_error'")
    assert rows, "no child reached the crashing branch"
    assert all("Traceback" in str(m) and "KeyError: 'scorer bug'" in str(m) for (m,) in rows)
    assert query(proj / "runs" / "s1" / "evolve.db", "select count(*) from programs where status = 'bad_output'") == [(0,)]
    status = evolve("status", "s1", cwd=proj)
    assert "scorer_error" in status.stdout


def test_a_feature_the_scorer_never_returns_is_refused_at_start(proj: Path) -> None:
    yaml = proj / "p" / "problem.yaml"
    yaml.write_text(yaml.read_text().replace("{name: min_distance,", "{name: min_dist,"))
    r = evolve("run", *FAST, "max_iterations=5", "run_name=f", cwd=proj)
    assert r.returncode == 2
    line = one_line_error(r)
    assert "features" in line and "'min_dist'" in line and "problem.yaml" in line
    assert not (proj / "runs" / "f").exists()


# -- one clear line --------------------------------------------------------------------------------
def test_a_missing_key_leaves_no_ghost_run(proj: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    r = subprocess.run([*EVOLVE, "run", *FAST, "llm=openai", "run_name=k"], cwd=proj, capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode in (1, 2)
    assert "OPENAI_API_KEY" in one_line_error(r)
    assert not (proj / "runs" / "k").exists()


def test_a_corrupt_database_is_one_line_and_does_not_break_the_run_list(proj: Path) -> None:
    assert evolve("run", *FAST, "max_iterations=3", "run_name=good", cwd=proj).returncode == 0
    assert evolve("run", *FAST, "max_iterations=3", "run_name=bad", cwd=proj).returncode == 0
    bad = proj / "runs" / "bad" / "evolve.db"
    bad.write_bytes(b"this is not a database" * 100)
    for args in (["status", "bad"], ["resume", "bad"], ["best", "bad"], ["lineage", "bad"]):
        r = evolve(*args, cwd=proj)
        assert r.returncode != 0
        line = one_line_error(r)
        assert "evolve.db" in line or "database" in line
    listing = evolve("status", cwd=proj)
    assert listing.returncode == 0, listing.stderr
    assert "good" in listing.stdout and "unreadable" in listing.stdout


def test_truncated_database_is_one_line(proj: Path) -> None:
    assert evolve("run", *FAST, "max_iterations=3", "run_name=t", cwd=proj).returncode == 0
    db = proj / "runs" / "t" / "evolve.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    r = evolve("status", "t", cwd=proj)
    assert r.returncode != 0
    one_line_error(r)


def test_an_unusable_runs_folder_is_one_line(proj: Path) -> None:
    (proj / "afile").write_text("x")
    r = evolve("run", *FAST, "runs_dir=afile/runs", "max_iterations=3", cwd=proj)
    assert r.returncode == 2
    assert "runs_dir" in one_line_error(r)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_a_full_disk_is_one_line_and_the_run_resumes_after(proj: Path) -> None:
    mnt = proj / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], check=True)
    try:
        r = evolve("run", *FAST, f"runs_dir={mnt}", "max_iterations=100000", "run_name=full", cwd=proj)
        assert r.returncode == 1
        assert "full" in one_line_error(r)
        # more room: the run resumes where it stopped
        subprocess.run(["mount", "-o", "remount,size=20m", str(mnt)], check=True)
        done = query(mnt / "full" / "evolve.db", "select count(*) from programs where status != 'pending'")[0][0]
        r = evolve("resume", str(mnt / "full"), f"max_iterations={int(done) + 3}", cwd=proj)  # type: ignore[call-overload]
        assert r.returncode == 0, r.stderr
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_resume_refuses_what_makes_no_sense_with_one_line(proj: Path) -> None:
    assert evolve("run", *FAST, "max_iterations=6", "run_name=r", cwd=proj).returncode == 0
    finished = evolve("resume", "r", cwd=proj)
    assert finished.returncode == 2
    line = one_line_error(finished)
    assert "is finished (6 of 6 iterations)" in line and "evolve resume runs/r max_iterations=" in line
    below = evolve("resume", "r", "max_iterations=3", cwd=proj)
    assert below.returncode == 2 and "below the 6 iterations" in one_line_error(below)
    other = evolve("resume", "r", "problem=circle_packing", "max_iterations=10", cwd=proj)
    assert other.returncode == 2 and "keeps its problem" in one_line_error(other)
    assert run_row(proj, "r") == ("finished", "6 iterations")  # refusals changed nothing
    more = evolve("resume", "r", "max_iterations=9", cwd=proj)
    assert more.returncode == 0, more.stderr
    assert applied(proj, "r") == 9


def test_resuming_a_run_whose_initial_program_failed_is_one_line(proj: Path) -> None:
    assert evolve("run", *FAST, "max_iterations=2", "run_name=i", cwd=proj).returncode == 0
    db = proj / "runs" / "i" / "evolve.db"
    con = sqlite3.connect(db)
    con.execute("update programs set status = 'exception', error_message = 'RuntimeError: no' where iteration = 0")
    con.execute("update runs set status = 'failed'")
    con.commit()
    con.close()
    r = evolve("resume", "i", "max_iterations=5", cwd=proj)
    assert r.returncode == 2
    assert "initial program failed" in one_line_error(r)


def test_ctrl_c_during_start_up_is_one_line_and_leaves_no_ghost(proj: Path) -> None:
    proc = subprocess.Popen([*EVOLVE, "run", *FAST, "max_iterations=50", "run_name=early"], cwd=proj,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (proj / "runs" / "early").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    if (proj / "runs" / "early" / "evolve.db").exists():  # interrupted after the start: resumable
        assert "evolve resume" in stderr
        assert run_row(proj, "early")[0] == "interrupted"
    else:
        assert "nothing was kept" in stderr


def test_runs_started_in_the_same_second_get_distinct_names(proj: Path) -> None:
    procs = [
        subprocess.Popen([*EVOLVE, "run", *FAST, "max_iterations=2", "evaluator.concurrency=1"], cwd=proj,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    runs = sorted(p.name for p in (proj / "runs").iterdir())
    assert len(runs) == 3 and len(set(runs)) == 3
    for name in runs:
        assert run_row(proj, name)[0] == "finished"


def test_replay_says_it_matches_and_when_the_recording_runs_out(proj: Path) -> None:
    assert evolve("run", *FAST, "max_iterations=8", "run_name=src", cwd=proj).returncode == 0
    same = evolve("replay", "src", cwd=proj)
    assert same.returncode == 0, same.stderr
    assert "replay matches the recording: the same 8 iterations as src" in same.stderr
    longer = evolve("replay", "src", "max_iterations=400", cwd=proj)
    assert longer.returncode == 1
    assert "recorded replies ran out" in one_line_error(longer)
