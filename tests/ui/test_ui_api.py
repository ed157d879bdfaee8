"""The JSON API of `evolve ui`, checked against the database of a real offline run."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from markupsafe import escape

from evolve.codehash import code_hash
from evolve.database import Database
from evolve.records import Program, Status
from tests.ui.harness import FinishedRun, Served, evolve, start_ui, stop_ui


def test_runs_lists_the_run_with_its_best_and_iterations(served: Served, finished_run: FinishedRun) -> None:
    runs = served.json("/api/runs")
    assert [r["id"] for r in runs] == ["r1"]
    run = runs[0]
    best_id, best_score = finished_run.best()
    assert run["best_id"] == best_id and run["best_score"] == pytest.approx(best_score, rel=1e-12)
    assert run["iterations"] == 30 and run["max_iterations"] == 30
    assert run["status"] == "finished" and run["alive"] is False and run["owner"] is None
    assert run["primary"] == "energy" and run["direction"] == "minimize"
    assert run["counts"] == dict(finished_run.rows("select status, count(*) from programs group by status"))
    assert served.json("/api/runs/r1") == run


def test_programs_filter_and_sort_as_the_database_says(served: Served, finished_run: FinishedRun) -> None:
    everything = served.json("/api/runs/r1/programs?limit=1000")
    assert everything["total"] == 31
    assert [p["iteration"] for p in everything["programs"]] == list(range(31))
    best_id, _ = finished_run.best()
    assert served.json("/api/runs/r1/programs?sort=score&limit=1")["programs"][0]["id"] == best_id
    island1 = served.json("/api/runs/r1/programs?island=1&limit=1000")
    expected = finished_run.rows("select id from programs where island = 1 order by iteration")
    assert [p["id"] for p in island1["programs"]] == [i for (i,) in expected]
    median = sorted(s for (s,) in finished_run.rows("select score from programs where status='evaluated'"))[15]
    low = served.json(f"/api/runs/r1/programs?max_score={median!r}&limit=1000")
    assert low["total"] == len(finished_run.rows("select 1 from programs where status='evaluated' and score <= ?", median))
    assert all(p["score"] <= median for p in low["programs"])
    page = served.json("/api/runs/r1/programs?offset=10&limit=5")
    assert [p["iteration"] for p in page["programs"]] == [10, 11, 12, 13, 14]
    status, _, body = served.get("/api/runs/r1/programs?island=two")
    assert status == 400 and b"island" in body


def test_a_program_shows_its_code_diff_call_and_children(served: Served, finished_run: FinishedRun) -> None:
    best_id, best_score = finished_run.best()
    p = served.json(f"/api/runs/r1/programs/{best_id}")
    code, diff, parent, iteration, call_id = finished_run.rows(
        "select code, diff, parent_id, iteration, llm_call_id from programs where id = ?", best_id
    )[0]
    assert (p["code"], p["diff"], p["parent_id"], p["iteration"]) == (code, diff, parent, iteration)
    assert p["score"] == pytest.approx(best_score, rel=1e-12)
    prompt, reply = finished_run.rows("select prompt, reply from llm_calls where id = ?", call_id)[0]
    assert p["call"]["prompt"] == json.loads(prompt) and p["call"]["reply"] == reply
    lineage = [p["id"]]
    while (up := finished_run.rows("select parent_id from programs where id = ?", lineage[0])[0][0]) is not None:
        lineage.insert(0, up)
    assert p["lineage"] == lineage
    root = served.json(f"/api/runs/r1/programs/{lineage[0]}")
    kids = finished_run.rows("select id from programs where parent_id = ? order by iteration", lineage[0])
    assert [c["id"] for c in root["children"]] == [k for (k,) in kids] and root["call"] is None


def test_lineage_graph_links_every_program_to_its_parent_and_paths_to_the_best(served: Served, finished_run: FinishedRun) -> None:
    g = served.json("/api/runs/r1/lineage")
    parents = dict(finished_run.rows("select id, parent_id from programs"))
    assert len(g["id"]) == 31 and set(g["id"]) == set(parents)
    for k, pid in enumerate(g["id"]):
        assert (g["id"][g["parent"][k]] if g["parent"][k] >= 0 else None) == parents[pid]
        if g["parent"][k] >= 0:
            assert g["y"][k] == g["y"][g["parent"][k]] + 1  # one level below its parent
    path = [g["id"][k] for k in g["path"]]
    assert path[-1] == finished_run.best()[0] and parents[path[0]] is None
    assert all(parents[b] == a for a, b in itertools.pairwise(path))


def test_charts_draw_the_best_so_far(served: Served, finished_run: FinishedRun) -> None:
    c = served.json("/api/runs/r1/charts")
    assert len(c["iteration"]["best"]) == len(c["iteration"]["x"]) == len(c["iteration"]["score"]) == 31
    scores = dict(finished_run.rows("select iteration, score from programs where status = 'evaluated'"))
    assert dict(zip(c["iteration"]["x"], c["iteration"]["score"], strict=True)) == scores
    steps = [(x, b) for x, b in zip(c["iteration"]["x"], c["iteration"]["best"], strict=True) if b is not None]
    assert all(b < a for (_, a), (_, b) in itertools.pairwise(steps[:-1]))  # each step improves (minimize)
    for x, b in steps:  # each step is the best of the programs up to it
        assert b == min(s for it, s in scores.items() if it <= x)
    best = [b for _, b in steps]
    assert best[-1] == pytest.approx(finished_run.best()[1], rel=1e-12)
    assert c["time"]["best"][-1] == pytest.approx(best[-1]) and c["spend"]["best"][-1] == pytest.approx(best[-1])
    assert c["spend"]["unit"] == "tokens"  # the offline mutator has no price
    tokens = finished_run.rows("select sum(input_tokens + output_tokens) from llm_calls")[0][0]
    assert c["spend"]["total"] == tokens and c["spend"]["x"][-1] == tokens
    assert c["time"]["x"] == sorted(c["time"]["x"])


def test_archive_cells_hold_the_best_program_of_each_cell(served: Served, finished_run: FinishedRun) -> None:
    a = served.json("/api/runs/r1/archive")
    assert a["dimensions"] == ["min_distance", "code_length"] and len(a["islands"]) == 2
    rows = finished_run.rows("select id, island, iteration, cell, score from programs where status='evaluated'")
    for island in a["islands"]:
        mine = [r for r in rows if r[1] == island["island"] or r[2] == 0]
        cells: dict[tuple[int, int], float] = {}
        for _, _, _, cell, score in mine:
            x, y = json.loads(cell)
            cells[(x, y)] = min(score, cells.get((x, y), math.inf))
        assert {(c["x"], c["y"]): c["score"] for c in island["cells"]} == cells
        for c in island["cells"]:
            assert dict((r[0], r[4]) for r in mine)[c["id"]] == c["score"]


def test_unknown_runs_and_programs_are_404(served: Served) -> None:
    for path in ("/api/runs/nope", "/api/runs/r1/programs/nope", "/api/runs/..%2Fr1", "/runs/nope"):
        status, _, _body = served.get(path)
        assert status == 404, path
    assert json.loads(served.get("/api/runs/nope")[2]) == {"error": "no run 'nope'"}


def _events(served: Served, path: str, into: list[str], stop: threading.Event) -> None:
    with urllib.request.urlopen(served.base + path, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        while not stop.is_set():
            line = r.readline().decode()
            if not line:
                return
            if line.startswith("event:"):
                into.append(line.split(":", 1)[1].strip())


def test_events_announce_a_new_program_while_the_page_is_open(finished_run: FinishedRun, tmp_path: Path) -> None:
    copy = tmp_path / "runs" / "r1"
    copy.mkdir(parents=True)
    (copy / "evolve.db").write_bytes(finished_run.db.read_bytes())
    ui = start_ui("--runs-dir", "runs", cwd=tmp_path)
    try:
        seen: list[str] = []
        stop = threading.Event()
        reader = threading.Thread(target=_events, args=(ui, "/api/runs/r1/events", seen, stop), daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ["change"]  # the first state
        time.sleep(2.5)
        assert seen == ["change"]  # nothing moved: no event
        db = Database.open(f"sqlite:///{copy / 'evolve.db'}")
        code = "def run():\n    return [0.5]\n"
        db.bulk_add_programs([Program(
            id="added000001", run_id="r1", iteration=31, parent_id=None, island=0, generation=1, code=code,
            code_hash=code_hash(code), status=Status.EVALUATED, metrics={"energy": 1.0},
        )], primary="energy")
        db.close()
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == ["change", "change"]
        assert ui.json("/api/runs/r1")["best_id"] == "added000001"
        stop.set()
    finally:
        stop_ui(ui)


def test_a_hostile_program_is_shown_as_text(finished_run: FinishedRun, tmp_path: Path) -> None:
    copy = tmp_path / "runs" / "r1"
    copy.mkdir(parents=True)
    (copy / "evolve.db").write_bytes(finished_run.db.read_bytes())
    db = Database.open(f"sqlite:///{copy / 'evolve.db'}")
    code = "</pre></div><script>alert('x')</script><img src=x onerror=alert(1)>\n"
    db.bulk_add_programs([Program(
        id="hostile0001", run_id="r1", iteration=31, parent_id=None, island=0, generation=1, code=code,
        code_hash=code_hash(code), status=Status.EXCEPTION, diff=code, feedback=code,
    )], primary="energy")
    db.close()
    ui = start_ui("--runs-dir", "runs", cwd=tmp_path)
    try:
        status, headers, body = ui.get("/runs/r1/programs/hostile0001")
        page = body.decode()
        assert status == 200
        assert "<script>alert" not in page and "<img src=x" not in page
        assert str(escape(code.rstrip("\n"))) in page  # the feedback, as text
        assert page.count("<script") == 2  # uPlot and the app's own script, nothing more
        assert "script-src 'self'" in headers["content-security-policy"]
    finally:
        stop_ui(ui)


def test_loopback_bind_refuses_a_foreign_host_name(served: Served) -> None:
    assert served.get("/api/runs", {"Host": "localhost:1"})[0] == 200
    status, _, body = served.get("/api/runs", {"Host": "attacker.example"})
    assert status == 403 and b"loopback" in body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_any_other_bind_needs_the_token_printed_once(finished_run: FinishedRun) -> None:
    ui = start_ui("--runs-dir", "runs", "--host", "0.0.0.0", cwd=finished_run.root)
    try:
        assert "?token=" in ui.url
        token = ui.url.split("?token=", 1)[1]
        assert ui.get("/api/runs")[0] == 403
        assert ui.get("/api/runs?token=wrong")[0] == 403
        assert ui.get("/api/runs", {"Cookie": "evolve_ui_token=wrong"})[0] == 403
        assert ui.get("/api/runs", {"Authorization": f"Bearer {token}"})[0] == 200
        assert ui.get("/api/runs", {"Cookie": f"evolve_ui_token={token}"})[0] == 200
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(f"{ui.base}/runs/r1?token={token}", timeout=10)
            raise AssertionError("expected a redirect")
        except urllib.error.HTTPError as exc:
            assert exc.code == 303 and exc.headers["location"] == "/runs/r1"
            cookie = exc.headers["set-cookie"]
            assert f"evolve_ui_token={token}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    finally:
        stop_ui(ui)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_a_busy_port_is_a_one_line_error(finished_run: FinishedRun) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = evolve("ui", "--runs-dir", "runs", "--port", str(port), cwd=finished_run.root, timeout=30)
    assert r.returncode == 2 and r.stderr.startswith("evolve: error: --host/--port: cannot listen on 127.0.0.1")
    r = evolve("ui", "--runs-dir", "nowhere", cwd=finished_run.root, timeout=30)
    assert r.returncode == 2 and "--runs-dir: no such folder: nowhere" in r.stderr
    (finished_run.root / "junk.db").write_bytes(b"not a database" * 100)
    r = evolve("ui", "--db", "sqlite:///junk.db", cwd=finished_run.root, timeout=30)
    assert r.returncode in (1, 2) and r.stderr.startswith("evolve: error: ") and r.stderr.count("\n") == 1, r.stderr


def test_ctrl_c_stops_the_server_with_a_page_open(finished_run: FinishedRun) -> None:
    ui = start_ui("--runs-dir", "runs", cwd=finished_run.root)
    seen: list[str] = []
    stop = threading.Event()
    reader = threading.Thread(target=_events, args=(ui, "/api/events", seen, stop), daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == ["change"]  # the stream is open
    t0 = time.monotonic()
    os.killpg(ui.proc.pid, signal.SIGINT)
    ui.proc.wait(timeout=10)
    assert time.monotonic() - t0 < 5
