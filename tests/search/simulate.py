"""Drive a strategy through ask/tell without a controller: children are scored from a script."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evolve.archive import cell_of
from evolve.config import SearchConfig
from evolve.problem import Problem
from evolve.records import ErrorInfo, Program, Status
from evolve.search import SearchStrategy, Selection, StrategyContext, build_strategy

#: (energy, min_distance) of one child, or None for a child that failed.
Outcome = tuple[float, float] | None


def make_strategy(problem: Problem, name: str, **search: Any) -> SearchStrategy:
    ctx = StrategyContext(problem, SearchConfig(strategy=name, **search), {"diff": 0.7, "rewrite": 0.2, "crossover": 0.1})
    return build_strategy(ctx)


def program(problem: Problem, iteration: int, outcome: Outcome, *, parent: Program | None, island: int) -> Program:
    code = f"# program {iteration}\n"
    base = Program(
        id=f"p{iteration}", run_id="r", iteration=iteration, parent_id=parent.id if parent else None,
        island=island, generation=parent.generation + 1 if parent else 0, code=code, code_hash=str(iteration),
        status=Status.EVALUATED,
    )
    if outcome is None:
        return base.model_copy(update={"status": Status.EXCEPTION, "error": ErrorInfo(kind=Status.EXCEPTION, message="x")})
    features = {"min_distance": outcome[1], "code_length": float(len(code))}
    return base.model_copy(update={
        "metrics": {"energy": outcome[0], "min_distance": outcome[1]},
        "features": features,
        "cell": cell_of(problem.spec.features, features),
    })


def key(sel: Selection) -> tuple[Any, ...]:
    """Everything a selection decided, by program id."""
    return (sel.iteration, sel.island, sel.parent.id, sel.mode, tuple(p.id for p in sel.top),
            tuple(p.id for p in sel.diverse), sel.other.id if sel.other else None, sel.failures, sel.seed)


def simulate(
    strategy: SearchStrategy, problem: Problem, initial: tuple[float, float], outcomes: Sequence[Outcome], seed: int
) -> tuple[list[Selection], list[Program]]:
    """Tell the initial program, then ask/tell one child per outcome, in order."""
    told = [program(problem, 0, initial, parent=None, island=0)]
    strategy.tell(told[0])
    selections = []
    for i, outcome in enumerate(outcomes, start=1):
        sel = strategy.ask(i, np.random.default_rng([seed, i]))
        selections.append(sel)
        child = program(problem, i, outcome, parent=sel.parent, island=sel.island)
        strategy.tell(child)
        told.append(child)
    return selections, told
