"""What every built-in strategy remembers: programs by id, the best, recent failures per parent.

Kept apart from the strategies so each one is only its selection rule.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from evolve.problem import Problem
from evolve.records import ErrorInfo, Program, Status
from evolve.search.protocol import Selection
from evolve.selection import choose_mode


class History:
    """Programs told so far and the facts derived from them (pure bookkeeping)."""

    def __init__(self, problem: Problem, *, feedback_failures: int, target_score: float | None) -> None:
        self.problem = problem
        self.programs: dict[str, Program] = {}
        self.best: Program | None = None
        self.initial: Program | None = None
        self._failures: dict[str, deque[ErrorInfo]] = {}
        self._feedback = feedback_failures
        self._target = target_score
        self._stopped = False

    def fitness(self, program: Program) -> float | None:
        """The primary metric oriented so that larger is better; None without a score."""
        score = program.score(self.problem.spec.metrics.primary)
        return None if score is None else self.problem.fitness(score)

    def record(self, p: Program) -> tuple[bool, float | None, str | None]:
        """Remember ``p``; returns (is the new best, gain over its parent, stop reason)."""
        if p.code is not None:
            self.programs[p.id] = p
        if p.iteration == 0 and p.status is Status.EVALUATED:
            self.initial = p
        # A scorer's crash is the scorer's bug: its traceback (the hidden scorer's code) is not
        # shown to the model as the child's failure.
        if p.status.is_failure and p.parent_id is not None and p.error is not None and p.status is not Status.SCORER_ERROR:
            self._failures.setdefault(p.parent_id, deque(maxlen=self._feedback)).append(p.error)
        fit = self.fitness(p) if p.cell is not None else None
        if fit is None:
            return False, None, None
        new_best = self.best is None or fit > (self.fitness(self.best) or -np.inf)
        if new_best:
            self.best = p
        parent = self.programs.get(p.parent_id) if p.parent_id is not None else None
        parent_fit = self.fitness(parent) if parent is not None else None
        gain = None if parent_fit is None else fit - parent_fit
        return new_best, gain, self._check_target(p)

    def _check_target(self, p: Program) -> str | None:
        score = p.score(self.problem.spec.metrics.primary)
        target = self._target
        if self._stopped or target is None or score is None or self.problem.is_better(target, score):
            return None
        self._stopped = True
        return f"target score {target} reached"

    def failures(self, parent_id: str) -> tuple[ErrorInfo, ...]:
        return tuple(self._failures.get(parent_id, ()))

    def selection(
        self,
        iteration: int,
        rng: np.random.Generator,
        *,
        island: int,
        parent: Program,
        mode: str,
        top: tuple[Program, ...] = (),
        diverse: tuple[Program, ...] = (),
        other: Program | None = None,
        feedback: bool = True,
    ) -> Selection:
        """A :class:`Selection`, its seed drawn last from ``rng`` (after every other choice)."""
        return Selection(
            iteration=iteration,
            island=island,
            parent=parent,
            mode=mode,
            top=top,
            diverse=diverse,
            other=other,
            failures=self.failures(parent.id) if feedback else (),
            seed=int(rng.integers(2**31 - 1)),
        )


def draw_mode(weights: dict[str, float], rng: np.random.Generator, *, crossover_possible: bool) -> str:
    """A proposal kind; a crossover with no second parent to draw becomes a diff."""
    mode = choose_mode(weights, rng)
    return "diff" if mode == "crossover" and not crossover_possible else mode


__all__ = ["History", "draw_mode"]
