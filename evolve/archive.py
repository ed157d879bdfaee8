"""MAP-Elites archive split into islands: storage plus the pure rules that decide inserts.

Each island is a grid of cells; a cell holds one elite, the best program seen with those feature
values (Mouret & Clune 2015). The insert rule, cell assignment and the migration plan are pure
functions; :class:`Archive` only keeps the grids. Fitness is the primary metric oriented so that
larger is better.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from evolve.problem import BUILTIN_FEATURES, FeatureSpec

Cell = tuple[int, ...]


class AddStatus(enum.Enum):
    """What an insert did (after pyribs): a new cell, a better elite, or nothing."""

    NEW = "new"
    IMPROVE_EXISTING = "improve_existing"
    NOT_ADDED = "not_added"


@dataclass(frozen=True, slots=True)
class Elite:
    """A program's place in an island's grid."""

    program_id: str
    fitness: float
    cell: Cell
    iteration: int


def compute_features(
    specs: Sequence[FeatureSpec], metrics: Mapping[str, float], code: str
) -> dict[str, float]:
    """Feature values for a program: builtins from its code, the rest from its metrics."""
    out: dict[str, float] = {}
    for spec in specs:
        if spec.name == "code_length":
            out[spec.name] = float(len(code))
        elif spec.name == "line_count":
            out[spec.name] = float(code.count("\n") + 1)
        else:
            out[spec.name] = float(metrics.get(spec.name, math.nan))
    return out


def cell_of(specs: Sequence[FeatureSpec], features: Mapping[str, float]) -> Cell:
    """The grid cell of a feature vector; values outside a range land in the edge bins."""
    cell = []
    for spec in specs:
        value = features.get(spec.name, math.nan)
        if not math.isfinite(value):
            cell.append(0)
            continue
        frac = (value - spec.min) / (spec.max - spec.min)
        cell.append(min(spec.bins - 1, max(0, int(frac * spec.bins))))
    return tuple(cell)


def should_replace(incumbent: Elite | None, candidate: Elite) -> bool:
    """A candidate takes a cell that is empty or whose elite it strictly beats."""
    return incumbent is None or candidate.fitness > incumbent.fitness


def migration_plan(islands: Sequence[Sequence[Elite]], count: int) -> list[tuple[Elite, int, int]]:
    """Ring migration: each island sends its ``count`` best elites to the next island.

    Returns ``(elite, from_island, to_island)`` moves; with one island there is nothing to do.
    """
    k = len(islands)
    if k < 2:
        return []
    moves: list[tuple[Elite, int, int]] = []
    for i, elites in enumerate(islands):
        best = sorted(elites, key=lambda e: (-e.fitness, e.iteration))[:count]
        moves.extend((e, i, (i + 1) % k) for e in best)
    return moves


@dataclass
class Island:
    cells: dict[Cell, Elite] = field(default_factory=dict)

    def elites(self) -> list[Elite]:
        return list(self.cells.values())

    def best(self) -> Elite | None:
        return max(self.cells.values(), key=lambda e: (e.fitness, -e.iteration), default=None)


class Archive:
    """The grids of all islands. Mutated only through :meth:`add`."""

    def __init__(self, n_islands: int, specs: Sequence[FeatureSpec]) -> None:
        if n_islands < 1:
            raise ValueError("need at least one island")
        self.specs = tuple(specs)
        self.islands = [Island() for _ in range(n_islands)]

    @property
    def n_cells(self) -> int:
        return math.prod(s.bins for s in self.specs) if self.specs else 1

    def add(self, island: int, elite: Elite) -> AddStatus:
        grid = self.islands[island].cells
        incumbent = grid.get(elite.cell)
        if not should_replace(incumbent, elite):
            return AddStatus.NOT_ADDED
        grid[elite.cell] = elite
        return AddStatus.NEW if incumbent is None else AddStatus.IMPROVE_EXISTING

    def best(self) -> Elite | None:
        bests = [b for isl in self.islands if (b := isl.best()) is not None]
        return max(bests, key=lambda e: (e.fitness, -e.iteration), default=None)

    def coverage(self) -> list[float]:
        """Fraction of cells filled, per island."""
        return [len(isl.cells) / self.n_cells for isl in self.islands]


__all__ = [
    "BUILTIN_FEATURES",
    "AddStatus",
    "Archive",
    "Cell",
    "Elite",
    "cell_of",
    "compute_features",
    "migration_plan",
    "should_replace",
]
