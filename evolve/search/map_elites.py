"""``search=map_elites``: MAP-Elites grids split into islands with ring migration (the default).

Island ``(i - 1) mod islands`` proposes iteration ``i``; its parent is a fitness-weighted elite
with probability ``exploitation``, else a uniform one (Mouret & Clune 2015; islands after
FunSearch). Every ``islands * migration_interval`` iterations each island sends its best elites
to the next one.
"""

from __future__ import annotations

import numpy as np

from evolve.archive import AddStatus, Archive, Elite, migration_plan
from evolve.records import Program
from evolve.search.history import History
from evolve.search.protocol import Applied, Selection, StrategyContext
from evolve.selection import choose_mode, select_inspirations, select_parent


class MapElites:
    """The islands' archive behind the :class:`~evolve.search.protocol.SearchStrategy` protocol."""

    def __init__(self, ctx: StrategyContext) -> None:
        self._search = ctx.search
        self._weights = dict(ctx.mode_weights)
        self.archive = Archive(ctx.search.islands, ctx.problem.spec.features)
        self.history = History(
            ctx.problem, feedback_failures=ctx.search.feedback_failures, target_score=ctx.target_score
        )

    @property
    def best(self) -> Program | None:
        return self.history.best

    def front(self) -> tuple[Program, ...]:
        return () if self.history.best is None else (self.history.best,)

    def coverage(self) -> list[float]:
        return self.archive.coverage()

    def ask(self, iteration: int, rng: np.random.Generator) -> Selection:
        search, programs = self._search, self.history.programs
        island = (iteration - 1) % search.islands
        elites = self.archive.islands[island].elites()
        parent = select_parent(elites, rng, exploitation=search.exploitation, temperature=search.temperature)
        top, diverse = select_inspirations(
            elites, parent, rng, n_top=search.top_inspirations, n_diverse=search.diverse_inspirations
        )
        mode = choose_mode(self._weights, rng)
        other = None
        if mode == "crossover":
            pool = [e for isl in self.archive.islands for e in isl.elites() if e.program_id != parent.program_id]
            if pool:
                pool.sort(key=lambda e: (e.iteration, e.cell))
                other = programs[pool[int(rng.integers(len(pool)))].program_id]
            else:
                mode = "diff"
        return self.history.selection(
            iteration,
            rng,
            island=island,
            parent=programs[parent.program_id],
            mode=mode,
            top=tuple(programs[e.program_id] for e in top),
            diverse=tuple(programs[e.program_id] for e in diverse),
            other=other,
        )

    def tell(self, program: Program) -> Applied:
        new_best, gain, stop = self.history.record(program)
        fitness = self.history.fitness(program)
        added: AddStatus | None = None
        if fitness is not None and program.cell is not None:
            elite = Elite(program.id, fitness, program.cell, program.iteration)
            islands = range(len(self.archive.islands)) if program.iteration == 0 else [program.island]
            statuses = [self.archive.add(island, elite) for island in islands]
            added = statuses[0]
        return Applied(added, new_best, gain, self._migrate(program.iteration), stop)

    def _migrate(self, iteration: int) -> tuple[tuple[str, int, int], ...]:
        search = self._search
        period = search.islands * search.migration_interval
        if iteration == 0 or search.islands < 2 or iteration % period:
            return ()
        moves = migration_plan([isl.elites() for isl in self.archive.islands], search.migration_count)
        return tuple(
            (elite.program_id, src, dst)
            for elite, src, dst in moves
            if self.archive.add(dst, elite) is not AddStatus.NOT_ADDED
        )


__all__ = ["MapElites"]
