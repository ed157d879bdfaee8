"""``search=pareto``: several objectives at once (NSGA-II's rules, Deb et al. 2002).

The objectives are declared in problem.yaml (``metrics.objectives``). The population keeps the
``search.population`` programs that rank best by non-dominated sorting, ties broken by crowding
distance (the diversity measure: programs in sparse regions of the front survive); parents win a
binary tournament on the same order. The best is the first front, not one program.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from evolve.archive import AddStatus
from evolve.errors import UserError
from evolve.records import Program
from evolve.search.history import History
from evolve.search.protocol import Applied, Selection, StrategyContext
from evolve.selection import choose_mode

Vector = tuple[float, ...]


def dominates(a: Vector, b: Vector) -> bool:
    """``a`` is at least as good in every objective and better in one (larger is better)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def non_dominated_sort(points: Sequence[Vector]) -> list[int]:
    """The front index of each point: 0 for the non-dominated, 1 for those only they dominate..."""
    n = len(points)
    dominated_by = [0] * n
    beats: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                beats[i].append(j)
                dominated_by[j] += 1
            elif dominates(points[j], points[i]):
                beats[j].append(i)
                dominated_by[i] += 1
    rank = [0] * n
    current = [i for i in range(n) if dominated_by[i] == 0]
    level = 0
    while current:
        nxt = []
        for i in current:
            rank[i] = level
            for j in beats[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    nxt.append(j)
        current, level = nxt, level + 1
    return rank


def crowding_distance(points: Sequence[Vector], members: Sequence[int]) -> dict[int, float]:
    """Each front member's crowding distance: the normalized size of the box its neighbours span
    (the front's ends get infinity, so they are always kept)."""
    out = dict.fromkeys(members, 0.0)
    if len(members) < 3:
        return dict.fromkeys(members, math.inf)
    for k in range(len(points[members[0]])):
        ordered = sorted(members, key=lambda i: (points[i][k], i))
        lo, hi = points[ordered[0]][k], points[ordered[-1]][k]
        out[ordered[0]] = out[ordered[-1]] = math.inf
        if hi == lo:
            continue
        for a, b, c in zip(ordered, ordered[1:], ordered[2:], strict=False):
            out[b] += (points[c][k] - points[a][k]) / (hi - lo)
    return out


def objective_vector(program: Program, objectives: Mapping[str, str]) -> Vector:
    """A program's objectives oriented so that larger is better (a missing one is -inf)."""
    out = []
    for name, direction in objectives.items():
        if name == "code_length":
            value = float(len(program.code or ""))
        elif name == "line_count":
            value = float((program.code or "").count("\n") + 1)
        else:
            value = program.metrics.get(name, math.nan)
        if not math.isfinite(value):
            out.append(-math.inf)
        else:
            out.append(value if direction == "maximize" else -value)
    return tuple(out)


def front_of(programs: Sequence[Program], objectives: Mapping[str, str]) -> list[Program]:
    """The evaluated programs no other evaluated program dominates (for ``status``)."""
    scored = [(p, objective_vector(p, objectives)) for p in programs if p.status.value == "evaluated"]
    return [p for p, v in scored if not any(dominates(w, v) for _, w in scored)]


class Pareto:
    """NSGA-II survival and tournament selection behind the ask/tell protocol."""

    def __init__(self, ctx: StrategyContext) -> None:
        self._objectives = dict(ctx.problem.spec.metrics.objectives)
        if len(self._objectives) < 2:
            raise UserError(
                f"{ctx.problem.root / 'problem.yaml'}: metrics.objectives: search=pareto needs at "
                f"least two objectives (found {len(self._objectives)})"
            )
        self._search = ctx.search
        self._weights = dict(ctx.mode_weights)
        self.history = History(ctx.problem, feedback_failures=ctx.search.feedback_failures, target_score=ctx.target_score)
        self.population: list[Program] = []
        self._order: dict[str, tuple[int, float]] = {}  # program id -> (front, -crowding)

    @property
    def best(self) -> Program | None:
        """The front's best by the primary metric (on a tie, a dominated program is not it)."""
        fitness = self.history.fitness
        return max(self.front(), key=lambda p: (fitness(p) or -math.inf, -p.iteration), default=self.history.best)

    def front(self) -> tuple[Program, ...]:
        """The non-dominated programs, in the order they were found."""
        return tuple(p for p in self.population if self._order[p.id][0] == 0)

    def coverage(self) -> list[float]:
        return []

    def tell(self, program: Program) -> Applied:
        new_best, gain, stop = self.history.record(program)
        if self.history.fitness(program) is None or program.cell is None:
            return Applied(None, new_best, gain, (), stop)
        self.population.append(program)
        self._rank()
        kept = program.id in self._order
        return Applied(AddStatus.NEW if kept else AddStatus.NOT_ADDED, new_best, gain, (), stop)

    def _rank(self) -> None:
        """Re-sort the population and drop the worst beyond ``search.population``."""
        points = [objective_vector(p, self._objectives) for p in self.population]
        ranks = non_dominated_sort(points)
        order: dict[int, tuple[int, float]] = {}
        for level in set(ranks):
            members = [i for i, r in enumerate(ranks) if r == level]
            for i, d in crowding_distance(points, members).items():
                order[i] = (level, -d)
        keep = sorted(range(len(points)), key=lambda i: (*order[i], self.population[i].iteration))
        keep = sorted(keep[: self._search.population])
        self.population = [self.population[i] for i in keep]
        self._order = {self.population[k].id: order[i] for k, i in enumerate(keep)}

    def ask(self, iteration: int, rng: np.random.Generator) -> Selection:
        pop = self.population
        if not pop:
            raise ValueError("ask() before the initial program was told")
        a, b = pop[int(rng.integers(len(pop)))], pop[int(rng.integers(len(pop)))]
        parent = min((a, b), key=lambda p: (*self._order[p.id], p.iteration))
        others = [p for p in self.front() if p.id != parent.id]
        fitness = self.history.fitness
        top = tuple(sorted(others, key=lambda p: (-(fitness(p) or -math.inf), p.iteration))[: self._search.top_inspirations])
        mode = choose_mode(self._weights, rng)
        other = None
        if mode == "crossover":
            if others:
                other = others[int(rng.integers(len(others)))]
            else:
                mode = "diff"
        return self.history.selection(iteration, rng, island=0, parent=parent, mode=mode, top=top, other=other)


__all__ = ["Pareto", "crowding_distance", "dominates", "front_of", "non_dominated_sort", "objective_vector"]
