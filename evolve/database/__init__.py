"""Persistence: the run database is the source of truth."""

from evolve.database.store import Database, RunEvent, make_engine

__all__ = ["Database", "RunEvent", "make_engine"]
