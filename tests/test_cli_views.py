"""The read-only commands as a user meets them: piped to a file (plain and whole), as JSON, after
the problem folder or the run folder moved, on a database they must not write to."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import crafted_run, evolve, file_hash

BOX = set("│┃─━╭╮╰╯┏┓┗┛┡┩╇")
LONG = "a-run-with-a-name-long-enough-that-an-eighty-column-table-would-have-to-cut-it-" + "x" * 20


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished 25-iteration offline run ``r`` of a scaffolded problem ``p``."""
    cwd = tmp_path_factory.mktemp("real")
    assert evolve("init", "p", cwd=cwd).returncode == 0
    r = evolve("run", "problem=p", "max_iterations=25", "run_name=r", "evaluator.concurrency=2", "progress=false", cwd=cwd)
    assert r.returncode == 0, r.stderr
    yield cwd


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    crafted_run(tmp_path, LONG)
    return tmp_path


def test_lineage_piped_is_unified_diffs_that_rebuild_the_program(real_run: Path, tmp_path: Path) -> None:
    lineage = evolve("lineage", "r", cwd=real_run)
    assert lineage.returncode == 0, lineage.stderr
    assert not BOX & set(lineage.stdout) and "…" not in lineage.stdout
    patch = tmp_path / "lineage.patch"
    patch.write_text(lineage.stdout)
    work = tmp_path / "apply"
    work.mkdir()
    applied = subprocess.run(["git", "apply", str(patch)], cwd=work, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    best = evolve("best", "r", cwd=real_run)
    assert (work / "program.py").read_text() == best.stdout
    assert lineage.stdout.count("\n+++ b/program.py\n") >= 2  # the initial program and at least one step


def test_status_piped_is_plain_and_whole_with_the_latest_failures(crafted: Path) -> None:
    status = evolve("status", LONG, cwd=crafted)
    assert status.returncode == 0, status.stderr
    out = status.stdout
    assert not BOX & set(out) and "…" not in out
    assert f"run: {LONG}  [finished]" in out
    assert "recent failures" in out
    # newest first, each with the line of its traceback that says what happened
    assert out.index("iteration 9 ") < out.index("iteration 6 ") < out.index("iteration 3 ")
    assert "exception (run): ValueError: boom 9" in out
    listing = evolve("status", cwd=crafted)
    assert LONG in listing.stdout and not BOX & set(listing.stdout)


def test_problems_piped_keeps_each_name_on_one_line(tmp_path: Path) -> None:
    r = evolve("problems", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(ln.startswith("second_autocorrelation ") for ln in lines)
    assert not BOX & set(r.stdout)


def test_help_is_not_cut_on_an_80_column_terminal(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "COLUMNS": "80"}
    r = evolve("resume", "--help", cwd=tmp_path, env=env)
    assert r.returncode == 0
    assert "--allow-changed-problem" in r.stdout and "…" not in r.stdout and not BOX & set(r.stdout)
    top = evolve("--help", cwd=tmp_path, env=env)
    for command in ("run", "resume", "status", "best", "lineage", "show", "export", "check", "problems"):
        assert f"  {command} " in top.stdout


def test_next_hint_is_one_line(tmp_path: Path) -> None:
    evolve("init", "p", cwd=tmp_path)
    r = evolve("run", "problem=p", "max_iterations=2", f"run_name={LONG}", "progress=false", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    hint = next(ln for ln in r.stderr.splitlines() if ln.startswith("next:"))
    assert hint.endswith(f"evolve lineage runs/{LONG}")


def test_json_of_status_best_lineage_problems_and_run_list(crafted: Path) -> None:
    status = json.loads(evolve("status", LONG, "--json", cwd=crafted).stdout)
    assert status["run_id"] == LONG and status["best_score"] == 90.0 and status["iterations"] == 10
    assert status["outcomes"] == {"evaluated": 7, "exception": 3}
    assert [f["iteration"] for f in status["recent_failures"]] == [9, 6, 3]
    assert status["history"][0]["kind"] == "start"
    best = json.loads(evolve("best", LONG, "--json", cwd=crafted).stdout)
    assert best["score"] == 90.0 and best["program"]["id"] == "p010"
    lineage = json.loads(evolve("lineage", LONG, "--json", cwd=crafted).stdout)
    assert [p["id"] for p in lineage["programs"]] == ["p000", "p001", "p010"]
    assert lineage["programs"][2]["delta"] == pytest.approx(90.0 - 99.5)
    runs = json.loads(evolve("status", "--json", cwd=crafted).stdout)
    assert [r["run"] for r in runs] == [LONG] and runs[0]["best"] == 90.0
    problems = json.loads(evolve("problems", "--json", cwd=crafted).stdout)
    circles = next(p for p in problems if p["name"] == "circle_packing")
    assert circles["direction"] == "maximize" and circles["best_known"] > 2.6 and circles["error"] is None


def test_show_a_program_by_iteration_and_by_id_prefix(crafted: Path) -> None:
    shown = evolve("show", LONG, "1", cwd=crafted)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    for needle in ("program: p001", "status: evaluated", "energy: 99.5", "parent: p000", "== diff against the parent",
                   "+# one", "== model call: test-model  1234 tokens in", "Improve this program please.", "== reply",
                   ">>>>>>> REPLACE", "== code", "p003 (iteration 3, exception)"):
        assert needle in out, needle
    failed = evolve("show", LONG, "p006", cwd=crafted).stdout
    assert "== error: exception (run)" in failed and 'raise ValueError("boom 6")' in failed
    as_json = json.loads(evolve("show", LONG, "1", "--json", cwd=crafted).stdout)
    assert as_json["call"]["reply"].startswith("<<<<<<< SEARCH") and len(as_json["children"]) == 8
    missing = evolve("show", LONG, "zzz", cwd=crafted)
    assert missing.returncode == 2 and "PROGRAM" in missing.stderr


def test_export_jsonl_and_csv_one_row_per_program(crafted: Path, tmp_path: Path) -> None:
    rows = [json.loads(ln) for ln in evolve("export", LONG, cwd=crafted).stdout.splitlines()]
    assert [r["iteration"] for r in rows] == list(range(11))
    by_id = {r["id"]: r for r in rows}
    assert by_id["p008"]["lineage"] == ["p000", "p001"] and by_id["p008"]["score"] == 92.0
    assert by_id["p001"]["model"] == "test-model" and by_id["p001"]["input_tokens"] == 1234
    assert by_id["p006"]["error_message"].endswith("boom 6\n") and by_id["p006"]["score"] is None
    out = tmp_path / "programs.csv"
    assert evolve("export", LONG, "--format", "csv", "-o", str(out), cwd=crafted).returncode == 0
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 11 and table[8]["lineage"] == "p000>p001" and table[8]["metric.energy"] == "92.0"
    assert evolve("export", LONG, "--format", "xml", cwd=crafted).returncode == 2


def test_read_only_commands_never_write_even_to_an_older_database(crafted: Path) -> None:
    db = crafted / "runs" / LONG / "evolve.db"
    con = sqlite3.connect(db)
    con.execute("drop table run_events")  # as written before the run history existed
    con.commit()
    con.close()
    before = file_hash(db)
    for args in (["status", LONG], ["status"], ["best", LONG], ["lineage", LONG], ["show", LONG, "3"],
                 ["export", LONG], ["status", LONG, "--json"]):
        r = evolve(*args, cwd=crafted)
        assert r.returncode == 0, (args, r.stderr)
    assert file_hash(db) == before
    tables = {t for (t,) in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
    assert "run_events" not in tables


def test_a_run_reads_from_its_database_alone_after_moves(crafted: Path, tmp_path: Path) -> None:
    shutil.rmtree(crafted / "prob")  # the problem folder is gone
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(crafted / "runs" / LONG, elsewhere / "renamed-copy")  # and the run folder copied, renamed
    folder = str(elsewhere / "renamed-copy")
    status = evolve("status", folder, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "best energy: 90" in status.stdout
    assert evolve("best", folder, cwd=tmp_path).returncode == 0
    assert evolve("lineage", folder, cwd=tmp_path).returncode == 0
    assert evolve("status", folder, "--html", str(tmp_path / "run.html"), cwd=tmp_path).returncode == 0


def test_status_db_lists_the_runs_of_a_database(crafted: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{crafted / 'runs' / LONG / 'evolve.db'}"
    r = evolve("status", "--db", url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert LONG in r.stdout
    one = evolve("status", LONG, "--db", url, cwd=tmp_path)
    assert one.returncode == 0 and "best energy: 90" in one.stdout


def test_read_only_commands_load_no_model_sdk_and_no_hydra(crafted: Path) -> None:
    import sys

    for args in (["--help"], ["status", LONG], ["best", LONG], ["lineage", LONG], ["problems"]):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "evolve.cli", *args], cwd=crafted,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        loaded = {ln.split("|")[-1].strip().split(".")[0] for ln in r.stderr.splitlines() if ln.startswith("import time:")}
        heavy = {"openai", "anthropic", "ray", "hydra", "numpy", "jinja2", "sqlalchemy"}
        assert not loaded & heavy, (args, loaded & heavy)
