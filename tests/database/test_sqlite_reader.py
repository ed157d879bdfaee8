"""The light SQLite reader answers every read question as the SQLAlchemy store does."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evolve.database.sqlite_reader import SqliteReader
from evolve.database.store import Database
from evolve.errors import UserError
from tests.cli_helpers import crafted_run


def _same_run(a: Any, b: Any) -> None:
    assert b is not None and a is not None
    for field in dataclasses.fields(b):
        assert getattr(a, field.name) == getattr(b, field.name), field.name


def _compare(db_file: Path, run_id: str) -> None:
    store = Database.open_readonly(f"sqlite:///{db_file}")
    reader = SqliteReader.open(db_file)
    try:
        _same_run(store.get_run(run_id), reader.get_run(run_id))
        assert [r.id for r in store.list_runs()] == [r.id for r in reader.list_runs()]
        assert store.run_events(run_id) == reader.run_events(run_id)
        programs = store.programs(run_id, with_inspirations=True)
        assert programs == reader.programs(run_id, with_inspirations=True)
        assert store.programs(run_id) == reader.programs(run_id)
        for p in programs:
            assert store.program(p.id) == reader.program(p.id)
            assert store.lineage(p.id) == reader.lineage(p.id)
            assert store.children(p.id) == reader.children(p.id)
            assert store.program_call(p.id) == reader.program_call(p.id)
            assert store.find_program(run_id, str(p.iteration)) == reader.find_program(run_id, str(p.iteration))
            assert store.find_program(run_id, p.id[:6]) == reader.find_program(run_id, p.id[:6])
        for maximize in (True, False):
            assert store.best_program(run_id, maximize=maximize) == reader.best_program(run_id, maximize=maximize)
        assert store.status_counts(run_id) == reader.status_counts(run_id)
        assert store.lease_holder(run_id) == reader.lease_holder(run_id)
        assert store.llm_calls(run_id) == reader.llm_calls(run_id)
        assert store.llm_usage(run_id) == reader.llm_usage(run_id)
        assert store.llm_spend(run_id) == reader.llm_spend(run_id)
        assert store.llm_failures(run_id) == reader.llm_failures(run_id)
        for model in {c["model"] for c in store.llm_calls(run_id)}:
            assert store.model_iterations(run_id, model) == reader.model_iterations(run_id, model)
    finally:
        store.close()
        reader.close()


def test_same_answers_on_a_crafted_run(tmp_path: Path) -> None:
    db_file = crafted_run(tmp_path, "c")
    writer = Database.open(f"sqlite:///{db_file}")
    try:
        writer.lease("c").acquire()  # held, as a live run's: both readers name its holder
    finally:
        writer.close()
    _compare(db_file, "c")


def test_same_answers_on_a_real_run(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "evolve.cli", "init", "p"], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "evolve.cli", "run", "problem=p", "max_iterations=12", "run_name=r",
                    "progress=false", "evaluator.concurrency=2"], cwd=tmp_path, check=True, capture_output=True)
    _compare(tmp_path / "runs" / "r" / "evolve.db", "r")


def test_not_a_run_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(UserError, match="cannot read"):
        SqliteReader.open(tmp_path / "x.db")
    with pytest.raises(UserError, match="no database file"):
        SqliteReader.open(tmp_path / "missing.db")
