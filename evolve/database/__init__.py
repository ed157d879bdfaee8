"""Persistence: the run database is the source of truth."""

from evolve.database.store import Database, make_engine

__all__ = ["Database", "make_engine"]
