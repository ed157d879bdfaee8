"""Where a run is: its folder (SQLite file inside) or a database URL, and its id there.

Cheap on purpose (no SQLAlchemy, no pydantic): every read-only command starts here, and they
answer in well under a second.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from evolve.errors import UserError

DB_FILE = "evolve.db"


@dataclass(frozen=True)
class RunLocation:
    run_id: str
    run_dir: Path | None
    db_url: str


def sqlite_url(db_file: Path) -> str:
    return f"sqlite:///{db_file.resolve()}"


def locate_run(run: str, db_url: str | None = None, runs_dir: str = "runs") -> RunLocation:
    """``run`` is a run folder, a run name under ``runs_dir``, or (with ``db_url``) a run id.

    A run folder that was renamed or copied still names its run: when the folder's name is not a
    run in its database and the database holds one run, that one is meant.
    """
    if db_url is not None:
        return RunLocation(Path(run).name, None, db_url)
    for candidate in (Path(run), Path(runs_dir) / run):
        db_file = candidate / DB_FILE
        if db_file.is_file():
            run_id = _run_id_in(db_file, candidate.resolve().name)
            return RunLocation(run_id, candidate, sqlite_url(db_file))
    raise UserError(f"RUN: no run at '{run}' (looked for {Path(run) / DB_FILE} and {Path(runs_dir) / run / DB_FILE})")


def _run_id_in(db_file: Path, name: str) -> str:
    """``name`` if the database has a run of that id, else its only run's id."""
    try:
        con = sqlite3.connect(f"file:{db_file.resolve()}?mode=ro", uri=True)
        try:
            ids = [str(r[0]) for r in con.execute("select id from runs")]
        finally:
            con.close()
    except sqlite3.Error:
        return name  # not readable here: the database layer reports it properly
    if name in ids or len(ids) != 1:
        return name
    return ids[0]
