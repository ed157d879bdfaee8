"""Fixtures for the web UI tests: a finished offline run and `evolve ui` serving it, as a user
starts both (through the command line)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ui.harness import FinishedRun, Served, evolve, start_ui, stop_ui


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    root = tmp_path_factory.mktemp("ui-runs")
    assert evolve("init", "myprob", cwd=root).returncode == 0
    r = evolve("run", "problem=myprob", "max_iterations=30", "run_name=r1", "evaluator.concurrency=2",
               "search.islands=2", cwd=root)
    assert r.returncode == 0, r.stderr
    return FinishedRun(root=root, run_id="r1", db=root / "runs" / "r1" / "evolve.db")


@pytest.fixture(scope="session")
def served(finished_run: FinishedRun) -> Iterator[Served]:
    ui = start_ui("--runs-dir", "runs", cwd=finished_run.root)
    yield ui
    stop_ui(ui)
