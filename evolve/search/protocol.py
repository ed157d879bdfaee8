"""The boundary of a search strategy (ask/tell, after pyribs): what it decides, what it changed.

A strategy is a pure, synchronous state machine. :meth:`SearchStrategy.ask` makes every random
decision of one iteration from an injected generator and the programs told so far;
:meth:`SearchStrategy.tell` folds one finished program in. The controller tells programs strictly
in iteration order, and a resumed run rebuilds the state by telling it the stored programs in
that order, so the same seed gives the same selections however fast the model answers.

A user's own strategy is any class with this shape, named by import path in ``search.strategy``
(``"package.module:ClassName"``) and constructed with one :class:`StrategyContext`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from evolve.archive import AddStatus
from evolve.records import ErrorInfo, Program

if TYPE_CHECKING:
    from evolve.config import SearchConfig
    from evolve.problem import Problem


@dataclass(frozen=True)
class Selection:
    """The decisions made for one iteration before any I/O.

    Attributes:
        iteration: the iteration these decisions are for.
        island: the island (sub-population) the child belongs to; 0 without islands.
        parent: the program the child is made from (the prompt shows its code).
        mode: ``diff``, ``rewrite`` or ``crossover``.
        top, diverse: inspirations shown in the prompt.
        other: the second parent of a crossover.
        failures: recent failures of the parent's children, shown to the model.
        seed: the iteration's seed for the model call (and an ensemble's choice of model).
    """

    iteration: int
    island: int
    parent: Program
    mode: str
    top: tuple[Program, ...]
    diverse: tuple[Program, ...]
    other: Program | None
    failures: tuple[ErrorInfo, ...]
    seed: int


@dataclass(frozen=True)
class Applied:
    """What telling one program changed.

    Attributes:
        added: what the archive did with it; ``None`` for a program without a score.
        new_best: it is the best program so far.
        gain: its fitness minus its parent's (larger is better), when both have a score.
        migrations: ``(program_id, from_island, to_island)`` moves it triggered.
        stop_reason: set once, when the search wants the run to stop (a target reached).
    """

    added: AddStatus | None = None
    new_best: bool = False
    gain: float | None = None
    migrations: tuple[tuple[str, int, int], ...] = ()
    stop_reason: str | None = None


@dataclass(frozen=True)
class StrategyContext:
    """Everything a strategy is built from (its constructor's one argument)."""

    problem: Problem
    search: SearchConfig
    mode_weights: Mapping[str, float]
    target_score: float | None = None


@runtime_checkable
class SearchStrategy(Protocol):
    """The protocol every strategy implements (see the module docstring)."""

    def ask(self, iteration: int, rng: np.random.Generator) -> Selection:
        """Every random decision of ``iteration``; never called before iteration 0 is told."""
        ...

    def tell(self, program: Program) -> Applied:
        """Fold in one finished program (any status), in iteration order."""
        ...

    @property
    def best(self) -> Program | None:
        """The best program by the primary metric."""
        ...

    def front(self) -> tuple[Program, ...]:
        """The programs shown as "the best": ``(best,)``, or a Pareto front."""
        ...

    def coverage(self) -> list[float]:
        """A fill fraction per island, for the live display (``[]`` when meaningless)."""
        ...


__all__ = ["Applied", "SearchStrategy", "Selection", "StrategyContext"]
