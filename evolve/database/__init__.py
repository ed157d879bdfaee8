"""Persistence: the run database is the source of truth.

:class:`Database` (SQLAlchemy: SQLite, PostgreSQL) loads and saves; :class:`SqliteReader` reads a
SQLite run database through the standard library alone, for the read-only commands, which must
answer at once. The names load on first use, so that importing the light reader does not load
SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evolve.database.rows import RunEvent, RunInfo
    from evolve.database.sqlite_reader import SqliteReader
    from evolve.database.store import Database, make_engine

__all__ = ["Database", "RunEvent", "RunInfo", "SqliteReader", "make_engine"]

_WHERE = {
    "Database": "evolve.database.store", "make_engine": "evolve.database.store",
    "RunEvent": "evolve.database.rows", "RunInfo": "evolve.database.rows",
    "SqliteReader": "evolve.database.sqlite_reader",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'evolve.database' has no attribute {name!r}")
