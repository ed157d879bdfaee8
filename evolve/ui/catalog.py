"""Where the web UI finds runs: every run folder under a runs directory, or one database URL.

A run folder holds its own SQLite file (``runs/<run>/evolve.db``); a shared database (PostgreSQL)
holds many runs. The catalog opens each database once and keeps it; it reads, never writes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from evolve.database import Database
from evolve.errors import UserError
from evolve.problem import Problem, load_problem

DB_FILE = "evolve.db"


@dataclass(frozen=True)
class RunMeta:
    """What the pages need of a run's problem: its primary metric, direction, best-known value
    and MAP-Elites dimensions (when the problem's folder cannot be loaded: maximize, no best
    known, no dimensions, and ``problem_error`` says why)."""

    primary: str
    maximize: bool
    best_known: float | None
    best_known_source: str | None
    features: tuple[tuple[str, int], ...]  # (name, bins) per dimension
    problem_error: str | None = None

    def fitness(self, score: float) -> float:
        return score if self.maximize else -score


def meta_of(problem: Problem) -> RunMeta:
    spec = problem.spec
    return RunMeta(
        primary=spec.metrics.primary,
        maximize=problem.maximize,
        best_known=spec.best_known.value if spec.best_known else None,
        best_known_source=spec.best_known.source if spec.best_known else None,
        features=tuple((f.name, f.bins) for f in spec.features),
    )


class RunCatalog:
    """The runs a UI shows: ``runs_dir`` (one SQLite file per run folder) or ``db_url``."""

    def __init__(self, *, runs_dir: Path | None = None, db_url: str | None = None) -> None:
        if (runs_dir is None) == (db_url is None):
            raise ValueError("give exactly one of runs_dir and db_url")
        self._runs_dir = runs_dir
        self._db_url = db_url
        self._dbs: dict[str, Database] = {}
        self._metas: dict[str, RunMeta] = {}
        self._lock = threading.Lock()

    def _open(self, url: str) -> Database:
        with self._lock:
            db = self._dbs.get(url)
            if db is None:
                db = self._dbs[url] = Database.open(url)
            return db

    def run_ids(self) -> list[tuple[str, Database | None, str | None]]:
        """Every run as (id, its database, or None and why it cannot be read)."""
        if self._db_url is not None:
            db = self._open(self._db_url)
            return [(row.id, db, None) for row in db.list_runs()]
        assert self._runs_dir is not None
        out: list[tuple[str, Database | None, str | None]] = []
        for db_file in sorted(self._runs_dir.glob(f"*/{DB_FILE}")):
            try:
                db = self._open(f"sqlite:///{db_file.resolve()}")
                out.extend((row.id, db, None) for row in db.list_runs())
            except Exception as exc:  # one unreadable run folder does not hide the others
                out.append((db_file.parent.name, None, f"unreadable: {type(exc).__name__}"))
        return out

    def url_for(self, run_id: str) -> str:
        """The URL of the database that holds ``run_id``; UserError when there is none."""
        if self._db_url is not None:
            url = self._db_url
        else:
            assert self._runs_dir is not None
            db_file = self._runs_dir / run_id / DB_FILE
            if "/" in run_id or run_id.startswith(".") or not db_file.is_file():
                raise UserError(f"no run '{run_id}'")
            url = f"sqlite:///{db_file.resolve()}"
        if self._open(url).get_run(run_id) is None:
            raise UserError(f"no run '{run_id}'")
        return url

    def db_for(self, run_id: str) -> Database:
        """The database that holds ``run_id``; UserError when there is none."""
        return self._open(self.url_for(run_id))

    def meta(self, run_id: str, db: Database) -> RunMeta:
        """The run's problem as the pages need it (loaded once per run)."""
        cached = self._metas.get(run_id)
        if cached is not None:
            return cached
        row = db.get_run(run_id)
        if row is None:
            raise UserError(f"no run '{run_id}'")
        try:
            meta = meta_of(load_problem(row.problem_root))
        except UserError as exc:
            meta = RunMeta("score", True, None, None, (), problem_error=str(exc))
        self._metas[run_id] = meta
        return meta

    def close(self) -> None:
        with self._lock:
            for db in self._dbs.values():
                db.close()
            self._dbs.clear()
