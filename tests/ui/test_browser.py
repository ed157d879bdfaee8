"""The pages of `evolve ui` in a real headless Chromium (Debian's `chromium`, driven by
Playwright): each page opens, what it shows matches the database, clicks lead from the best
program to its ancestors, and a running run's page follows the run live.

Screenshots go to ``$EVOLVE_UI_SCREENSHOTS`` (default: a pytest temporary folder)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.harness import FinishedRun, Served, start_ui, stop_ui

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("EVOLVE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[sync_api.Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()
    assert errors == []  # no script error and no failed request on any page


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("EVOLVE_UI_SCREENSHOTS")
    folder = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _score(text: str) -> float:
    return float(text.replace(",", ""))


def test_runs_page_lists_the_run_and_overlays_its_curve(page: sync_api.Page, served: Served, finished_run: FinishedRun, shots: Path) -> None:
    page.goto(served.base + "/")
    row = page.locator("#runs tr[data-run='r1']")
    row.wait_for()
    cells = row.locator("td")
    assert cells.nth(1).inner_text() == "r1" and cells.nth(2).inner_text() == "myprob"
    assert cells.nth(3).inner_text() == "finished"
    assert _score(cells.nth(4).inner_text()) == pytest.approx(finished_run.best()[1], rel=1e-7)
    assert cells.nth(7).inner_text() == "30 / 30"
    row.locator("input[type=checkbox]").check()
    page.locator("#overlay canvas").wait_for()
    assert page.locator("#overlay .u-legend").inner_text().count("r1") == 1
    page.screenshot(path=str(shots / "runs.png"), full_page=True)


def test_run_page_shows_charts_models_archive_and_a_cell_opens_its_elite(page: sync_api.Page, served: Served, finished_run: FinishedRun, shots: Path) -> None:
    page.goto(served.base + "/runs/r1")
    page.locator("#archive .heat a").first.wait_for()
    best_id, best_score = finished_run.best()
    best = page.locator("[data-key=best] b a")
    assert best.get_attribute("href") == f"/runs/r1/programs/{best_id}"
    assert _score(best.inner_text()) == pytest.approx(best_score, rel=1e-7)
    assert page.locator("[data-key=iterations] b").inner_text() == "30 / 30"
    for chart in ("iteration", "time", "spend"):
        assert page.locator(f"#chart-{chart} canvas").count() == 1, chart
    model = page.locator("#models tbody tr td")
    calls = finished_run.rows("select count(*) from llm_calls")[0][0]
    assert model.nth(0).inner_text() == "offline-mutator" and int(model.nth(1).inner_text()) == calls
    cells = page.locator("#archive .heat a")
    expected = sum(
        len(island["cells"]) for island in served.json("/api/runs/r1/archive")["islands"]
    )
    assert cells.count() == expected
    page.screenshot(path=str(shots / "run.png"), full_page=True)
    elite = cells.first.get_attribute("data-program")
    cells.first.click()
    page.wait_for_url(f"**/programs/{elite}")
    assert page.locator("#program-id").inner_text() == elite


def test_from_the_best_node_of_the_lineage_to_the_initial_program(page: sync_api.Page, served: Served, finished_run: FinishedRun, shots: Path) -> None:
    best_id, _ = finished_run.best()
    page.goto(served.base + "/runs/r1/lineage")
    sync_api.expect(page.locator("#lineage-count")).to_have_text("31 programs")  # drawn
    assert page.evaluate("window.evolveLineage.size()") == 31
    assert page.locator("#path li").last.inner_text().split()[1] == best_id
    page.screenshot(path=str(shots / "lineage.png"), full_page=True)
    x, y = page.evaluate(f"window.evolveLineage.nodeAt('{best_id}')")
    box = page.locator("#graph").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url(f"**/programs/{best_id}")
    page.screenshot(path=str(shots / "program.png"), full_page=True)

    expected_chain = []
    current: str | None = best_id
    while current is not None:
        expected_chain.append(current)
        current = finished_run.rows("select parent_id from programs where id = ?", current)[0][0]
    assert page.locator("#ancestors li").all_inner_texts() == expected_chain[::-1]
    walked = []
    while True:
        pid = page.locator("#program-id").inner_text()
        walked.append(pid)
        iteration, score, status, code = finished_run.rows(
            "select iteration, score, status, code from programs where id = ?", pid
        )[0]
        assert int(page.locator("#program-iteration").inner_text()) == iteration
        assert page.locator("#program-status").inner_text() == status
        assert _score(page.locator("#program-score").inner_text()) == pytest.approx(score, rel=1e-9)
        assert page.locator("#code").inner_text().strip() == code.strip()
        parent = page.locator("#parent-link")
        if parent.count() == 0:
            break
        parent_id = parent.inner_text()
        parent.click()
        page.wait_for_url(f"**/programs/{parent_id}")
    assert walked == expected_chain and iteration == 0


def test_programs_page_filters_and_sorts(page: sync_api.Page, served: Served, finished_run: FinishedRun, shots: Path) -> None:
    page.goto(served.base + "/runs/r1/programs")
    page.locator("#programs tbody tr").first.wait_for()
    assert page.locator("#programs tbody tr").count() == 31
    page.select_option("select[name=sort]", "score")
    page.fill("input[name=island]", "1")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*sort=score.*"))
    sync_api.expect(page.locator("#found")).to_contain_text("match")
    rows = page.locator("#programs tbody tr")
    expected = finished_run.rows(
        "select id from programs where island = 1 and status = 'evaluated' order by score asc, iteration asc"
    )
    assert rows.count() == len(expected)
    assert rows.first.locator("td").nth(1).inner_text() == expected[0][0]
    page.screenshot(path=str(shots / "programs.png"), full_page=True)


def test_a_running_run_is_followed_live(page: sync_api.Page, tmp_path: Path, shots: Path) -> None:
    evolve = [sys.executable, "-m", "evolve.cli"]
    subprocess.run([*evolve, "init", "myprob"], cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.Popen(
        [*evolve, "run", "problem=myprob", "max_iterations=100000", "run_name=live", "evaluator.concurrency=1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    ui = None
    try:
        db = tmp_path / "runs" / "live" / "evolve.db"
        deadline = time.monotonic() + 60
        while not db.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        ui = start_ui("--runs-dir", "runs", cwd=tmp_path)
        page.goto(ui.base + "/runs/live")
        state = page.locator("#state")
        sync_api.expect(state).to_have_text(re.compile(r"^running: pid "), timeout=30000)
        assert f"pid {run.pid}" in state.inner_text()
        assert page.locator("[data-key=owner] b").inner_text().startswith(f"pid {run.pid} on ")
        first = int(page.locator("[data-key=iterations] b").inner_text().split(" / ")[0].replace(",", ""))
        iterations = page.locator("[data-key=iterations] b")
        sync_api.expect(iterations).not_to_have_text(iterations.inner_text(), timeout=30000)
        assert int(iterations.inner_text().split(" / ")[0].replace(",", "")) > first  # moved on, no reload
        page.screenshot(path=str(shots / "run-live.png"), full_page=True)
        os.killpg(run.pid, signal.SIGINT)
        run.wait(timeout=60)
        sync_api.expect(state).to_have_text("interrupted", timeout=30000)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        if ui is not None:
            page.goto("about:blank")  # close the page's event stream before the server goes
            stop_ui(ui)


def test_pause_resume_and_stop_a_live_run_from_its_page(page: sync_api.Page, tmp_path: Path, shots: Path) -> None:
    evolve = [sys.executable, "-m", "evolve.cli"]
    subprocess.run([*evolve, "init", "myprob"], cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.Popen(
        [*evolve, "run", "problem=myprob", "max_iterations=100000", "run_name=steer", "evaluator.concurrency=1"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    db = tmp_path / "runs" / "steer" / "evolve.db"
    steer = FinishedRun(tmp_path, "steer", db)

    def finished() -> int:
        try:
            return int(steer.rows("select count(*) from programs where status != 'pending'")[0][0])
        except sqlite3.OperationalError:  # the run has not made its tables yet
            return 0

    def until(check: Any, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    ui = None
    try:
        until(lambda: db.exists() and finished() >= 3, "the run did not start")
        ui = start_ui("--runs-dir", "runs", cwd=tmp_path)
        page.goto(ui.base + "/runs/steer")
        page.click("button[data-command=pause]")
        until(lambda: steer.rows("select count(*) from run_commands where applied_at is not null")[0][0] == 1,
              "the pause was not applied")
        time.sleep(1.0)  # the iteration in flight finishes
        paused = finished()
        time.sleep(2.0)
        assert finished() == paused, "the run went on while paused"
        page.click("button[data-command=resume]")
        until(lambda: finished() > paused, "the run did not go on after resume")
        page.screenshot(path=str(shots / "run-steered.png"), full_page=True)
        page.click("button[data-command=stop]")
        assert run.wait(timeout=60) == 0
        assert steer.rows("select status, stop_reason from runs") == [("stopped", "stopped by a command (evolve ctl)")]
        assert [k for (k,) in steer.rows("select kind from run_commands where applied_at is not null order by id")] == [
            "pause", "resume", "stop",
        ]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        if ui is not None:
            page.goto("about:blank")
            stop_ui(ui)


def test_pause_and_budget_from_the_run_page_are_recorded(page: sync_api.Page, finished_run: FinishedRun, tmp_path: Path, shots: Path) -> None:
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    db = tmp_path / "runs" / "r1" / "evolve.db"
    db.write_bytes(finished_run.db.read_bytes())
    ui = start_ui("--runs-dir", "runs", cwd=tmp_path)
    try:
        page.goto(ui.base + "/runs/r1")
        sync_api.expect(page.locator("#commands tbody")).to_contain_text("no commands sent")
        page.click("button[data-command=pause]")
        sync_api.expect(page.locator("#control-result")).to_contain_text("sent; a live run applies it within a second")
        page.fill("#budget-form input[name=max_iterations]", "75")
        page.click("#budget-form button[type=submit]")
        rows = page.locator("#commands tbody tr")
        sync_api.expect(rows).to_have_count(2)
        assert rows.nth(0).locator("td").nth(1).inner_text() == "pause"
        assert rows.nth(1).locator("td").nth(2).inner_text() == '{"max_iterations":75}'
        assert FinishedRun(tmp_path, "r1", db).rows("select kind, args from run_commands order by id") == [
            ("pause", "{}"), ("budget", '{"max_iterations": 75}'),
        ]
        page.screenshot(path=str(shots / "run-control.png"), full_page=True)
        page.goto("about:blank")
    finally:
        stop_ui(ui)
