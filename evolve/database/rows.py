"""Plain records read from a run database, shared by the SQLAlchemy store and the light
SQLite reader (this module imports neither SQLAlchemy nor the table models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["RunEvent", "RunInfo"]


@dataclass(frozen=True)
class RunEvent:
    """One entry of a run's history (see :class:`evolve.database.models.RunEventRow`)."""

    kind: str
    detail: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class RunInfo:
    """A run's row, as :class:`evolve.database.models.RunRow` holds it."""

    id: str
    problem: str
    problem_root: str
    problem_fingerprint: str
    config: dict[str, Any]
    seed: int
    status: str
    stop_reason: str | None
    created_at: datetime
    updated_at: datetime
