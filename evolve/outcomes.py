"""What a run hands back: its live progress, its summary, and the errors that end it."""

from __future__ import annotations

from dataclasses import dataclass

from evolve.records import Program


class RunAborted(Exception):
    """The run cannot go on (e.g. the model rejects the key); the message says why."""


class RunHalted(RunAborted):
    """The run stopped and can be resumed once the cause is fixed (a model endpoint that keeps
    failing, a lease taken over); the run is recorded as ``stopped`` with this message."""


@dataclass(frozen=True)
class Progress:
    """A snapshot for live displays."""

    run_id: str
    applied: int
    max_iterations: int
    best_score: float | None
    initial_score: float | None
    evaluations: int
    evals_per_s: float
    failures: dict[str, int]
    coverage: list[float]
    in_flight: int
    elapsed_s: float
    cost_usd: float


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    reason: str
    best: Program | None
    initial_score: float | None
    iterations: int
    failures: dict[str, int]
    front: tuple[Program, ...] = ()


__all__ = ["Progress", "RunAborted", "RunHalted", "RunSummary"]
