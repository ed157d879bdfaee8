"""The baselines a search should beat at equal proposals.

``search=random`` makes every proposal from the initial program (independent sampling: the
baseline of "Simple Baselines are Competitive with Code Evolution", 2026); ``search=greedy``
picks each parent by a tournament over every scored program, with no diversity pressure (the
hill climber). Both keep one population: island 0.
"""

from __future__ import annotations

import heapq

import numpy as np

from evolve.archive import AddStatus
from evolve.records import Program
from evolve.search.history import History
from evolve.search.protocol import Applied, Selection, StrategyContext
from evolve.selection import choose_mode


class _OnePopulation:
    def __init__(self, ctx: StrategyContext) -> None:
        self._search = ctx.search
        self._weights = dict(ctx.mode_weights)
        self.history = History(
            ctx.problem, feedback_failures=ctx.search.feedback_failures, target_score=ctx.target_score
        )
        #: Scored programs as (fitness, iteration, program), in the order they were told.
        self.scored: list[tuple[float, int, Program]] = []

    @property
    def best(self) -> Program | None:
        return self.history.best

    def front(self) -> tuple[Program, ...]:
        return () if self.history.best is None else (self.history.best,)

    def coverage(self) -> list[float]:
        return []

    def tell(self, program: Program) -> Applied:
        new_best, gain, stop = self.history.record(program)
        fitness = self.history.fitness(program)
        if fitness is None or program.cell is None:
            return Applied(None, new_best, gain, (), stop)
        self.scored.append((fitness, program.iteration, program))
        return Applied(AddStatus.NEW, new_best, gain, (), stop)


class RandomSearch(_OnePopulation):
    """Independent sampling: the initial program is every parent; nothing else is shown."""

    def ask(self, iteration: int, rng: np.random.Generator) -> Selection:
        initial = self.history.initial
        if initial is None:
            raise ValueError("ask() before the initial program was told")
        mode = choose_mode(self._weights, rng)
        return self.history.selection(
            iteration, rng, island=0, parent=initial, mode="diff" if mode == "crossover" else mode, feedback=False
        )


class Greedy(_OnePopulation):
    """Tournament selection over all scored programs; the tournament's best top programs inspire."""

    def ask(self, iteration: int, rng: np.random.Generator) -> Selection:
        if not self.scored:
            raise ValueError("ask() before the initial program was told")
        k = self._search.tournament_size
        entrants = [self.scored[int(rng.integers(len(self.scored)))] for _ in range(k)]
        parent = max(entrants, key=lambda e: (e[0], -e[1]))[2]
        n_top = self._search.top_inspirations
        ranked = [e for e in heapq.nsmallest(n_top + 1, self.scored, key=lambda e: (-e[0], e[1])) if e[2].id != parent.id]
        top = tuple(e[2] for e in ranked[:n_top])
        mode = choose_mode(self._weights, rng)
        other = None
        if mode == "crossover":
            if ranked:
                other = ranked[0][2]
            else:
                mode = "diff"
        return self.history.selection(iteration, rng, island=0, parent=parent, mode=mode, top=top, other=other)


__all__ = ["Greedy", "RandomSearch"]
