"""Commands to a run (`evolve ctl` and the UI's POST endpoint): validated, recorded in the run's
database, refused without the page's control token or from another origin. The controller does
act on them (tests/test_steering.py); these tests check that they are recorded as sent."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.ui.harness import FinishedRun, Served, evolve, start_ui, stop_ui


@pytest.fixture
def copy(finished_run: FinishedRun, tmp_path: Path) -> FinishedRun:
    """The finished run, copied (commands written here do not touch the shared one)."""
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "evolve.db").write_bytes(finished_run.db.read_bytes())
    return FinishedRun(root=tmp_path, run_id="r1", db=tmp_path / "runs" / "r1" / "evolve.db")


def test_ctl_records_each_command_in_the_runs_history(copy: FinishedRun) -> None:
    (copy.root / "mine.py").write_text("def run():\n    return [[0.5, 0.5]]\n")
    for args in (["pause"], ["resume"], ["budget", "max_iterations=500", "max_cost_usd=2.5"], ["inject", "mine.py"], ["stop"]):
        r = evolve("ctl", "r1", *args, cwd=copy.root)
        assert r.returncode == 0, r.stderr
        assert "sent command #" in r.stderr and "applies it within a second" in r.stderr
    rows = copy.rows("select id, run_id, kind, args, source, applied_at from run_commands order by id")
    assert [(r[1], r[2]) for r in rows] == [("r1", k) for k in ("pause", "resume", "budget", "inject", "stop")]
    assert json.loads(rows[2][3]) == {"max_iterations": 500, "max_cost_usd": 2.5}
    assert json.loads(rows[3][3]) == {"code": "def run():\n    return [[0.5, 0.5]]\n"}
    assert all(r[4].startswith("cli on ") and r[5] is None for r in rows)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["jump"], "ACTION: one of pause, resume, stop, budget, inject, got 'jump'"),
        (["pause", "now"], "pause: takes no arguments"),
        (["budget"], "budget needs at least one of"),
        (["budget", "max_iterations=ten"], "budget: max_iterations: not an integer: 'ten'"),
        (["budget", "max_cost_usd=-1"], "must be a positive, finite value"),
        (["budget", "max_cost_usd=nan"], "must be a positive, finite value"),
        (["budget", "seed=3"], "expected LIMIT=VALUE"),
        (["inject"], "inject: usage"),
        (["inject", "missing.py"], "FILE: no such file: missing.py"),
        (["inject", "latin1.py"], "FILE: not UTF-8 text: latin1.py"),
    ],
)
def test_ctl_refuses_bad_commands_in_one_line(copy: FinishedRun, args: list[str], needle: str) -> None:
    (copy.root / "latin1.py").write_bytes(b"x = '\xe9'\n")
    r = evolve("ctl", "r1", *args, cwd=copy.root)
    assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert copy.rows("select count(*) from sqlite_master where name = 'run_commands'")[0][0] == 0 or \
        copy.rows("select count(*) from run_commands")[0][0] == 0


def _post(ui: Served, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(ui.base + "/api/runs/r1/commands", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_command_endpoint_needs_the_pages_token_and_its_origin(copy: FinishedRun) -> None:
    ui = start_ui("--runs-dir", "runs", cwd=copy.root)
    try:
        page = ui.get("/runs/r1")[2].decode()
        csrf = re.search(r'name="evolve-csrf" content="([^"]+)"', page)
        assert csrf is not None
        good = {"content-type": "application/json", "x-evolve-csrf": csrf.group(1)}
        pause = json.dumps({"kind": "pause"}).encode()
        assert _post(ui, pause, {"content-type": "application/json"})[0] == 403
        assert _post(ui, pause, {**good, "x-evolve-csrf": "guess"})[0] == 403
        assert _post(ui, pause, {**good, "origin": "http://attacker.example"})[0] == 403
        assert _post(ui, pause, {**good, "content-type": "text/plain"})[0] == 415
        assert _post(ui, b"{", good) == (400, {"error": "the body is not JSON"})
        status, answer = _post(ui, json.dumps({"kind": "budget", "args": {"max_tokens": 0}}).encode(), good)
        assert status == 400 and "max_tokens" in answer["error"]
        big = json.dumps({"kind": "inject", "args": {"code": "x" * 6_000_000}}).encode()
        assert _post(ui, big, good)[0] == 413
        assert copy.rows("select count(*) from sqlite_master where name = 'run_commands'")[0][0] == 0 or \
            copy.rows("select count(*) from run_commands")[0][0] == 0  # nothing refused was written
        origin = {**good, "origin": ui.base}
        status, answer = _post(ui, json.dumps({"kind": "budget", "args": {"max_iterations": 40}}).encode(), origin)
        assert status == 201 and answer["applied"] is False and "applies it within a second" in answer["note"]
        history = ui.json("/api/runs/r1/commands")
        assert [(h["id"], h["kind"], h["args"], h["applied_at"]) for h in history] == [(answer["id"], "budget", {"max_iterations": 40}, None)]
        assert history[0]["source"] == "ui from 127.0.0.1"
        assert copy.rows("select kind, args from run_commands") == [("budget", '{"max_iterations": 40}')]
    finally:
        stop_ui(ui)
