"""What a live run shows and hands back: its progress snapshots and its final summary.

Built from the search strategy (best program, front, coverage) and the run's spending, so the
controller only says how far it is.
"""

from __future__ import annotations

import time

from evolve.budgets import Spending
from evolve.outcomes import Progress, RunSummary
from evolve.records import Program
from evolve.search import SearchStrategy


class ProgressReport:
    """Builds :class:`Progress` and :class:`RunSummary` for one run."""

    def __init__(self, run_id: str, primary: str, strategy: SearchStrategy, spent: Spending) -> None:
        self._run_id = run_id
        self._primary = primary
        self._strategy = strategy
        self._spent = spent
        self.initial_score: float | None = None

    def told(self, program: Program) -> None:
        """Note a program told to the strategy (the initial one's score is the baseline)."""
        if program.iteration == 0:
            self.initial_score = program.score(self._primary)

    def progress(self, applied: int, max_iterations: int, in_flight: int) -> Progress:
        """A snapshot for the live display."""
        spent, best = self._spent, self._strategy.best
        elapsed = time.monotonic() - spent.started
        return Progress(
            run_id=self._run_id,
            applied=applied,
            max_iterations=max_iterations,
            best_score=best.score(self._primary) if best else None,
            initial_score=self.initial_score,
            evaluations=spent.evaluations,
            evals_per_s=spent.evaluations / elapsed if elapsed > 0 else 0.0,
            failures=dict(spent.failures),
            coverage=self._strategy.coverage(),
            in_flight=in_flight,
            elapsed_s=elapsed,
            cost_usd=spent.cost_usd,
        )

    def summary(self, stop_reason: str | None, max_iterations: int, applied: int) -> RunSummary:
        """What the run hands back when it ends: ``finished`` after its iterations, ``stopped``
        for ``stop_reason`` (a budget, a target, a command)."""
        return RunSummary(
            run_id=self._run_id,
            status="finished" if stop_reason is None else "stopped",
            reason=stop_reason or f"{max_iterations} iterations",
            best=self._strategy.best,
            initial_score=self.initial_score,
            iterations=applied,
            failures=dict(self._spent.failures),
            front=self._strategy.front(),
        )


__all__ = ["ProgressReport"]
